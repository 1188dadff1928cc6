package tpm

import (
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/carbidedb/carbide/internal/certs"
	"github.com/carbidedb/carbide/internal/config"
)

// maskedPassword stands for a password in what tpm cert prints.
const maskedPassword = "********"

// cert writes a cluster CA and one member certificate for every host of
// the configuration (certs.Generate) and prints the ini lines that use them.
func (r *runner) cert(args []string) int {
	fs := flag.NewFlagSet("cert", flag.ContinueOnError)
	ini := fs.String("ini", "", "ini files, comma-separated")
	dirFlag := fs.String("dir", "", "directory to write into (default: the ini file's)")
	password := fs.String("password", "", "keystore and truststore password (default: the ini's java-keystore-password)")
	force := fs.Bool("force", false, "replace files written before")
	if !r.parse(fs, args) {
		return r.parseExit
	}
	passwordSet, dirSet := false, false
	fs.Visit(func(f *flag.Flag) {
		passwordSet = passwordSet || f.Name == "password"
		dirSet = dirSet || f.Name == "dir"
	})
	if dirSet && *dirFlag == "" {
		r.errorf("--dir needs a directory; leave it out to write next to the ini file")
		return ExitUsage
	}
	if passwordSet && utf8.RuneCountInString(*password) < certs.MinPassword {
		r.errorf("--password must be at least %d characters long (keytool refuses shorter ones)", certs.MinPassword)
		return ExitUsage
	}
	if err := r.bind(); err != nil {
		r.errorf("%v", err)
		return ExitProblems
	}
	files := r.iniFiles(*ini)
	cfg, ok := r.load(files)
	if !ok {
		return ExitProblems
	}
	plan := cfg.Plan()
	pw, from := *password, "the --password given"
	if !passwordSet {
		pw, from = iniKeystorePassword(plan), "the configuration's java-keystore-password"
		if pw == "" {
			r.errorf("give the keystore password with --password: the configuration sets no java-keystore-password")
			return ExitUsage
		}
	}
	dir := *dirFlag
	if dir == "" {
		dir = filepath.Dir(absAll(files)[0])
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	var hosts []certs.Host
	var names []string
	for _, h := range plan.Hosts {
		hosts = append(hosts, certs.Host{Name: h.Name, Address: h.Address})
		names = append(names, h.Name)
	}
	err := certs.Generate(dir, hosts, pw, certs.GenerateOptions{Force: *force})
	var exists *certs.ExistsError
	switch {
	case errors.As(err, &exists):
		r.errorf("%s already holds %s; pass --force to replace them (then copy the new files to every host)", exists.Dir, strings.Join(exists.Files, ", "))
		return ExitProblems
	case err != nil:
		r.errorf("%v", err)
		return ExitProblems
	}
	out := r.env.Out
	fmt.Fprintf(out, "Wrote %s to %s (CA and one member certificate for %s).\n", strings.Join(certs.Files(), ", "), dir, strings.Join(names, ", "))
	fmt.Fprintf(out, "Add to [defaults] and [defaults.replicator]:\n")
	for _, line := range []string{
		"java-keystore-path=" + filepath.Join(dir, certs.KeystoreFile),
		"java-keystore-password=" + maskedPassword,
		"java-truststore-path=" + filepath.Join(dir, certs.TruststoreFile),
		"java-truststore-password=" + maskedPassword,
		"thl-ssl=true",
	} {
		fmt.Fprintf(out, "  %s\n", line)
	}
	fmt.Fprintf(out, "(%s stands for %s; tpm does not print passwords.)\n", maskedPassword, from)
	fmt.Fprintf(out, "Copy the files but %s (no host needs it) to %s on every host, readable by the user that runs Carbide.\n", certs.CAKeyFile, dir)
	return ExitOK
}

// iniKeystorePassword returns the first java-keystore-password any install
// of the plan has, or "".
func iniKeystorePassword(plan *config.Plan) string {
	for _, h := range plan.Hosts {
		for _, in := range h.Installs() {
			if in.Settings.KeystorePassword != "" {
				return in.Settings.KeystorePassword
			}
		}
	}
	return ""
}
