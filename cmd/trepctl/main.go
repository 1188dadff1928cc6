// Command trepctl controls a replicator: status, online, offline, reset,
// setrole, heartbeat, wait. Run as mm_trepctl it talks to the cross-site
// replicator of the install its wrapper binds.
package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/carbidedb/carbide/shell/trepctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	env := trepctl.OSEnv()
	env.Name = filepath.Base(os.Args[0])
	code := trepctl.Main(ctx, os.Args[1:], env)
	stop()
	os.Exit(code)
}
