package router

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/carbidedb/carbide/internal/daemon"
	"github.com/carbidedb/carbide/internal/install"
)

const usage = `usage: connector start|stop|restart|status|run

  start    start the connector of this install in the background
  stop     stop it (open application connections are closed)
  restart  stop, then start
  status   say whether it runs
  run      run in the foreground (what start runs)
The install is the one CARBIDE_HOME names (the install's bin/connector
wrapper sets it).
`

// Main runs the connector command and returns the exit code.
func Main(ctx context.Context, args []string, out, errOut io.Writer) int {
	return daemon.Main(ctx, daemon.Agent{Program: "connector", Usage: usage, Spec: Spec, StopTimeout: 30 * time.Second, New: func(home string, log *slog.Logger) (daemon.Runner, error) {
		return New(Config{Home: home, Logger: log})
	}}, args, out, errOut)
}

// PIDFile is where `connector start` records the process.
func PIDFile(home string) string { return install.PIDFile(home, "connector") }

// LogFile is the process's log.
func LogFile(home string) string { return filepath.Join(install.LogDir(home), "connector.log") }

// Spec describes the connector process of the install at home.
func Spec(home string, out io.Writer) daemon.Spec {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	return daemon.Spec{
		Name: "Tungsten Connector Service", PIDFile: PIDFile(home), LogFile: LogFile(home),
		Args: []string{exe, "run", "--home=" + home}, Mark: "--home=" + home,
		Out: out,
		// Ready when the process says its listeners are up (a test
		// connection would count as an application's).
		Ready: func(ctx context.Context) error {
			pid, ok := install.ReadConnectorReady(home)
			b, err := os.ReadFile(PIDFile(home))
			if !ok || err != nil || strconv.Itoa(pid) != strings.TrimSpace(string(b)) {
				return errors.New("the connector is not listening yet")
			}
			return nil
		},
	}
}
