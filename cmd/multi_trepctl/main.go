package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/carbidedb/carbide/shell/multitrepctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	env := multitrepctl.OSEnv()
	env.Name = filepath.Base(os.Args[0])
	code := multitrepctl.Main(ctx, os.Args[1:], env)
	stop()
	os.Exit(code)
}
