package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/carbidedb/carbide/replicator/thl/thlcmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	env := thlcmd.OSEnv()
	if name := filepath.Base(os.Args[0]); strings.HasSuffix(name, "thl") {
		env.Name = name
	}
	code := thlcmd.Main(ctx, os.Args[1:], env)
	stop()
	os.Exit(code)
}
