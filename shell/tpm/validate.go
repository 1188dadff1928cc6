package tpm

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/carbidedb/carbide/internal/config"
)

func (r *runner) validate(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	ini := fs.String("ini", "", "ini files, comma-separated")
	checkDB := fs.Bool("check-db", false, "connect to every host's database and check its settings")
	timeout := fs.Duration("timeout", 5*time.Second, "per-database connection timeout for --check-db")
	if !r.parse(fs, args) {
		return r.parseExit
	}
	if isSet(fs, "timeout") && !*checkDB {
		r.errorf("--timeout is not used without --check-db: it bounds the connections to the databases, which only --check-db makes")
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
	if !r.checkCerts(cfg) {
		return ExitProblems
	}
	fmt.Fprintf(r.env.Out, "OK: %s: %s\n", strings.Join(files, ","), summary(cfg))
	if !*checkDB {
		return ExitOK
	}
	findings := CheckDatabases(ctx, cfg, *timeout)
	failed, warnings := false, 0
	for _, f := range findings {
		fmt.Fprintln(r.env.Out, f)
		failed = failed || f.Level == LevelError
		if f.Level == LevelWarn {
			warnings++
		}
	}
	if failed {
		return ExitProblems
	}
	if warnings > 0 {
		fmt.Fprintf(r.env.Out, "OK: the databases of %d hosts pass every check, with %d warning(s) above\n", len(databaseHosts(cfg)), warnings)
		return ExitOK
	}
	fmt.Fprintf(r.env.Out, "OK: the databases of %d hosts meet every check\n", len(databaseHosts(cfg)))
	return ExitOK
}

func summary(cfg *config.Config) string {
	var sites, links []string
	for _, s := range cfg.Services {
		if s.Topology == config.TopologyClustered {
			sites = append(sites, s.Name)
		} else {
			links = append(links, s.Name)
		}
	}
	out := fmt.Sprintf("%d site(s) (%s), %d host(s)", len(sites), strings.Join(sites, ", "), len(cfg.Plan().Hosts))
	if len(links) > 0 {
		out += fmt.Sprintf(", %d cross-site service(s) (%s)", len(links), strings.Join(links, ", "))
	}
	return out
}
