package cctrl

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"google.golang.org/grpc"

	"github.com/carbidedb/carbide/internal/security"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// Config is one cctrl invocation's options.
type Config struct {
	// Name is the program's name in messages: cctrl, or mm_cctrl.
	Name string
	// Host and Port name the manager to talk to (-host, -port); the
	// install's own host and manager-rpc-port when empty.
	Host string
	Port int
	// Service is the service (site) to act on (-service); the host's own
	// site when empty.
	Service string
	// Exprs is -e: commands separated by ';', run like a script.
	Exprs string
	// NoHistory turns off ~/.cctrl_history (-no-history).
	NoHistory bool
	// MM starts in mm mode (-mm, or a cross-site install's mm_cctrl).
	MM bool
	// HistoryFile is where the REPL keeps its history; ~/.cctrl_history
	// when empty.
	HistoryFile string
	// Timeout bounds one status or replicator call to one agent.
	Timeout time.Duration
	// CommandTimeout bounds one command carried out by the coordinator
	// (a switch waits for a replica to catch up).
	CommandTimeout time.Duration
}

// DefaultConfig returns the defaults of the command line.
func DefaultConfig() Config {
	return Config{Name: "cctrl", Timeout: 3 * time.Second, CommandTimeout: 5 * time.Minute}
}

// Validate checks the options.
func (c *Config) Validate() error {
	if c.Name == "" {
		c.Name = "cctrl"
	}
	if c.Port < 0 || c.Port > 65535 {
		return usagef("-port must be from 1 to 65535, not %d", c.Port)
	}
	if c.Port != 0 && c.Host == "" {
		return usagef("-port goes with -host: give the manager's host too")
	}
	if c.Timeout <= 0 || c.CommandTimeout <= 0 {
		return usagef("timeouts must be positive")
	}
	return nil
}

// ManagerAPI is what cctrl asks of a manager (manager.proto);
// managerpb.ManagerClient has it.
type ManagerAPI interface {
	Status(ctx context.Context, in *managerpb.StatusRequest, opts ...grpc.CallOption) (*managerpb.StatusReply, error)
	Command(ctx context.Context, in *managerpb.CommandRequest, opts ...grpc.CallOption) (*managerpb.CommandReply, error)
}

// ReplicatorAPI is what cctrl asks of a replicator's control API
// (replicator.proto); replicatorpb.ReplicatorClient has it.
type ReplicatorAPI interface {
	Services(ctx context.Context, in *replicatorpb.ServicesRequest, opts ...grpc.CallOption) (*replicatorpb.ServicesReply, error)
	Status(ctx context.Context, in *replicatorpb.StatusRequest, opts ...grpc.CallOption) (*replicatorpb.StatusReply, error)
	Online(ctx context.Context, in *replicatorpb.OnlineRequest, opts ...grpc.CallOption) (*replicatorpb.StatusReply, error)
	Offline(ctx context.Context, in *replicatorpb.OfflineRequest, opts ...grpc.CallOption) (*replicatorpb.StatusReply, error)
	Reset(ctx context.Context, in *replicatorpb.ResetRequest, opts ...grpc.CallOption) (*replicatorpb.StatusReply, error)
}

var (
	_ ManagerAPI    = managerpb.ManagerClient(nil)
	_ ReplicatorAPI = replicatorpb.ReplicatorClient(nil)
)

// Env is what a session takes from its surroundings.
type Env struct {
	In       io.Reader
	Out, Err io.Writer
	Getenv   func(string) string
	// Terminal says stdin is a terminal: cctrl runs the REPL and may ask
	// for confirmations. Otherwise it reads a script from In.
	Terminal bool
	// Color says states may be coloured: stdout is a terminal and NO_COLOR
	// is unset.
	Color bool
	// DialManager and DialReplicator connect to an agent; the returned
	// func releases the connection.
	DialManager    func(ctx context.Context, addr string) (ManagerAPI, func(), error)
	DialReplicator func(ctx context.Context, addr string) (ReplicatorAPI, func(), error)
	// REPL runs the interactive loop; nil where there is no terminal.
	REPL func(ctx context.Context, s *Session) error
}

// OSEnv returns the Env of the running process.
func OSEnv() Env {
	return Env{
		In: os.Stdin, Out: os.Stdout, Err: os.Stderr, Getenv: os.Getenv,
		Terminal: isatty.IsTerminal(os.Stdin.Fd()),
		Color:    isatty.IsTerminal(os.Stdout.Fd()) && os.Getenv("NO_COLOR") == "",
		REPL:     RunPrompt,
	}
}

// DialManager returns a dialer of managers' gRPC APIs with sec.
func DialManager(sec *security.Cluster) func(context.Context, string) (ManagerAPI, func(), error) {
	return func(_ context.Context, addr string) (ManagerAPI, func(), error) {
		conn, err := grpc.NewClient(addr, sec.ControlDialOptions(nil)...)
		if err != nil {
			return nil, nil, fmt.Errorf("manager address %s: %w", addr, err)
		}
		return managerpb.NewManagerClient(conn), func() { conn.Close() }, nil
	}
}

// DialReplicator returns a dialer of replicators' control APIs with sec.
func DialReplicator(sec *security.Cluster) func(context.Context, string) (ReplicatorAPI, func(), error) {
	return func(_ context.Context, addr string) (ReplicatorAPI, func(), error) {
		conn, err := grpc.NewClient(addr, sec.ControlDialOptions(nil)...)
		if err != nil {
			return nil, nil, fmt.Errorf("replicator address %s: %w", addr, err)
		}
		return replicatorpb.NewReplicatorClient(conn), func() { conn.Close() }, nil
	}
}
