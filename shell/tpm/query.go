package tpm

import (
	"flag"
	"fmt"
	"strings"
)

func (r *runner) query(args []string) int {
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			r.errorf("%s is not an option of tpm query: query takes none; use query staging or query version", a)
			return ExitUsage
		}
	}
	if len(args) != 1 {
		r.errorf("query takes one of: staging, version")
		return ExitUsage
	}
	switch args[0] {
	case "staging":
		if err := r.bind(); err != nil {
			r.errorf("%v", err)
			return ExitProblems
		}
		if r.bound != nil && r.bound.Manifest.Staging != "" {
			fmt.Fprintln(r.env.Out, r.bound.Manifest.Staging)
			return ExitOK
		}
		s, err := r.env.Staging()
		if err != nil {
			r.errorf("%v", err)
			return ExitProblems
		}
		fmt.Fprintln(r.env.Out, s)
		return ExitOK
	case "version":
		fmt.Fprintln(r.env.Out, Version)
		return ExitOK
	}
	r.errorf("unknown query %q; use staging or version", args[0])
	return ExitUsage
}

func (r *runner) reverse(args []string) int {
	fs := flag.NewFlagSet("reverse", flag.ContinueOnError)
	ini := fs.String("ini", "", "ini files, comma-separated")
	unmasked := fs.Bool("unmasked", false, "print passwords")
	if !r.parse(fs, args) {
		return r.parseExit
	}
	if err := r.bind(); err != nil {
		r.errorf("%v", err)
		return ExitProblems
	}
	cfg, ok := r.load(r.iniFiles(*ini))
	if !ok {
		return ExitProblems
	}
	if err := cfg.Reverse(r.env.Out, !*unmasked); err != nil {
		r.errorf("%v", err)
		return ExitProblems
	}
	return ExitOK
}
