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
