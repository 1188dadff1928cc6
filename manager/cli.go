package manager

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/go-sql-driver/mysql"

	"github.com/carbidedb/carbide/internal/daemon"
	"github.com/carbidedb/carbide/internal/install"
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
	if len(args) != 1 {
		fmt.Fprint(errOut, usage)
		return 2
	}
	home := os.Getenv(install.EnvHome)
	if home == "" {
		fmt.Fprintln(errOut, "manager: CARBIDE_HOME is not set; run the install's bin/manager wrapper")
		return 1
	}
	spec := Spec(home, out)
	switch args[0] {
	case "run":
		return run(ctx, home, errOut)
	case "start":
		if err := daemon.Start(ctx, spec); err != nil {
			fmt.Fprintf(errOut, "manager start: %v\n", err)
			return 1
		}
	case "stop":
		if err := daemon.Stop(ctx, spec, 30*time.Second); err != nil {
			fmt.Fprintf(errOut, "manager stop: %v\n", err)
			return 1
		}
	case "restart":
		if err := daemon.Stop(ctx, spec, 30*time.Second); err != nil {
			fmt.Fprintf(errOut, "manager restart: %v\n", err)
			return 1
		}
		if err := daemon.Start(ctx, spec); err != nil {
			fmt.Fprintf(errOut, "manager restart: %v\n", err)
			return 1
		}
	case "status":
		if pid, ok := daemon.Running(spec); ok {
			fmt.Fprintf(out, "%s is running: PID:%d\n", serviceName, pid)
			return 0
		}
		fmt.Fprintf(out, "%s is not running.\n", serviceName)
		return 1
	case "help", "-h", "--help":
		fmt.Fprint(out, usage)
	default:
		fmt.Fprintf(errOut, "manager: unknown command %q\n%s", args[0], usage)
		return 2
	}
	return 0
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
			conn, err := grpc.NewClient(a.ControlAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				return err
			}
			defer conn.Close()
			_, err = managerpb.NewManagerClient(conn).Status(ctx, &managerpb.StatusRequest{})
			return err
		},
	}
}

func run(ctx context.Context, home string, errOut io.Writer) int {
	log := slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	cfg := DefaultConfig(home)
	cfg.Logger = log
	_ = mysql.SetLogger(mysqlLogger{log})
	a, err := New(cfg)
	if err != nil {
		fmt.Fprintf(errOut, "manager: %v\n", err)
		return 1
	}
	if err := daemon.WritePID(PIDFile(home)); err != nil {
		fmt.Fprintf(errOut, "manager: %v\n", err)
		return 1
	}
	defer daemon.RemovePID(PIDFile(home))
	if err := a.Run(ctx); err != nil {
		fmt.Fprintf(errOut, "manager: %v\n", err)
		return 1
	}
	return 0
}

// mysqlLogger sends the MySQL driver's own lines to the manager's log.
type mysqlLogger struct{ log *slog.Logger }

func (l mysqlLogger) Print(v ...any) { l.log.Debug("mysql driver", "line", fmt.Sprint(v...)) }
