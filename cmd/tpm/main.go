package main

import (
	"context"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/go-sql-driver/mysql"

	"github.com/carbidedb/carbide/shell/tpm"
)

func main() {
	// The MySQL driver logs connection errors to stderr on its own; tpm
	// reports them itself, in one sentence per host.
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	env := tpm.OSEnv()
	if name := filepath.Base(os.Args[0]); strings.HasSuffix(name, "tpm") {
		env.Name = name
	}
	code := tpm.Main(ctx, os.Args[1:], env)
	stop()
	os.Exit(code)
}
