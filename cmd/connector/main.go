package main

import (
	"context"
	"os"
	"strings"

	"github.com/carbidedb/carbide/router"
)

func main() {
	args := os.Args[1:]
	// `run --home=DIR` is how start launches the process; the flag only
	// marks the process for status and stop.
	if len(args) == 2 && args[0] == "run" && strings.HasPrefix(args[1], "--home=") {
		os.Setenv("CARBIDE_HOME", strings.TrimPrefix(args[1], "--home="))
		args = args[:1]
	}
	os.Exit(router.Main(context.Background(), args, os.Stdout, os.Stderr))
}
