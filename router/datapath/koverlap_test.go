package datapath

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A TCP sender that retransmits bytes the receiver already has together
// with bytes it has not (a retransmission that straddles the receiver's
// rcv_nxt) makes the kernel queue that segment whole; tcp_recvmsg skips
// the old part by sequence number, but the SOCKMAP verdict path
// (tcp_read_skb) hands the whole segment to the program. These tests
// make such a segment on purpose: the server's socket is rebuilt with
// TCP_REPAIR (as CRIU restores one) with its send queue rewound, so that
// the kernel retransmits old bytes followed by new ones in one segment.

// pattern is the test stream: period 251, so that a repeated or missing
// run of bytes shows as a wrong byte.
func pattern(from, to int) []byte {
	b := make([]byte, to-from)
	for i := range b {
		b[i] = byte((from + i) % 251)
	}
	return b
}

// getsockopt reads a socket option of any size into p.
func getsockopt(fd, level, opt int, p []byte) error {
	l := uint32(len(p))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(unsafe.Pointer(&p[0])), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return e
	}
	return nil
}

// resend replaces the connected socket fd by one in the same state whose
// send queue starts back bytes earlier and holds again[...] as sent and
// not yet acknowledged: the kernel retransmits it (after its first
// retransmission timeout) as one segment that starts back bytes before
// what the peer has received. fd is closed (silently: in repair mode).
func resend(fd, back int, again []byte) (int, error) {
	tcp := unix.IPPROTO_TCP
	if err := unix.SetsockoptInt(fd, tcp, unix.TCP_REPAIR, unix.TCP_REPAIR_ON); err != nil {
		return -1, fmt.Errorf("TCP_REPAIR (needs CAP_NET_ADMIN): %w", err)
	}
	var seq [2]int                  // send, receive
	for i, q := range []int{2, 1} { // TCP_SEND_QUEUE, TCP_RECV_QUEUE
		if err := unix.SetsockoptInt(fd, tcp, unix.TCP_REPAIR_QUEUE, q); err != nil {
			return -1, err
		}
		v, err := unix.GetsockoptInt(fd, tcp, unix.TCP_QUEUE_SEQ)
		if err != nil {
			return -1, err
		}
		seq[i] = v
	}
	window := make([]byte, 20) // struct tcp_repair_window
	if err := getsockopt(fd, tcp, unix.TCP_REPAIR_WINDOW, window); err != nil {
		return -1, err
	}
	ts, err1 := unix.GetsockoptInt(fd, tcp, unix.TCP_TIMESTAMP)
	mss, err2 := unix.GetsockoptInt(fd, tcp, unix.TCP_MAXSEG)
	info := make([]byte, 8) // tcpi_options, tcpi_snd/rcv_wscale
	err3 := getsockopt(fd, tcp, unix.TCP_INFO, info)
	la, err4 := unix.Getsockname(fd)
	ra, err5 := unix.Getpeername(fd)
	for _, err := range []error{err1, err2, err3, err4, err5} {
		if err != nil {
			return -1, err
		}
	}
	unix.Close(fd)

	nfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	steps := []func() error{
		func() error { return unix.SetsockoptInt(nfd, tcp, unix.TCP_REPAIR, unix.TCP_REPAIR_ON) },
		func() error { return unix.Bind(nfd, la) },
		func() error { return unix.SetsockoptInt(nfd, tcp, unix.TCP_REPAIR_QUEUE, 2) },
		func() error { return unix.SetsockoptInt(nfd, tcp, unix.TCP_QUEUE_SEQ, seq[0]-back) },
		func() error { return unix.SetsockoptInt(nfd, tcp, unix.TCP_REPAIR_QUEUE, 1) },
		func() error { return unix.SetsockoptInt(nfd, tcp, unix.TCP_QUEUE_SEQ, seq[1]) },
		func() error { return unix.Connect(nfd, ra) },
		func() error {
			opts := []unix.TCPRepairOpt{{Code: unix.TCPOPT_MAXSEG, Val: uint32(mss)}}
			if o := info[5]; o&4 != 0 { // TCPI_OPT_WSCALE
				opts = append(opts, unix.TCPRepairOpt{Code: unix.TCPOPT_WINDOW, Val: uint32(info[6]&0xf) | uint32(info[6]>>4)<<16})
			}
			if info[5]&2 != 0 { // TCPI_OPT_SACK
				opts = append(opts, unix.TCPRepairOpt{Code: unix.TCPOPT_SACK_PERMITTED})
			}
			if info[5]&1 != 0 { // TCPI_OPT_TIMESTAMPS
				opts = append(opts, unix.TCPRepairOpt{Code: unix.TCPOPT_TIMESTAMP})
			}
			return unix.SetsockoptTCPRepairOpt(nfd, tcp, unix.TCP_REPAIR_OPTIONS, opts)
		},
		func() error { return unix.SetsockoptInt(nfd, tcp, unix.TCP_TIMESTAMP, ts) },
		func() error { return unix.SetsockoptString(nfd, tcp, unix.TCP_REPAIR_WINDOW, string(window)) },
		func() error { return unix.SetsockoptInt(nfd, tcp, unix.TCP_REPAIR_QUEUE, 2) },
		func() error {
			n, err := unix.Write(nfd, again)
			if err == nil && n != len(again) {
				err = fmt.Errorf("queued %d of %d bytes", n, len(again))
			}
			return err
		},
		// No window probe: nothing may tell the socket what the peer has
		// before it retransmits.
		func() error { return unix.SetsockoptInt(nfd, tcp, unix.TCP_REPAIR, unix.TCP_REPAIR_OFF_NO_WP) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			unix.Close(nfd)
			return -1, fmt.Errorf("repair step %d: %w", i, err)
		}
	}
	return nfd, nil
}

// acked waits until fd has sent everything written and had it
// acknowledged.
func acked(t *testing.T, fd int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ti, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err == nil && ti.Unacked == 0 && ti.Notsent_bytes == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("the server's bytes are not acknowledged: %+v, %v", ti, err)
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// The test stream: the server sends overlapFirst bytes, then
// retransmits the last overlapBack of them with the next overlapMore in
// one segment (below the rebuilt socket's MSS), then the rest.
const overlapFirst, overlapBack, overlapMore, overlapTotal = 20_000, 200, 300, 40_000

// overlapServer serves one connection: it greets ("hello"); once go1 is
// closed (the client has the greeting: the proxy maps a pair only if
// nothing follows the greeting yet) it sends the first bytes and closes
// sent when the proxy has acknowledged them; once go2 is closed it
// retransmits the straddling segment (resend), then sends the rest and
// closes.
func overlapServer(t *testing.T, go1 <-chan struct{}, sent chan<- struct{}, go2 <-chan struct{}) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		f, err := c.(*net.TCPConn).File() // a blocking duplicate
		c.Close()
		if err != nil {
			t.Error(err)
			return
		}
		fd, err := unix.Dup(int(f.Fd()))
		f.Close()
		if err != nil {
			t.Error(err)
			return
		}
		write := func(p []byte) {
			for len(p) > 0 {
				n, err := unix.Write(fd, p)
				if err != nil {
					t.Errorf("server write: %v", err)
					return
				}
				p = p[n:]
			}
		}
		write([]byte("hello"))
		<-go1
		write(pattern(0, overlapFirst))
		acked(t, fd)
		close(sent)
		<-go2
		if fd, err = resend(fd, overlapBack, pattern(overlapFirst-overlapBack, overlapFirst+overlapMore)); err != nil {
			t.Errorf("rebuild the server's socket: %v", err)
			return
		}
		acked(t, fd) // retransmitted after a timeout (the tail loss probe's)
		// The retransmission carried the old bytes with the new ones, and
		// the proxy's socket reported the old ones as duplicates.
		if ti, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO); err != nil || ti.Bytes_retrans < overlapBack+overlapMore || ti.Dsack_dups == 0 {
			t.Errorf("no retransmission straddled what the proxy had (%v): %+v", err, ti)
		}
		write(pattern(overlapFirst+overlapMore, overlapTotal))
		unix.Close(fd)
	}()
	return l.Addr().String()
}

// overlapThrough runs the overlap server behind p and a client through
// addr; between the first bytes and the retransmission it runs between
// (with the pair, nil without the kernel path). The client must get the
// stream whole, every byte once.
func overlapThrough(t *testing.T, p *testProxy, addr string, between func(kp *kpair)) {
	go1, sent, go2 := make(chan struct{}), make(chan struct{}), make(chan struct{})
	p.route(overlapServer(t, go1, sent, go2))
	c := greeted(t, addr)
	if c == nil {
		return
	}
	defer c.Close()
	var kp *kpair
	if p.kernel != nil {
		kp = onlyPair(t, p)
	}
	close(go1)
	<-sent
	between(kp)
	close(go2)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Errorf("read: %v", err)
	}
	if want := pattern(0, overlapTotal); !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Errorf("the client got %d bytes, want %d: they differ from byte %d on", len(got), len(want), i)
	}
	c.Close() // the event loops pass the server's end on as a half-close
	waitActive(t, p, 0)
}

// TestKernelOverlapInKernel: a retransmission that straddles what the
// proxy already received, while the pair is in the kernel path: the
// client gets every byte once (without the program's sequence check it
// got the retransmitted old bytes a second time).
func TestKernelOverlapInKernel(t *testing.T) {
	p, addr := kernelProxy(t)
	overlapThrough(t, p, addr, func(kp *kpair) {
		kp.mu.Lock()
		defer kp.mu.Unlock()
		if kp.leaving {
			t.Errorf("the pair left the kernel path before the retransmission")
		}
	})
}

// TestKernelOverlapInLoops: the same once the pair has left the kernel
// path for the event loops (its sockets stay in the SOCKMAP, and the
// program passes what they receive to their own queues).
func TestKernelOverlapInLoops(t *testing.T) {
	p, addr := kernelProxy(t)
	overlapThrough(t, p, addr, func(kp *kpair) {
		kp.leave("test")
		deadline := time.Now().Add(5 * time.Second)
		for {
			kp.mu.Lock()
			pr := kp.pr
			kp.mu.Unlock()
			if pr != nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the pair did not reach the event loops")
			}
			time.Sleep(time.Millisecond)
		}
	})
}

// TestOverlapEventLoopsOnly: without the kernel path the stream comes
// whole as well (tcp_recvmsg skips the old bytes by sequence number).
func TestOverlapEventLoopsOnly(t *testing.T) {
	t.Setenv("CARBIDE_CONNECTOR_KERNEL", "off")
	p, addr := startPath(t, Config{})
	overlapThrough(t, p, addr, func(*kpair) {})
}
