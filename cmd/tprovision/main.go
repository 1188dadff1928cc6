package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/carbidedb/carbide/shell/tprovision"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := tprovision.Main(ctx, os.Args[1:], tprovision.OSEnv())
	stop()
	os.Exit(code)
}
