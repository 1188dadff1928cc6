package tpm

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/internal/systemd"
)

// uninstallOptions are tpm uninstall's flags.
type uninstallOptions struct {
	ini, hosts string
	all, sure  bool
	kinds      []config.InstallKind
	systemdDir string
}

// removal is one install tpm uninstall removes, as it found it before
// changing anything.
type removal struct {
	host     string
	kind     config.InstallKind
	dir      string
	settings config.Settings
	exists   bool              // dir is there
	manifest *install.Manifest // when it exists and is an install tpm made
	units    []placedUnits     // its units outside dir
	refused  string            // why it is left alone, "" when it goes
}

// placedUnits are the units of one install in one directory.
type placedUnits struct {
	dir    string
	names  []string
	system bool // dir is the system's: systemctl disable --now first
}

// what says which install rm is.
func (rm *removal) what() string {
	return fmt.Sprintf("the %s install of %s in %s", kindLabel(rm.kind), rm.host, rm.dir)
}

// kindLabel names an install kind as the docs do: cluster, cross-site.
func kindLabel(k config.InstallKind) string {
	if k == config.CrossSiteInstall {
		return "cross-site"
	}
	return string(k)
}

// uninstall is tpm uninstall: with --i-am-sure it stops the agents of the
// host's installs, disables and removes their systemd units and deletes
// the install directories; without it, it says what it would remove and
// changes nothing. Everything is looked at before anything is changed,
// and a directory that is not an install tpm made is left alone.
func (r *runner) uninstall(ctx context.Context, args []string) int {
	o, code, ok := r.uninstallFlags(args)
	if !ok {
		return code
	}
	if err := r.bind(); err != nil {
		r.errorf("%v", err)
		return ExitProblems
	}
	if r.bound != nil && o.kinds == nil {
		o.kinds = []config.InstallKind{r.bound.Manifest.Kind} // mm_tpm removes the cross-site install only
	}
	cfg, ok := r.load(r.iniFiles(o.ini))
	if !ok {
		return ExitProblems
	}
	hosts, err := r.hosts(cfg, o.hosts, o.all)
	if err != nil {
		r.errorf("%v", err)
		return ExitProblems
	}
	rms, err := r.survey(cfg, hosts, o)
	if err != nil {
		r.errorf("%v", err)
		return ExitProblems
	}
	var goes, refused []*removal
	for _, rm := range rms {
		switch {
		case rm.refused != "":
			refused = append(refused, rm)
		case rm.exists || len(rm.units) > 0:
			goes = append(goes, rm)
		}
	}
	if len(goes) > 0 && !o.sure {
		r.errorf("it takes --i-am-sure to %s; nothing was changed", wouldRemove(goes))
		return ExitUsage
	}
	code = ExitOK
	for _, rm := range refused {
		r.errorf("%s: %s", rm.host, rm.refused)
		code = ExitProblems
	}
	for _, rm := range rms {
		if rm.refused == "" && !rm.exists && len(rm.units) == 0 {
			fmt.Fprintf(r.env.Out, "%s: nothing to remove of the %s install: %s does not exist and no systemd unit names it\n", rm.host, kindLabel(rm.kind), rm.dir)
		}
	}
	if len(goes) == 0 {
		return code
	}
	if !r.remove(ctx, cfg, goes) {
		code = ExitProblems
	}
	return code
}

// uninstallFlags parses tpm uninstall's flags; when it returns false the
// command ends with the code (-help too).
func (r *runner) uninstallFlags(args []string) (uninstallOptions, int, bool) {
	var o uninstallOptions
	fs := flag.NewFlagSet(r.cmd, flag.ContinueOnError)
	fs.StringVar(&o.ini, "ini", "", "ini files, comma-separated")
	fs.StringVar(&o.hosts, "host", "", "hosts to uninstall, comma-separated (default: this host)")
	fs.BoolVar(&o.all, "all", false, "uninstall every host of the configuration on this machine")
	only := fs.String("only", "", "uninstall only the cluster or the replicator (cross-site) install")
	fs.StringVar(&o.systemdDir, "systemd-dir", "", "remove the agents' systemd units from this directory as well")
	fs.BoolVar(&o.sure, "i-am-sure", false, "stop the agents and delete the installs")
	if !r.parse(fs, args) {
		return o, r.parseExit, false
	}
	kinds, ok := r.hostFlags(fs, "uninstalls", o.all, &o.systemdDir, *only)
	if !ok {
		return o, ExitUsage, false
	}
	o.kinds = kinds
	return o, ExitOK, true
}

// onlyKinds reads --only: nil (every install) when empty.
func onlyKinds(only string) ([]config.InstallKind, error) {
	switch only {
	case "":
		return nil, nil
	case string(config.ClusterInstall), string(config.CrossSiteInstall):
		return []config.InstallKind{config.InstallKind(only)}, nil
	}
	return nil, fmt.Errorf("--only takes cluster or replicator, not %q", only)
}

// survey finds the installs of hosts to remove, their units, and the
// reasons to leave one alone, changing nothing.
func (r *runner) survey(cfg *config.Config, hosts []string, o uninstallOptions) ([]*removal, error) {
	plan := cfg.Plan()
	var rms []*removal
	for _, name := range hosts {
		h, _ := plan.Host(name)
		n := len(rms)
		for _, in := range h.Installs() {
			if o.kinds == nil || slices.Contains(o.kinds, in.Kind) {
				rms = append(rms, &removal{host: name, kind: in.Kind, dir: filepath.Clean(in.Dir), settings: in.Settings})
			}
		}
		if len(rms) == n {
			return nil, fmt.Errorf("host %s has no %s install in the configuration", name, kindNames(o.kinds))
		}
	}
	inRun := map[string]bool{}
	for _, rm := range rms {
		inRun[rm.dir] = true
	}
	for _, rm := range rms {
		rm.refused = r.check(cfg, rm, inRun)
		if rm.refused == "" {
			rm.units = r.placedUnits(rm, o.systemdDir)
			if u := systemUnits(rm); len(u) > 0 && !r.env.Systemd.Root() {
				rm.refused = fmt.Sprintf("the systemd units %s in %s run %s, and only root can remove them; run tpm uninstall as root", strings.Join(u, ", "), r.env.Systemd.Dir, rm.what())
			}
		}
	}
	return rms, nil
}

func kindNames(kinds []config.InstallKind) string {
	var s []string
	for _, k := range kinds {
		s = append(s, string(k))
	}
	return strings.Join(s, " or ")
}

// check says why the install's directory must be left alone, or "": it
// is not an install tpm made for this host, or it holds a database's
// datadir or another install this run does not remove.
func (r *runner) check(cfg *config.Config, rm *removal, inRun map[string]bool) string {
	if !filepath.IsAbs(rm.dir) || rm.dir == "/" {
		return fmt.Sprintf("the %s install directory %q is not an absolute directory below /, so tpm uninstall leaves it alone", kindLabel(rm.kind), rm.dir)
	}
	st, err := os.Lstat(rm.dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return ""
	case err != nil:
		return fmt.Sprintf("cannot look at %s (%v), so tpm uninstall leaves it alone", rm.dir, err)
	case st.Mode()&fs.ModeSymlink != 0:
		target, _ := os.Readlink(rm.dir)
		return fmt.Sprintf("%s is a symbolic link to %s, and tpm uninstall deletes install directories, not links: remove them by hand", rm.dir, target)
	case !st.IsDir():
		return fmt.Sprintf("%s is not a directory, so it is no install tpm made; tpm uninstall leaves it alone", rm.dir)
	}
	rm.exists = true
	m, err := install.ReadManifest(rm.dir)
	if errors.Is(err, install.ErrNotInstalled) {
		return fmt.Sprintf("%s holds no conf/install.json, so it is no install tpm made; tpm uninstall leaves it alone", rm.dir)
	}
	if err != nil {
		return fmt.Sprintf("%v; tpm uninstall leaves %s alone until then", err, rm.dir)
	}
	if filepath.Clean(m.Dir) != rm.dir {
		return fmt.Sprintf("%s's conf/install.json names the install in %s, so it was copied or moved there; tpm uninstall leaves it alone", rm.dir, m.Dir)
	}
	if m.Host != rm.host || m.Kind != rm.kind {
		return fmt.Sprintf("%s holds the %s install of %s, not the %s install of %s; tpm uninstall leaves it alone", rm.dir, kindLabel(m.Kind), m.Host, kindLabel(rm.kind), rm.host)
	}
	rm.manifest = m
	for _, d := range datadirs(cfg) {
		if within(d, rm.dir) {
			return fmt.Sprintf("%s holds the database's datadir %s, which tpm uninstall never removes: move the datadir out of the install directory first", rm.dir, d)
		}
	}
	for _, other := range installDirs(cfg) {
		if other != rm.dir && within(other, rm.dir) && !inRun[other] && exists(install.ManifestPath(other)) {
			return fmt.Sprintf("%s holds the install in %s, which this run does not remove; uninstall it as well, or move it out first", rm.dir, other)
		}
	}
	return ""
}

// datadirs are the databases' datadirs the configuration names: every
// datasource-mysql-data-directory, and in a sandbox each host's
// DIR/<host>/mysql (internal/sandbox).
func datadirs(cfg *config.Config) []string {
	var out []string
	for _, h := range cfg.Plan().Hosts {
		for _, in := range h.Installs() {
			if d := in.Settings.DataDirectory; d != "" {
				out = append(out, filepath.Clean(d))
			}
		}
		if cfg.SandboxRoot != "" {
			out = append(out, filepath.Clean(path.Join(cfg.SandboxRoot, h.Name, "mysql")))
		}
	}
	return out
}

// installDirs are the install directories of every host of the
// configuration.
func installDirs(cfg *config.Config) []string {
	var out []string
	for _, h := range cfg.Plan().Hosts {
		for _, in := range h.Installs() {
			out = append(out, filepath.Clean(in.Dir))
		}
	}
	return out
}

// within reports whether p is dir or inside it.
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// placedUnits finds the install's units where tpm places them outside
// its directory: the system's directory, and --systemd-dir. A unit is the
// install's when its text names the install directory (systemd.HomeOf).
// Units in the install's share/systemd go with the directory.
func (r *runner) placedUnits(rm *removal, forced string) []placedUnits {
	var out []placedUnits
	for _, d := range []string{r.env.Systemd.Dir, forced} {
		if d == "" || within(d, rm.dir) || slices.ContainsFunc(out, func(p placedUnits) bool { return p.dir == d }) {
			continue
		}
		p := placedUnits{dir: d, system: d == r.env.Systemd.Dir}
		for _, agent := range []string{systemd.Manager, systemd.Replicator, systemd.Connector} {
			name := systemd.UnitName(rm.kind, agent)
			data, err := os.ReadFile(filepath.Join(d, name))
			if err == nil && systemd.HomeOf(string(data)) != "" && filepath.Clean(systemd.HomeOf(string(data))) == rm.dir {
				p.names = append(p.names, name)
			}
		}
		if len(p.names) > 0 {
			out = append(out, p)
		}
	}
	return out
}

// systemUnits are the install's units in the system's directory.
func systemUnits(rm *removal) []string {
	for _, p := range rm.units {
		if p.system {
			return p.names
		}
	}
	return nil
}

// wouldRemove says what tpm uninstall --i-am-sure does to goes.
func wouldRemove(goes []*removal) string {
	var dirs, unitDirs []string
	units := map[string][]string{} // by directory
	system := map[string]bool{}
	for _, rm := range goes {
		if rm.exists {
			dirs = append(dirs, rm.what())
		}
		for _, p := range rm.units {
			if units[p.dir] == nil {
				unitDirs = append(unitDirs, p.dir)
			}
			units[p.dir] = append(units[p.dir], p.names...)
			system[p.dir] = p.system
		}
	}
	var parts []string
	switch len(dirs) {
	case 0:
	case 1:
		parts = append(parts, "stop the agents of "+dirs[0]+" and delete that directory")
	default:
		parts = append(parts, "stop the agents of "+strings.Join(dirs, " and of ")+" and delete those directories")
	}
	for _, d := range unitDirs {
		verb := "delete"
		if system[d] {
			verb = "disable and delete"
		}
		parts = append(parts, fmt.Sprintf("%s the systemd units %s in %s", verb, strings.Join(units[d], ", "), d))
	}
	return strings.Join(parts, ", and ")
}
