// Command tpm validates a tungsten.ini, installs and updates a host's
// Carbide install directories, and prints the configuration back.
package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/carbidedb/carbide/shell/tpm"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	env := tpm.OSEnv()
	if name := filepath.Base(os.Args[0]); strings.HasSuffix(name, "tpm") {
		env.Name = name
	}
	code := tpm.Main(ctx, os.Args[1:], env)
	stop()
	os.Exit(code)
}
