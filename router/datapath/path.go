package datapath

import (
	"log/slog"
	"net"
	"sync/atomic"
	"time"
)

// Config configures a Path.
type Config struct {
	// NoKernel keeps every connection in the event loops (kaccel.go).
	NoKernel bool
	// GreetingTimeout bounds writing the server's greeting to a client
	// the event loops take.
	GreetingTimeout time.Duration
	// Logger is told which data path runs, and why not the kernel's.
	Logger *slog.Logger
}

// Path moves the bytes of routed connections both ways: in the kernel
// (kaccel.go) while it can, in the event loops (pump.go) otherwise.
type Path struct {
	cfg       Config
	pump      *pump
	kernel    *kernel // nil: the kernel path is not available, for kernelErr
	kernelErr error

	greeted atomic.Uint64 // bytes of the greetings Add sent on (bytes.go)
}

// Conduit is a connection Add took over.
type Conduit interface {
	// Shutdown closes both sides soon (from any goroutine).
	Shutdown()
	// Finish closes the client's side now and the server's once the
	// server has ended the session, as a switch's drain needs.
	Finish()
}

// New starts the event loops and, unless cfg.NoKernel, the kernel path
// when the machine allows it; the log says which data path runs.
func New(cfg Config) *Path {
	if cfg.GreetingTimeout <= 0 {
		cfg.GreetingTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Path{cfg: cfg, pump: newPump(pumpLoops())}
	if !cfg.NoKernel {
		k, err := newKernel(p.pump, cfg.Logger)
		if err != nil {
			p.kernelErr = err
			cfg.Logger.Info("data path: event loops only; the kernel path is not available", "why", err)
		} else {
			p.kernel = k
			cfg.Logger.Info("data path: kernel (BPF sockmap), event loops for bulk transfers")
		}
	}
	return p
}

// Add takes over a routed connection: client, and server whose greeting
// the caller has read. The client gets the greeting first; done runs
// once when both sides are closed (at once if the client cannot take
// the greeting).
//
// An error says that neither path can take the connections (not sockets,
// no epoll, stopping): the greeting was sent, and they are the caller's
// to copy.
func (p *Path) Add(client, server net.Conn, greeting []byte, done func()) (Conduit, error) {
	p.greeted.Add(uint64(len(greeting)))
	if p.kernel != nil {
		if c, err := p.kernel.add(client, server, greeting, done); err == nil {
			return c, nil
		}
	}
	// The client gets the greeting the server sent.
	client.SetWriteDeadline(time.Now().Add(p.cfg.GreetingTimeout))
	if _, err := client.Write(greeting); err != nil {
		client.Close()
		server.Close()
		done()
		return ended{}, nil
	}
	client.SetWriteDeadline(time.Time{})
	pr, err := p.pump.add(client, server, done)
	if err != nil {
		return nil, err
	}
	return pr, nil
}

var (
	_ Conduit = (*pair)(nil)
	_ Conduit = (*kpair)(nil)
	_ Conduit = ended{}
)

// ended is the conduit of a connection that ended before either path
// took it.
type ended struct{}

// Shutdown does nothing: both sides are closed.
func (ended) Shutdown() {}

// Finish does nothing: both sides are closed.
func (ended) Finish() {}

// Stalls counts the connections the kernel path's watcher moved to the
// event loops because their bytes stopped moving in the kernel
// (kstall.go).
func (p *Path) Stalls() uint64 {
	if p.kernel == nil {
		return 0
	}
	return p.kernel.stalls.Load()
}

// Close ends every connection still in the data path and stops its
// event loops and the kernel path's watcher.
func (p *Path) Close() {
	if p.kernel != nil {
		p.kernel.stop()
	}
	p.pump.stop()
}
