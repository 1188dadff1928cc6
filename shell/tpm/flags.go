package tpm

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// commands are tpm's commands. Each parses its options first (r.parse),
// so that run with -help it defines them and does nothing else: the flag
// walk in the tests and the message for another command's option read
// them that way. It is a function because parse looks options up in it.
func commands() map[string]func(r *runner, ctx context.Context, args []string) int {
	return map[string]func(r *runner, ctx context.Context, args []string) int{
		"validate":  (*runner).validate,
		"install":   func(r *runner, ctx context.Context, args []string) int { return r.install(ctx, args, false) },
		"update":    func(r *runner, ctx context.Context, args []string) int { return r.install(ctx, args, true) },
		"uninstall": func(r *runner, ctx context.Context, args []string) int { return r.uninstall(ctx, args) },
		"query":     func(r *runner, _ context.Context, args []string) int { return r.query(args) },
		"reverse":   func(r *runner, _ context.Context, args []string) int { return r.reverse(args) },
		"cert":      func(r *runner, _ context.Context, args []string) int { return r.cert(args) },
	}
}

// notAnOption says that name is not an option of cmd, and which commands
// take it.
func notAnOption(cmd, name string) string {
	var owners []string
	for other, c := range commands() {
		r := &runner{env: Env{Out: io.Discard, Err: io.Discard}, cmd: other}
		if other != cmd && c(r, context.Background(), []string{"-help"}) == ExitOK && r.flags != nil && r.flags.Lookup(name) != nil {
			owners = append(owners, other)
		}
	}
	slices.Sort(owners)
	if len(owners) == 0 {
		return fmt.Sprintf("--%s is not an option of tpm %s", name, cmd)
	}
	return fmt.Sprintf("--%s is not an option of tpm %s; it belongs to tpm %s", name, cmd, strings.Join(owners, " and tpm "))
}

// isSet reports whether the option was given.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
