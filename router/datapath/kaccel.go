package datapath

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The kernel path: a bridge's bytes go from one socket to the other inside
// the kernel, without waking the connector. Both sockets go into a
// SOCKMAP whose SK_SKB verdict program (bpf.go) sends every packet one
// receives to the other's transmit queue. A query and its answer then
// cost the connector nothing; the event loops (pump.go) cost two thread
// wake-ups per query, which on two cores is what kept them at HAProxy's
// level (docs/connector.md, "Data path").
//
// The kernel queues what it redirects without limit, so each direction
// has credit: it may keep kernelWindow bytes in the kernel beyond what the
// receiving socket has sent on. The watcher raises the credit as the
// bytes go out (every kernelTick); a direction that runs out (a client
// reading a large result slowly, a bulk load faster than the server
// takes it) is paused by the program, and the watcher moves the pair to
// the event loops: it stops both directions, waits until the kernel has
// sent on every byte it took, and hands the sockets to the pump, which
// then reads what arrived after the pause. Bulk transfers run in the
// event loops with their bounded buffers; queries and short answers stay
// in the kernel.
//
// The end of a connection moves the pair to the event loops the same
// way, at its first EOF or error, so that nothing the kernel holds is
// lost. A socket still in the SOCKMAP must not be shut for writing (when
// its peer's FIN arrives it is unhashed and the kernel drops what it
// still queues for it), so a pair that was in the kernel ends MySQL's
// way: once one side has ended and everything it sent was passed on,
// both sockets close (pair.mapped). MySQL clients and servers never
// half-close; a client that does and reads on needs the event loops only
// (CARBIDE_CONNECTOR_KERNEL=off).
//
// When the program cannot be loaded (no CAP_BPF or CAP_NET_ADMIN, a kernel
// before 6.3 or without BTF: bpfseq.go), and for IPv6 sockets, bridges
// use the event loops.

const (
	tcpClose = 7 // TCP_CLOSE in TCP_INFO's state

	// kernelWindow is each direction's credit. The watcher raises it at
	// each tick once half is used, so a direction stays in the kernel up
	// to about kernelWindow/2 per kernelTick (100 MB/s): sysbench
	// oltp_read_only moves ~30 MB/s over one connection, and 256 KB sent
	// such connections to the event loops. It adds at most 2 MB per
	// direction to what the sockets' own buffers hold (up to 4 MB sending,
	// 6 MB receiving, by default).
	kernelWindow   = 2 << 20
	kernelTick     = 10 * time.Millisecond
	kernelMaxPairs = 16384
	// kernelStall bounds the wait for the kernel to send on what it took
	// when a pair leaves it: a client that stops reading for this long
	// loses its connection.
	kernelStall = time.Minute
)

// kernelEnv turns the kernel path off (off, false, no, 0) or leaves it
// to what the machine allows (unset, on, auto, true, yes, 1).
const kernelEnv = "CARBIDE_CONNECTOR_KERNEL"

// kernelSetting reads kernelEnv; any other value is an error.
func kernelSetting() (on bool, err error) {
	v := os.Getenv(kernelEnv)
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "on", "auto", "true", "yes", "1":
		return true, nil
	case "off", "false", "no", "0":
		return false, nil
	}
	return false, fmt.Errorf("%s is %q: use on or off", kernelEnv, v)
}

// CheckEnv reports a CARBIDE_CONNECTOR_KERNEL that is neither on nor off,
// on which the connector must not start.
func CheckEnv() error {
	_, err := kernelSetting()
	return err
}

type kernel struct {
	bpf  *bpfObjects // maps and program (bpf.go)
	pump *pump
	log  *slog.Logger

	epfd, wake int

	mu      sync.Mutex
	pairs   map[uint32]*kpair // by slot, while in the kernel
	free    []uint32
	next    uint32
	stopped bool
	closed  bool           // the maps are released
	moving  sync.WaitGroup // pairs on their way to the event loops

	keys []uint32 // the watcher's buffers for reading the flows
	vals []flow

	moved  [2]atomic.Uint64 // bytes the kernel passed on, by side read
	paused atomic.Uint64    // pairs moved to the event loops for want of credit
	stalls atomic.Uint64    // pairs moved there because their bytes stopped moving (kstall.go)

	checked time.Time // the last stall check (watcher only)
}

type kpair struct {
	k    *kernel
	slot uint32
	fds  [2]int
	keys [2][16]byte
	base [2]uint64 // bytes written to each socket before it was mapped
	read [2]uint64 // bytes read from each socket before it was mapped
	done func()

	mu       sync.Mutex
	leaving  bool  // on its way to the event loops (or closing)
	pr       *pair // in the event loops
	shut     bool  // close asked for
	finished bool  // finish asked for
	closed   bool
	granted  [2]uint64 // the credit last given, by side read (watcher only)
	counted  [2]uint64
	watch    [2]flowWatch // what the stall check last saw (watcher only)
}

// newKernel loads the program and makes its maps; an error says why the
// kernel path is not available.
func newKernel(p *pump, log *slog.Logger) (*kernel, error) {
	if on, err := kernelSetting(); err != nil || !on {
		if err == nil {
			err = fmt.Errorf("turned off by %s=%s", kernelEnv, os.Getenv(kernelEnv))
		}
		return nil, err
	}
	k := &kernel{pump: p, log: log, pairs: map[uint32]*kpair{}, epfd: -1, wake: -1}
	ready := false
	defer func() {
		if !ready {
			k.close()
		}
	}()
	var err error
	if k.bpf, err = newBPFObjects(2 * kernelMaxPairs); err != nil {
		return nil, err
	}
	if k.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, err
	}
	if k.wake, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return nil, err
	}
	if err := unix.EpollCtl(k.epfd, unix.EPOLL_CTL_ADD, k.wake, event(unix.EPOLLIN, 0)); err != nil {
		return nil, err
	}
	ready = true
	go k.watch()
	return k, nil
}

func (k *kernel) close() {
	k.mu.Lock()
	k.closed = true
	k.mu.Unlock()
	if k.bpf != nil {
		k.bpf.close()
	}
	for _, fd := range []int{k.epfd, k.wake} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// stop closes the pairs still in the kernel and ends the watcher, which
// releases the maps once the pairs on their way out are gone.
func (k *kernel) stop() {
	k.mu.Lock()
	k.stopped = true
	var all []*kpair
	for _, kp := range k.pairs {
		all = append(all, kp)
	}
	k.mu.Unlock()
	for _, kp := range all {
		kp.Shutdown()
	}
	k.poke()
}

// poke wakes the watcher.
func (k *kernel) poke() {
	var one = [8]byte{1}
	unix.Write(k.wake, one[:])
}

// sockKey is a socket's key in the peers map: the addresses as the
// program reads them from the packet (remote and local IPv4 in network
// order, the remote port in network order in the upper half, the local
// port in host order).
func sockKey(fd int) ([16]byte, error) {
	var key [16]byte
	la, err := unix.Getsockname(fd)
	if err != nil {
		return key, err
	}
	ra, err := unix.Getpeername(fd)
	if err != nil {
		return key, err
	}
	l, ok1 := la.(*unix.SockaddrInet4)
	r, ok2 := ra.(*unix.SockaddrInet4)
	if !ok1 || !ok2 {
		return key, errors.New("not an IPv4 connection")
	}
	copy(key[0:4], r.Addr[:])
	copy(key[4:8], l.Addr[:])
	rp := uint32(r.Port)
	binary.LittleEndian.PutUint32(key[8:], (rp>>8&0xff|rp<<8&0xff00)<<16)
	binary.LittleEndian.PutUint32(key[12:], uint32(l.Port))
	return key, nil
}

// add puts a bridge in the kernel: the client then gets the server's
// greeting (after the sockets are mapped, so that its answer is already
// redirected). done runs once when the pair is closed.
//
// An error leaves both connections as they were, for the event loops: not
// IPv4, no free slot, or bytes waiting on either. A socket with bytes
// waiting must not be mapped: the program would be handed the whole of a
// packet the proxy has read part of (the server's greeting) and pass that
// part on again.
func (k *kernel) add(client, server net.Conn, greeting []byte, done func()) (Conduit, error) {
	if !isIPv4(client) || !isIPv4(server) {
		return nil, errors.New("not an IPv4 connection")
	}
	if waiting(client) || waiting(server) {
		return nil, errors.New("bytes waiting")
	}
	k.mu.Lock()
	var slot uint32
	switch {
	case k.stopped:
		k.mu.Unlock()
		return nil, errors.New("the connector is stopping")
	case len(k.free) > 0:
		slot = k.free[len(k.free)-1]
		k.free = k.free[:len(k.free)-1]
	case k.next < kernelMaxPairs:
		slot = k.next
		k.next++
	default:
		k.mu.Unlock()
		return nil, errors.New("no free slot")
	}
	k.mu.Unlock()
	kp := &kpair{k: k, slot: slot, fds: [2]int{-1, -1}, done: done}
	// From here on the connections belong to the kernel path: a failure
	// closes them.
	fc, err1 := takeFD(client)
	fs, err2 := takeFD(server)
	kp.fds = [2]int{fc, fs}
	if err1 != nil || err2 != nil {
		client.Close()
		server.Close()
		kp.closeNow()
		return kp, nil
	}
	for i, fd := range kp.fds {
		var err error
		if kp.keys[i], err = sockKey(fd); err != nil {
			kp.closeNow()
			return kp, nil
		}
	}
	if err := k.insert(kp); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			// The sockmap takes only established sockets: the client or
			// the server closed before the pair was mapped (short
			// connections do, many a second). Nothing to warn about.
			k.log.Debug("kernel path: connection closed before it was mapped", "err", err)
		} else {
			k.log.Warn("kernel path: cannot map a connection", "err", err)
		}
		kp.closeNow()
		return kp, nil
	}
	kp.base[clientSide] = uint64(len(greeting))
	kp.read[serverSide] = uint64(len(greeting))
	if err := writeAll(fc, greeting); err != nil {
		kp.closeNow()
		return kp, nil
	}
	k.mu.Lock()
	k.pairs[kp.slot] = kp
	first := len(k.pairs) == 1
	k.mu.Unlock()
	if first {
		k.poke() // the watcher ticks while pairs are in the kernel
	}
	for side, fd := range kp.fds {
		if err := unix.EpollCtl(k.epfd, unix.EPOLL_CTL_ADD, fd, event(unix.EPOLLRDHUP, uint64(kp.slot)<<1|uint64(side)+1)); err != nil {
			kp.leave("watch: " + err.Error())
			return kp, nil
		}
	}
	// Bytes that arrived before the sockets were mapped wait in the
	// socket's own queue until more come (the program sees a socket's
	// packets as they arrive): the event loops take them. What a socket
	// received is what was read before mapping (the greeting), what the
	// program passed on, and what waits.
	for side, fd := range kp.fds {
		ti, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		f, ferr := k.flow(kp.slot<<1 | uint32(side))
		if err != nil || ferr != nil || ti.Bytes_received > kp.read[side]+f.Used {
			kp.leave("bytes before mapping")
			break
		}
	}
	return kp, nil
}

// waiting tells whether c has bytes to read (or cannot say).
func waiting(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	n := 0
	var ioErr error
	if err := rc.Control(func(fd uintptr) { n, ioErr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil || ioErr != nil {
		return true
	}
	return n > 0
}

func isIPv4(c net.Conn) bool {
	l, ok1 := c.LocalAddr().(*net.TCPAddr)
	r, ok2 := c.RemoteAddr().(*net.TCPAddr)
	return ok1 && ok2 && l.IP.To4() != nil && r.IP.To4() != nil
}

// insert fills the maps for kp's slot (bpfObjects.insert).
func (k *kernel) insert(kp *kpair) error {
	return k.bpf.insert(kp.slot, kp.keys, kp.fds, kernelWindow)
}

// release forgets kp's keys and frees its slot (its sockets are closed:
// closing takes them out of the SOCKMAP).
func (k *kernel) release(kp *kpair) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return
	}
	k.bpf.forget(kp.keys)
	delete(k.pairs, kp.slot)
	k.free = append(k.free, kp.slot)
}

func (k *kernel) flow(i uint32) (flow, error) { return k.bpf.flow(i) }

func (k *kernel) grant(i uint32, g uint64) error { return k.bpf.grant(i, g) }

// written is how many bytes fd has sent or queued for sending.
func written(fd int) (uint64, uint8, error) {
	ti, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return 0, 0, err
	}
	return ti.Bytes_sent - ti.Bytes_retrans + uint64(ti.Notsent_bytes), ti.State, nil
}

// watch runs the kernel path's bookkeeping: at each tick, counts the
// bytes passed on, raises credit, and moves paused pairs to the event
// loops; between ticks, moves the pairs whose sockets report an end or
// an error.
func (k *kernel) watch() {
	events := make([]unix.EpollEvent, 64)
	last := time.Now()
	for {
		k.mu.Lock()
		busy := len(k.pairs) > 0
		k.mu.Unlock()
		timeout := -1
		if busy {
			timeout = int(kernelTick / time.Millisecond)
		}
		n, err := unix.EpollWait(k.epfd, events, timeout)
		if err != nil && err != unix.EINTR {
			k.log.Error("kernel path watcher", "err", err)
			return
		}
		for i := 0; i < n; i++ {
			id := eventID(&events[i])
			if id == 0 {
				var b [8]byte
				unix.Read(k.wake, b[:])
				k.mu.Lock()
				stopped := k.stopped
				k.mu.Unlock()
				if stopped {
					k.moving.Wait()
					k.close()
					return
				}
				continue
			}
			k.mu.Lock()
			kp := k.pairs[uint32((id-1)>>1)]
			k.mu.Unlock()
			if kp != nil {
				kp.leave("end")
			}
		}
		if time.Since(last) >= kernelTick {
			last = time.Now()
			k.tick()
		}
	}
}

func (k *kernel) tick() {
	k.mu.Lock()
	all := make([]*kpair, 0, len(k.pairs))
	for _, kp := range k.pairs {
		all = append(all, kp)
	}
	n := 2 * int(k.next)
	k.mu.Unlock()
	// Every flow in one call (slots are handed out lowest first).
	if n == 0 {
		return
	}
	if cap(k.keys) < n {
		k.keys, k.vals = make([]uint32, n), make([]flow, n)
	}
	keys, vals := k.keys[:n], k.vals[:n]
	got, err := k.bpf.lookupFlows(keys, vals)
	now := time.Now()
	gap := now.Sub(k.checked)
	check, late := gap >= kernelStallCheck, gap >= 2*kernelStallCheck
	if check {
		k.checked = now
	}
pairs:
	for _, kp := range all {
		var fl [2]flow
		for side := 0; side < 2; side++ {
			i := kp.slot<<1 | uint32(side)
			if err == nil && int(i) < got {
				fl[side] = vals[i]
			} else if fl[side], err = k.flow(i); err != nil {
				continue pairs
			}
		}
		// In the event loops too: the program still sees their packets.
		if fl[0].Paused == flowBroken || fl[1].Paused == flowBroken {
			k.broken(kp)
			continue
		}
		kp.mu.Lock()
		leaving := kp.leaving
		kp.mu.Unlock()
		if leaving {
			continue
		}
		for side := 0; side < 2; side++ {
			i := kp.slot<<1 | uint32(side)
			f := fl[side]
			kp.count(side, f.Used)
			if f.Paused != 0 {
				kp.leave("paused")
				continue pairs
			}
			g := max(kp.granted[side], kernelWindow)
			if f.Used+kernelWindow/2 < g {
				continue
			}
			w, _, err := written(kp.fds[1-side])
			if err != nil {
				continue
			}
			if ng := w - kp.base[1-side] + kernelWindow; ng > g && k.grant(i, ng) == nil {
				kp.granted[side] = ng
			}
		}
		if check {
			if side, held, stalled := kp.stall(fl, now, late); stalled {
				k.stalled(kp, side, held)
			}
		}
	}
}

// bytes is what the kernel passed on, the pairs still in it counted now.
func (k *kernel) bytes() (fromClients, fromServers uint64) {
	k.mu.Lock()
	all := make([]*kpair, 0, len(k.pairs))
	for _, kp := range k.pairs {
		all = append(all, kp)
	}
	k.mu.Unlock()
	for _, kp := range all {
		for side := 0; side < 2; side++ {
			if f, err := k.flow(kp.slot<<1 | uint32(side)); err == nil {
				kp.count(side, f.Used)
			}
		}
	}
	return k.moved[clientSide].Load(), k.moved[serverSide].Load()
}
