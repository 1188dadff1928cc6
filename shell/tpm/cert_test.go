package tpm

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/carbidedb/carbide/internal/certs"
	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/install"
)

const certPassword = "s3cret-pw"

// certFiles lists which of certs.Files() dir holds.
func certFiles(t *testing.T, dir string) []string {
	t.Helper()
	var have []string
	for _, name := range certs.Files() {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			have = append(have, name)
		}
	}
	return have
}

func TestCertWritesAndPrintsINILines(t *testing.T) {
	f := newFixture(t)
	dir := filepath.Dir(f.ini)
	r := f.mustRun("cert", "--ini", f.ini, "--password", certPassword)
	out := lines(r.out)
	want := "Wrote ca.pem, ca.key, tungsten.pem, tungsten.key, keystore.jks, truststore.ts to " + dir +
		" (CA and one member certificate for " + strings.Join(sampleHosts, ", ") + ")."
	if len(out) == 0 || out[0] != want {
		t.Fatalf("first line:\n got %q\nwant %q\n%s", out[0], want, r)
	}
	for _, w := range []string{
		"Add to [defaults] and [defaults.replicator]:",
		"  java-keystore-path=" + filepath.Join(dir, "keystore.jks"),
		"  java-keystore-password=********",
		"  java-truststore-path=" + filepath.Join(dir, "truststore.ts"),
		"  java-truststore-password=********",
		"  thl-ssl=true",
	} {
		if !slices.Contains(out, w) {
			t.Errorf("output lacks the line %q:\n%s", w, r)
		}
	}
	if strings.Contains(r.out+r.err, certPassword) {
		t.Errorf("tpm cert printed the password:\n%s", r)
	}
	if got := certFiles(t, dir); len(got) != len(certs.Files()) {
		t.Fatalf("%s holds %v, want every file of %v", dir, got, certs.Files())
	}

	// The printed lines, with the password, make a configuration whose
	// settings load the material, and the certificate names every host.
	var add []string
	for _, l := range out {
		if strings.HasPrefix(l, "  ") {
			add = append(add, strings.ReplaceAll(strings.TrimSpace(l), "********", certPassword))
		}
	}
	f.editINI("[defaults]\n", "[defaults]\n"+strings.Join(add, "\n")+"\n")
	f.mustRun("validate", "--ini", f.ini)
	cfg, err := config.Load(f.ini)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := cfg.Plan().Host("west2")
	for _, in := range h.Installs() {
		if !in.Settings.THLSSL {
			t.Errorf("the %s install of west2 has thl-ssl off", in.Kind)
		}
		m, err := certs.Load(in.Settings)
		if err != nil {
			t.Fatalf("the %s install of west2: %v", in.Kind, err)
		}
		for _, name := range sampleHosts {
			if !slices.Contains(m.Cert.Leaf.DNSNames, name) {
				t.Errorf("the certificate names %v, not %s", m.Cert.Leaf.DNSNames, name)
			}
		}
	}
}

func TestCertRefusesToOverwrite(t *testing.T) {
	f := newFixture(t)
	dir := filepath.Join(t.TempDir(), "tls")
	f.mustRun("cert", "--ini", f.ini, "--dir", dir, "--password", certPassword)
	ks := filepath.Join(dir, certs.KeystoreFile)
	before := readFile(t, ks)
	r := f.run("cert", "--ini", f.ini, "--dir", dir, "--password", certPassword)
	if r.code != ExitProblems || len(r.errLines()) != 1 || !strings.Contains(r.err, dir+" already holds ca.pem") || !strings.Contains(r.err, "--force") || r.out != "" {
		t.Fatalf("a second tpm cert: want exit 1 and one sentence asking for --force:\n%s", r)
	}
	if readFile(t, ks) != before {
		t.Fatal("a refused tpm cert changed keystore.jks")
	}
	f.mustRun("cert", "--ini", f.ini, "--dir", dir, "--password", certPassword, "--force")
	if readFile(t, ks) == before {
		t.Fatal("tpm cert --force left keystore.jks as it was")
	}
	if _, err := certs.LoadKeystores(ks, certPassword, filepath.Join(dir, certs.TruststoreFile), certPassword); err != nil {
		t.Fatal(err)
	}
}

func TestCertPassword(t *testing.T) {
	f := newFixture(t)
	dir := filepath.Dir(f.ini)
	r := f.run("cert", "--ini", f.ini)
	if r.code != ExitUsage || len(r.errLines()) != 1 || !strings.Contains(r.err, "--password") || r.out != "" {
		t.Fatalf("tpm cert without a password: want exit 2 and one sentence asking for --password:\n%s", r)
	}
	if got := certFiles(t, dir); len(got) != 0 {
		t.Fatalf("a refused tpm cert wrote %v", got)
	}

	// The ini's java-keystore-password is the default.
	f.editINI("[defaults]\n", "[defaults]\njava-keystore-password=from-the-ini\n")
	r = f.mustRun("cert", "--ini", f.ini)
	if strings.Contains(r.out, "from-the-ini") || !strings.Contains(r.out, "java-keystore-password") {
		t.Fatalf("tpm cert with the ini's password:\n%s", r)
	}
	ks, ts := filepath.Join(dir, certs.KeystoreFile), filepath.Join(dir, certs.TruststoreFile)
	if _, err := certs.LoadKeystores(ks, "from-the-ini", ts, "from-the-ini"); err != nil {
		t.Fatal(err)
	}
	// --password wins over the ini.
	f.mustRun("cert", "--ini", f.ini, "--password", certPassword, "--force")
	if _, err := certs.LoadKeystores(ks, certPassword, ts, certPassword); err != nil {
		t.Fatal(err)
	}
}

func TestCertINIFromEnvironment(t *testing.T) {
	f := newFixture(t)
	f.vars[install.EnvINI] = f.ini
	r := f.mustRun("cert", "--password", certPassword)
	if !strings.Contains(r.out, " to "+filepath.Dir(f.ini)+" ") {
		t.Fatalf("tpm cert without --ini must write next to $CARBIDE_INI:\n%s", r)
	}
}

func TestCertUsageErrors(t *testing.T) {
	f := newFixture(t)
	dir := filepath.Dir(f.ini)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"cert", "--ini", f.ini, "--bogus"}, "-bogus"},
		{[]string{"cert", "--ini", f.ini, "--password", certPassword, "extra"}, `unexpected argument "extra"`},
		{[]string{"cert", "--ini", f.ini, "--password", "pw"}, "--password must be at least 6 characters"},
		{[]string{"cert", "--ini", f.ini, "--password", certPassword, "--dir", ""}, "--dir needs a directory"},
		{[]string{"cert", "--ini", f.ini, "--password"}, "-password"},
		{[]string{"cert", "--ini", f.ini, "--force=maybe"}, "-force"},
	} {
		r := f.run(tc.args...)
		if r.code != ExitUsage || len(r.errLines()) != 1 || !strings.Contains(r.err, tc.want) || r.out != "" {
			t.Errorf("tpm %s: want exit 2 and one line on Err containing %q:\n%s", strings.Join(tc.args, " "), tc.want, r)
		}
	}
	if got := certFiles(t, dir); len(got) != 0 {
		t.Fatalf("refused tpm cert runs wrote %v", got)
	}
	f.requireEmptyRoot()
	if help := f.mustRun("help").out; !strings.Contains(help, "cert     [--ini FILES] [--dir DIR] [--password P] [--force]") {
		t.Errorf("tpm help does not show cert:\n%s", help)
	}
}

// TestValidateChecksCertificates: with thl-ssl=true, tpm validate opens
// the keystores and says what is wrong with them, without the password.
func TestValidateChecksCertificates(t *testing.T) {
	f := newFixture(t)
	dir := filepath.Join(t.TempDir(), "tls")
	f.mustRun("cert", "--ini", f.ini, "--dir", dir, "--password", certPassword)
	f.editINI("[defaults]\n", "[defaults]\nthl-ssl=true\njava-keystore-path="+filepath.Join(dir, certs.KeystoreFile)+
		"\njava-keystore-password=wrong-pw\njava-truststore-path="+filepath.Join(dir, certs.TruststoreFile)+"\njava-truststore-password="+certPassword+"\n")
	r := f.run("validate", "--ini", f.ini)
	if r.code != ExitProblems || len(r.errLines()) != 1 || !strings.Contains(r.err, "java-keystore-password does not open") || strings.Contains(r.err, "wrong-pw") {
		t.Fatalf("validate with a wrong keystore password: want exit 1 and one sentence:\n%s", r)
	}
	f.editINI("java-keystore-password=wrong-pw", "java-keystore-password="+certPassword)
	f.mustRun("validate", "--ini", f.ini)
}
