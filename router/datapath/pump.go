package datapath

import (
	"errors"
	"maps"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The pump moves bytes between the two sockets of each bridge in a few
// epoll event loops, the way HAProxy does, instead of two goroutines per
// connection blocked in io.Copy. A query and its answer cost one
// epoll_wait (shared by every connection ready at that moment), a read and
// a write on each side: no goroutine wake-up per packet, which on a loaded
// two-core machine is what made an io.Copy proxy slower than HAProxy
// (docs/connector.md, "Data path").
//
// Each socket is taken from Go's poller (duplicated, the original closed)
// and stays non-blocking. Reads go into the loop's scratch buffer and are
// written to the other side at once; only what the other side cannot take
// yet is kept (pending), and reading from that socket pauses until it is
// flushed, so a slow reader holds at most one read's worth per direction.
// An EOF is passed on as a half-close once everything before it is
// written; the pair closes when both directions ended or on any error.

// pumpRead is the scratch buffer size: one read per readiness.
const pumpRead = 64 << 10

type pump struct {
	loops []*loop
	mu    sync.Mutex
	next  int
	err   error // why the pump cannot run (no epoll); bridges fall back to io.Copy

	gone [2]uint64 // bytes moved by stopped loops (bytes.go)
}

// procsMu serialises the GOMAXPROCS changes of pumps starting and stopping.
var procsMu sync.Mutex

// addProcs gives each loop a P of its own on top of what the process had:
// a loop holds its P while it waits in epoll.
func addProcs(n int) {
	procsMu.Lock()
	defer procsMu.Unlock()
	runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + n)
}

func newPump(n int) *pump {
	p := &pump{}
	addProcs(n)
	for i := 0; i < n; i++ {
		l, err := newLoop()
		if err != nil {
			started := len(p.loops)
			p.stop()
			addProcs(-(n - started))
			p.err = err
			return p
		}
		p.loops = append(p.loops, l)
		go l.run()
	}
	return p
}

func (p *pump) stop() {
	p.mu.Lock()
	loops := p.loops
	p.loops = nil
	p.mu.Unlock()
	for _, l := range loops {
		l.stop()
	}
	p.retire(loops)
	addProcs(-len(loops))
}

// add hands the two connections to a loop; done runs once when the pair
// closed. The net.Conns are closed (their sockets live on in the pair).
func (p *pump) add(a, b net.Conn, done func()) (*pair, error) {
	p.mu.Lock()
	err := p.err
	if err == nil && len(p.loops) == 0 {
		err = errors.New("the connector is stopping")
	}
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}
	for _, c := range []net.Conn{a, b} {
		if _, ok := c.(syscall.Conn); !ok {
			return nil, errors.New("not a socket")
		}
	}
	fa, err := takeFD(a)
	if err != nil {
		return nil, err
	}
	fb, err := takeFD(b)
	if err != nil {
		unix.Close(fa)
		return nil, err
	}
	pr, err := p.adopt(fa, fb, false, done)
	if err != nil {
		unix.Close(fa)
		unix.Close(fb)
	}
	return pr, err
}

// adopt hands two sockets already out of Go's poller to a loop (the
// caller closes them on an error). mapped: they are in the kernel path's
// SOCKMAP (kaccel.go), and the pair closes at its first EOF.
func (p *pump) adopt(fa, fb int, mapped bool, done func()) (*pair, error) {
	p.mu.Lock()
	if p.err != nil || len(p.loops) == 0 {
		err := p.err
		p.mu.Unlock()
		if err == nil {
			err = errors.New("the connector is stopping")
		}
		return nil, err
	}
	l := p.loops[p.next%len(p.loops)]
	p.next++
	p.mu.Unlock()
	pr := &pair{loop: l, done: done, mapped: mapped}
	pr.ends[0] = end{fd: fa, pair: pr, side: 0}
	pr.ends[1] = end{fd: fb, pair: pr, side: 1}
	if err := l.register(pr); err != nil {
		return nil, err
	}
	return pr, nil
}

// takeFD duplicates c's socket and closes c, which removes it from Go's
// poller; the duplicate shares the non-blocking open file.
func takeFD(c net.Conn) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1, errors.New("not a socket")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var dupErr error
	if err := rc.Control(func(s uintptr) {
		fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if dupErr != nil {
		return -1, dupErr
	}
	c.Close()
	return fd, nil
}

// The ends of a pair: the application's connection and the database's.
const (
	clientSide = 0
	serverSide = 1
)

// pair is a bridge's two sockets inside a loop.
type pair struct {
	loop *loop
	ends [2]end
	done func()

	mu     sync.Mutex // guards closed against close (loop) racing Shutdown (others)
	closed bool
	// finishing: the pair waits for the server to end the session; what
	// is read from either side is dropped.
	finishing atomic.Bool
	// mapped: the sockets are in the kernel path's SOCKMAP, which a
	// half-closed socket must not stay in: the first EOF, once passed
	// on, closes the pair.
	mapped bool
}

// end is one socket: what was read from it and not yet written to the
// other, and the events it is registered for.
type end struct {
	fd      int
	id      uint64 // the loop's name for it in epoll events (0 is the wake-up)
	pair    *pair
	side    int
	pending []byte // read from this socket, waiting for the other to take it
	eof     bool   // no more reads: EOF seen and passed on once pending is flushed
	shut    bool   // this socket's write side was shut (the other's EOF passed on)
	events  uint32 // registered interest
}

func (e *end) other() *end { return &e.pair.ends[1-e.side] }

// want is the interest e needs now: readable while nothing of it is
// pending, writable while the other side has something for it.
func (e *end) want() uint32 {
	var ev uint32
	if !e.eof && len(e.pending) == 0 {
		ev |= unix.EPOLLIN
	}
	if len(e.other().pending) > 0 {
		ev |= unix.EPOLLOUT
	}
	return ev
}

// Shutdown makes the loop close the pair soon (from any goroutine).
func (pr *pair) Shutdown() {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.closed {
		return
	}
	unix.Shutdown(pr.ends[0].fd, unix.SHUT_RDWR)
	unix.Shutdown(pr.ends[1].fd, unix.SHUT_RDWR)
}

// Finish ends the client's side at once and the server's side once the
// server has closed it (from any goroutine): the server sees the end of
// the session only after every command already sent, so when the pair is
// done the database runs nothing more of this session. A switch waits for
// that before making the old primary read-only.
func (pr *pair) Finish() {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.closed {
		return
	}
	pr.finishing.Store(true)
	// A shut socket reports EPOLLHUP at every wait: stop watching the
	// client's, the server's end is what the loop waits for.
	unix.EpollCtl(pr.loop.epfd, unix.EPOLL_CTL_DEL, pr.ends[clientSide].fd, nil)
	unix.Shutdown(pr.ends[clientSide].fd, unix.SHUT_RDWR)
	unix.Shutdown(pr.ends[serverSide].fd, unix.SHUT_WR)
	// The server end's interest may be write-only (pending data for it):
	// make it readable so its EOF is seen (the loop no longer settles a
	// finishing pair's interests).
	unix.EpollCtl(pr.loop.epfd, unix.EPOLL_CTL_MOD, pr.ends[serverSide].fd, event(unix.EPOLLIN, pr.ends[serverSide].id))
}

type loop struct {
	epfd int
	wake int // eventfd that stops the loop

	mu     sync.Mutex
	ends   map[uint64]*end // by id: a closed socket's number can come back at once
	pairs  map[*pair]struct{}
	lastID uint64
	buf    []byte

	// moved counts the bytes read from each side (clientSide, serverSide):
	// written by the loop only, read by scrapes (bytes.go).
	moved [2]atomic.Uint64
}

func event(ev uint32, id uint64) *unix.EpollEvent {
	return &unix.EpollEvent{Events: ev, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
}

func eventID(ev *unix.EpollEvent) uint64 { return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32 }

func newLoop() (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, event(unix.EPOLLIN, 0)); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil, err
	}
	return &loop{epfd: epfd, wake: wake, ends: map[uint64]*end{}, pairs: map[*pair]struct{}{}, buf: make([]byte, pumpRead)}, nil
}

func (l *loop) register(pr *pair) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range pr.ends {
		e := &pr.ends[i]
		e.events = unix.EPOLLIN
		l.lastID++
		e.id = l.lastID
		l.ends[e.id] = e
	}
	l.pairs[pr] = struct{}{}
	for i := range pr.ends {
		e := &pr.ends[i]
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, e.fd, event(e.events, e.id)); err != nil {
			if i == 1 {
				unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, pr.ends[0].fd, nil)
			}
			delete(l.ends, pr.ends[0].id)
			delete(l.ends, pr.ends[1].id)
			delete(l.pairs, pr)
			return err
		}
	}
	return nil
}

// stop ends the loop; it closes every pair it still has.
func (l *loop) stop() {
	var one = [8]byte{1}
	unix.Write(l.wake, one[:])
}

func (l *loop) run() {
	runtime.LockOSThread()
	events := make([]unix.EpollEvent, 128)
	ready := make([]*end, len(events))
	idle := false
	for {
		// Busy, the loop waits with a raw call that keeps its P; after
		// 10 ms without an event it waits with a call that gives the P
		// back, so that an idle connector costs the runtime nothing
		// (no sysmon preemption of a P that never leaves).
		var n int
		var err error
		if idle {
			n, err = unix.EpollWait(l.epfd, events, -1)
		} else {
			n, err = epollWait(l.epfd, events, 10)
		}
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			break
		}
		idle = n == 0
		// One lock for the batch: a pair closed while the batch is handled
		// is skipped by its closed mark.
		stop := false
		l.mu.Lock()
		for i := 0; i < n; i++ {
			ready[i] = l.ends[eventID(&events[i])]
		}
		l.mu.Unlock()
		for i := 0; i < n; i++ {
			e := ready[i]
			if eventID(&events[i]) == 0 {
				stop = true
				continue
			}
			if e == nil || e.pair.closed {
				continue
			}
			l.handle(e, events[i].Events)
		}
		if stop {
			break
		}
	}
	l.mu.Lock()
	prs := slices.Collect(maps.Keys(l.pairs))
	l.mu.Unlock()
	for _, pr := range prs {
		l.close(pr)
	}
	unix.Close(l.epfd)
	unix.Close(l.wake)
}

func (l *loop) handle(e *end, ev uint32) {
	if e.pair.finishing.Load() {
		l.finishing(e)
		return
	}
	o := e.other()
	if ev&unix.EPOLLERR != 0 {
		l.close(e.pair)
		return
	}
	// Writable: flush what the other side has for e.
	if ev&unix.EPOLLOUT != 0 && len(o.pending) > 0 {
		if !l.flush(o, e) {
			return
		}
	}
	if ev&(unix.EPOLLIN|unix.EPOLLHUP) != 0 && !e.eof && len(e.pending) == 0 {
		n, err := read(e.fd, l.buf)
		switch {
		case n > 0:
			l.moved[e.side].Add(uint64(n))
			if !l.send(e, o, l.buf[:n]) {
				return
			}
		case err == unix.EAGAIN || err == unix.EINTR:
		case err != nil:
			l.close(e.pair)
			return
		default: // EOF
			e.eof = true
		}
	} else if ev&unix.EPOLLHUP != 0 {
		// Hung up while its data waits for the other side: nobody is left
		// to answer.
		l.close(e.pair)
		return
	}
	l.settle(e)
}

// finishing handles an event of a pair that waits for its server to end
// the session (pair.Finish): what the server still answers is dropped,
// and its end (EOF or an error) closes the pair. The client's end is no
// longer watched.
func (l *loop) finishing(e *end) {
	if e.side != serverSide {
		return
	}
	n, err := read(e.fd, l.buf)
	if n > 0 || err == unix.EAGAIN || err == unix.EINTR {
		return
	}
	l.close(e.pair)
}

// send writes p (read from src) to dst, keeping what dst cannot take yet.
func (l *loop) send(src, dst *end, p []byte) bool {
	for len(p) > 0 {
		n, err := write(dst.fd, p)
		if n > 0 {
			p = p[n:]
			continue
		}
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			break
		}
		l.close(src.pair)
		return false
	}
	if len(p) > 0 {
		src.pending = append(src.pending[:0], p...)
	}
	return true
}

// flush writes src's pending data to dst.
func (l *loop) flush(src, dst *end) bool {
	for len(src.pending) > 0 {
		n, err := write(dst.fd, src.pending)
		if n > 0 {
			src.pending = src.pending[n:]
			continue
		}
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return true
		}
		l.close(src.pair)
		return false
	}
	src.pending = nil
	return true
}

// settle passes EOFs on, closes a finished pair and updates interests.
func (l *loop) settle(e *end) {
	pr := e.pair
	for i := range pr.ends {
		s := &pr.ends[i]
		if pr.mapped && s.eof && len(s.pending) == 0 {
			l.close(pr)
			return
		}
		if s.eof && len(s.pending) == 0 && !s.other().shut {
			s.other().shut = true
			unix.Shutdown(s.other().fd, unix.SHUT_WR)
		}
	}
	if pr.ends[0].eof && pr.ends[1].eof && len(pr.ends[0].pending) == 0 && len(pr.ends[1].pending) == 0 {
		l.close(pr)
		return
	}
	for i := range pr.ends {
		s := &pr.ends[i]
		if w := s.want(); w != s.events {
			s.events = w
			unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, s.fd, event(w, s.id))
		}
	}
}

// close releases pr's sockets (loop goroutine only) and runs its done.
func (l *loop) close(pr *pair) {
	pr.mu.Lock()
	if pr.closed {
		pr.mu.Unlock()
		return
	}
	pr.closed = true
	l.mu.Lock()
	for i := range pr.ends {
		delete(l.ends, pr.ends[i].id)
	}
	delete(l.pairs, pr)
	l.mu.Unlock()
	for i := range pr.ends {
		unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, pr.ends[i].fd, nil)
		unix.Close(pr.ends[i].fd)
	}
	pr.mu.Unlock()
	if pr.done != nil {
		pr.done()
	}
}

// epollWait, read and write are raw system calls: the loop keeps its P
// while it waits, so entering and leaving each call costs no scheduler
// hand-off, no wake-up of another thread and no sysmon retake (measured:
// a tenth of the connector's CPU went to those). The process runs with
// one P more per loop (addProcs); the short timeout lets a stop-the-world
// reach a busy loop, and an idle one waits in an ordinary system call.
// It is not inlined, so that each wait starts with a preemption point.
//
//go:noinline
func epollWait(epfd int, events []unix.EpollEvent, msec int) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(msec), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// read and write are recv and send: the socket calls skip the file layer
// read and write go through.
func read(fd int, p []byte) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), unix.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

func write(fd int, p []byte) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

// pumpLoops is how many event loops a proxy runs: one per core, as
// HAProxy runs threads, up to four.
// CARBIDE_CONNECTOR_LOOPS sets another number.
func pumpLoops() int {
	if n, err := strconv.Atoi(os.Getenv("CARBIDE_CONNECTOR_LOOPS")); err == nil && n > 0 && n <= 64 {
		return n
	}
	return min(runtime.NumCPU(), 4)
}
