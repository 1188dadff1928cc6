// Command cctrl is the operator shell of a Carbide cluster: an interactive
// shell on a terminal, a script runner on a pipe (cctrl < steps.txt), a
// one-liner with -e. Run as mm_cctrl from the cross-site install, or with
// -mm, it acts on the site's cross-site replicators.
package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/carbidedb/carbide/shell/cctrl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cctrl.Main(ctx, filepath.Base(os.Args[0]), os.Args[1:], cctrl.OSEnv())
	stop()
	os.Exit(code)
}
