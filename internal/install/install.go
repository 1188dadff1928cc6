package install

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/fileutil"
)

// Options says how to install.
type Options struct {
	// Staging is the release directory: it holds bin/ with the programs.
	Staging string
	// INI are the ini files the configuration came from; share/env.sh
	// exports them as CARBIDE_INI so tpm update reads them again.
	INI []string
	// Kinds restricts which installs of the host are written; all when empty.
	Kinds []config.InstallKind
	// Profile appends a line sourcing share/env.sh to the profile-script
	// (never in a sandbox).
	Profile bool
	// Out receives one progress line per thing done; nil discards them.
	Out io.Writer
	// Now stamps the manifest; time.Now when nil.
	Now func() time.Time
}

// Install writes the installs of host from cfg. It checks everything
// first (the host is in the plan, the release has a bin/ directory) and
// writes nothing when a check fails. Running it again rewrites the same
// files: it is how tpm update works too.
func Install(cfg *config.Config, host string, opts Options) ([]*config.Install, error) {
	h, ok := cfg.Plan().Host(host)
	if !ok {
		return nil, fmt.Errorf("host %s is not in the configuration (hosts: %s); pass one of them with --host", host, strings.Join(cfg.Plan().HostNames(), ", "))
	}
	if opts.Staging == "" {
		return nil, errors.New("install: no release directory given")
	}
	if st, err := os.Stat(filepath.Join(opts.Staging, "bin")); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("release directory %s has no bin/ directory; run make build there first", opts.Staging)
	}
	var ini bytes.Buffer
	if err := cfg.Reverse(&ini, false); err != nil {
		return nil, err
	}
	var done []*config.Install
	for _, in := range h.Installs() {
		if len(opts.Kinds) > 0 && !slices.Contains(opts.Kinds, in.Kind) {
			continue
		}
		if err := writeInstall(cfg, h, in, ini.Bytes(), opts); err != nil {
			return done, fmt.Errorf("install %s %s into %s: %w", host, in.Kind, in.Dir, err)
		}
		done = append(done, in)
	}
	if len(done) == 0 {
		return nil, fmt.Errorf("host %s has no %s install in the configuration", host, kindList(opts.Kinds))
	}
	return done, nil
}

func kindList(kinds []config.InstallKind) string {
	var s []string
	for _, k := range kinds {
		s = append(s, string(k))
	}
	return strings.Join(s, " or ")
}

func writeInstall(cfg *config.Config, h *config.HostPlan, in *config.Install, ini []byte, opts Options) error {
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	home := in.Dir
	for _, d := range []string{BinDir(home), ConfDir(home), filepath.Dir(EnvPath(home)), LogDir(home), RunDir(home)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := fileutil.WriteAtomic(INIPath(home), ini, 0o600); err != nil {
		return err
	}
	prefix := in.Settings.ExecutablePrefix
	m := Manifest{Host: h.Name, Kind: in.Kind, Dir: home, Staging: opts.Staging, INI: opts.INI, Prefix: prefix, Installed: now().UTC()}
	if err := writeJSON(ManifestPath(home), m); err != nil {
		return err
	}
	if err := fileutil.WriteAtomic(EnvPath(home), envScript(h, in, opts.INI), 0o644); err != nil {
		return err
	}
	want := map[string]bool{}
	for _, p := range Programs(in.Kind) {
		name := CommandName(prefix, p)
		want[name] = true
		if err := fileutil.WriteAtomic(filepath.Join(BinDir(home), name), wrapper(h, in, name, filepath.Join(opts.Staging, "bin", p)), 0o755); err != nil {
			return err
		}
	}
	// A changed executable-prefix leaves wrappers of the old name: remove
	// them, so mm_trepctl never talks to an install it no longer names.
	entries, _ := os.ReadDir(BinDir(home))
	for _, e := range entries {
		if !want[e.Name()] && isOurWrapper(filepath.Join(BinDir(home), e.Name())) {
			_ = os.Remove(filepath.Join(BinDir(home), e.Name()))
		}
	}
	fmt.Fprintf(out, "%s: %s install in %s: %s; commands %s\n", h.Name, in.Kind, home, Describe(in), strings.Join(commandNames(in), ", "))
	if opts.Profile && cfg.SandboxRoot == "" && in.Settings.ProfileScript != "" {
		changed, err := addToProfile(in.Settings.ProfileScript, EnvPath(home))
		if err != nil {
			return err
		}
		if changed {
			fmt.Fprintf(out, "added %s to %s\n", EnvPath(home), in.Settings.ProfileScript)
		}
	}
	return nil
}

// Describe says what an install runs: "manager, replicator [east:master],
// connector" or "cross-site replicator [west:slave]".
func Describe(in *config.Install) string {
	var parts []string
	if in.Manager {
		parts = append(parts, "manager")
	}
	if in.Replicator {
		var svcs []string
		for _, s := range in.Services {
			svcs = append(svcs, s.Name+":"+s.Role)
		}
		what := "replicator"
		if in.Kind == config.CrossSiteInstall {
			what = "cross-site replicator"
		}
		parts = append(parts, what+" ["+strings.Join(svcs, " ")+"]")
	}
	if in.Connector {
		parts = append(parts, "connector")
	}
	return strings.Join(parts, ", ")
}

func commandNames(in *config.Install) []string {
	var out []string
	for _, p := range Programs(in.Kind) {
		out = append(out, CommandName(in.Settings.ExecutablePrefix, p))
	}
	return out
}

const wrapperMark = "# carbide wrapper"

func isOurWrapper(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 64)
	n, _ := io.ReadFull(f, head)
	return bytes.Contains(head[:n], []byte(wrapperMark))
}

// shQuote quotes s for a POSIX shell.
func shQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func wrapper(h *config.HostPlan, in *config.Install, name, target string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "#!/bin/sh\n%s: %s bound to the %s install of %s; tpm install/update rewrites it.\n", wrapperMark, name, in.Kind, h.Name)
	fmt.Fprintf(&b, "CARBIDE_HOME=%s\nexport CARBIDE_HOME\n", shQuote(in.Dir))
	fmt.Fprintf(&b, "if [ ! -x %s ]; then\n", shQuote(target))
	fmt.Fprintf(&b, "  echo %s >&2\n  exit 127\nfi\n", shQuote(fmt.Sprintf("%s: %s is not built; run make build in %s", name, target, filepath.Dir(filepath.Dir(target)))))
	fmt.Fprintf(&b, "exec %s \"$@\"\n", shQuote(target))
	return []byte(b.String())
}

func envScript(h *config.HostPlan, in *config.Install, ini []string) []byte {
	bin := BinDir(in.Dir)
	var b strings.Builder
	fmt.Fprintf(&b, "# Carbide: environment of the %s install of %s (written by tpm install).\n", in.Kind, h.Name)
	fmt.Fprintf(&b, "# Use it with: . %s\n", EnvPath(in.Dir))
	fmt.Fprintf(&b, "%s=%s\nexport %s\n", EnvHost, shQuote(h.Name), EnvHost)
	if len(ini) > 0 {
		fmt.Fprintf(&b, "%s=%s\nexport %s\n", EnvINI, shQuote(strings.Join(ini, ",")), EnvINI)
	}
	// Put this install's bin/ first in PATH, removing an earlier copy, so
	// sourcing another host's env.sh and then this one again works.
	fmt.Fprintf(&b, "_carbide_bin=%s\n", shQuote(bin))
	b.WriteString(`_carbide_path=
_carbide_ifs=$IFS
IFS=:
for _carbide_d in $PATH; do
  [ "$_carbide_d" = "$_carbide_bin" ] || _carbide_path="${_carbide_path:+$_carbide_path:}$_carbide_d"
done
IFS=$_carbide_ifs
PATH="$_carbide_bin${_carbide_path:+:$_carbide_path}"
export PATH
unset _carbide_bin _carbide_path _carbide_ifs _carbide_d
`)
	return []byte(b.String())
}

// addToProfile appends a line sourcing env to the profile script (a
// leading ~/ is the home directory) unless it is there already.
func addToProfile(profile, env string) (bool, error) {
	if rest, ok := strings.CutPrefix(profile, "~/"); ok {
		home, err := os.UserHomeDir()
		if err != nil {
			return false, fmt.Errorf("profile-script %s: %w", profile, err)
		}
		profile = filepath.Join(home, rest)
	}
	line := ". " + shQuote(env) + " # carbide"
	data, err := os.ReadFile(profile)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if bytes.Contains(data, []byte(line)) {
		return false, nil
	}
	f, err := os.OpenFile(profile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return false, err
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		line = "\n" + line
	}
	if _, err := f.WriteString(line + "\n"); err != nil {
		f.Close()
		return false, err
	}
	return true, f.Close()
}
