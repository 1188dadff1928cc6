package agent

import (
	"context"
	"io"
	"log/slog"
	"os"
	"time"

	"google.golang.org/grpc"

	"github.com/carbidedb/carbide/internal/daemon"
	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/internal/security"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

const serviceName = "Tungsten Replicator Service"

const usage = `usage: replicator start|stop|restart|status|run

  start    start the replicator of this install in the background
  stop     stop it (services go offline at a transaction boundary)
  restart  stop, then start
  status   say whether it runs
  run      run in the foreground (what start runs)
The install is the one CARBIDE_HOME names (the install's bin/replicator
and mm_replicator wrappers set it).
`

// Main runs the replicator command and returns the exit code.
func Main(ctx context.Context, args []string, out, errOut io.Writer) int {
	return daemon.Main(ctx, daemon.Agent{Program: "replicator", Usage: usage, Spec: Spec, StopTimeout: 60 * time.Second, Lean: true, New: func(home string, log *slog.Logger) (daemon.Runner, error) {
		return New(Config{Home: home, AutoOnline: true, Logger: log})
	}}, args, out, errOut)
}

// Spec describes the replicator process of the install at home.
func Spec(home string, out io.Writer) daemon.Spec {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	return daemon.Spec{
		Name: serviceName, PIDFile: PIDFile(home), LogFile: LogFile(home),
		Args: []string{exe, "run", "--home=" + home}, Mark: "--home=" + home,
		Out: out,
		Ready: func(ctx context.Context) error {
			b, err := install.Open(home)
			if err != nil {
				return err
			}
			a := &Agent{bound: b}
			addr, _ := a.Addrs()
			sec, err := security.ForInstall(b)
			if err != nil {
				return err
			}
			conn, err := grpc.NewClient(addr, sec.ControlDialOptions(nil)...)
			if err != nil {
				return err
			}
			defer conn.Close()
			_, err = replicatorpb.NewReplicatorClient(conn).Services(ctx, &replicatorpb.ServicesRequest{})
			return err
		},
	}
}
