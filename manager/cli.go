package manager

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"google.golang.org/grpc"

	"github.com/go-sql-driver/mysql"

	"github.com/carbidedb/carbide/internal/daemon"
	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/internal/security"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

const serviceName = "Tungsten Manager Service"

const usage = `usage: manager start|stop|restart|status|run

  start    start the manager of this install in the background
  stop     stop it (it leaves the site's membership first)
  restart  stop, then start
  status   say whether it runs
  run      run in the foreground (what start runs)
The install is the one CARBIDE_HOME names (the install's bin/manager
wrapper sets it).
`

// Main runs the manager command and returns the exit code.
func Main(ctx context.Context, args []string, out, errOut io.Writer) int {
	return daemon.Main(ctx, daemon.Agent{Program: "manager", Usage: usage, Spec: Spec, StopTimeout: 30 * time.Second, Lean: true, New: func(home string, log *slog.Logger) (daemon.Runner, error) {
		cfg := DefaultConfig(home)
		cfg.Logger = log
		_ = mysql.SetLogger(mysqlLogger{log})
		return New(cfg)
	}}, args, out, errOut)
}

// Spec describes the manager process of the install at home.
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
			a := &Agent{bound: b, st: b.Install.Settings}
			sec, err := security.ForInstall(b)
			if err != nil {
				return err
			}
			conn, err := grpc.NewClient(a.ControlAddr(), sec.ControlDialOptions(nil)...)
			if err != nil {
				return err
			}
			defer conn.Close()
			_, err = managerpb.NewManagerClient(conn).Status(ctx, &managerpb.StatusRequest{})
			return err
		},
	}
}

// mysqlLogger sends the MySQL driver's own lines to the manager's log.
type mysqlLogger struct{ log *slog.Logger }

func (l mysqlLogger) Print(v ...any) { l.log.Debug("mysql driver", "line", fmt.Sprint(v...)) }
