package datapath

import (
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// skipIfRefused skips the test when the kernel refuses BPF here (no
// CAP_BPF, a kernel without SOCKMAP verdict programs); any other error,
// a verifier's refusal among them, fails it.
func skipIfRefused(t *testing.T, err error) {
	t.Helper()
	var ve *ebpf.VerifierError
	if err == nil {
		return
	}
	if errors.As(err, &ve) {
		t.Fatal(err) // refused by the verifier: the program is wrong
	}
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) || errors.Is(err, ebpf.ErrNotSupported) {
		t.Skipf("the kernel refuses BPF here, the kernel path cannot be tested: %v", err)
	}
	t.Fatal(err)
}

// bpfFiles counts the process's open BPF maps and programs.
func bpfFiles() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	n := 0
	for _, e := range ents {
		l, _ := os.Readlink("/proc/self/fd/" + e.Name())
		if l == "anon_inode:bpf-map" || l == "anon_inode:bpf-prog" {
			n++
		}
	}
	return n
}

// loopback returns the two ends of a loopback TCP connection: the dialled
// one as a net.Conn, the accepted one as a file descriptor (as the
// connector holds its sockets).
func loopback(t *testing.T, l net.Listener) (net.Conn, int) {
	t.Helper()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	fd, err := takeFD(s)
	if err != nil {
		t.Fatal(err)
	}
	return c, fd
}

// readFD reads from a non-blocking socket what arrives within a second.
func readFD(fd int) []byte {
	var got []byte
	buf := make([]byte, 4096)
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 50)
		n, err := unix.Read(fd, buf)
		if n > 0 {
			got = append(got, buf[:n]...)
			continue
		}
		if err != unix.EAGAIN && err != unix.EINTR {
			break
		}
		if len(got) > 0 {
			break
		}
	}
	return got
}

// readConn reads n bytes from c, or what came within a second.
func readConn(c net.Conn, n int) []byte {
	c.SetReadDeadline(time.Now().Add(time.Second))
	got := make([]byte, 0, n)
	buf := make([]byte, n)
	for len(got) < n {
		k, err := c.Read(buf[:n-len(got)])
		got = append(got, buf[:k]...)
		if err != nil {
			break
		}
	}
	return got
}

// TestBPFObjects loads the verdict program and its maps as the connector
// does, puts the connector's ends of two loopback connections in the
// SOCKMAP as a pair, and checks that bytes cross in the kernel both ways
// (counted in the flows), that a flow without credit pauses and leaves
// its bytes on the receiving socket, and that closing the objects and
// the sockets releases the program and every map.
func TestBPFObjects(t *testing.T) {
	before := bpfFiles()
	o, err := newBPFObjects(16)
	skipIfRefused(t, err)
	defer o.close()
	var progID ebpf.ProgramID
	if info, err := o.prog.Info(); err == nil {
		progID, _ = info.ID()
	}
	var mapIDs []ebpf.MapID
	for _, m := range []*ebpf.Map{o.peers, o.socks, o.flows, o.grants} {
		if info, err := m.Info(); err == nil {
			if id, ok := info.ID(); ok {
				mapIDs = append(mapIDs, id)
			}
		}
	}
	if progID == 0 || len(mapIDs) != 4 {
		t.Fatalf("program ID %d, %d map IDs", progID, len(mapIDs))
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, cfd := loopback(t, l) // the application and the connector's end
	server, sfd := loopback(t, l) // the database and the connector's end
	fds := [2]int{cfd, sfd}
	defer func() {
		for _, fd := range fds {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
	}()
	var keys [2][16]byte
	for side, fd := range fds {
		if keys[side], err = sockKey(fd); err != nil {
			t.Fatal(err)
		}
	}
	const slot = 3
	if err := o.insert(slot, keys, fds, 1<<20); err != nil {
		t.Fatal(err)
	}

	// Both ways, through the kernel: the connector reads nothing.
	client.Write([]byte("select 1"))
	if got := readConn(server, 8); string(got) != "select 1" {
		t.Fatalf("the server got %q", got)
	}
	server.Write([]byte("one row"))
	if got := readConn(client, 7); string(got) != "one row" {
		t.Fatalf("the client got %q", got)
	}
	for side, want := range []uint64{8, 7} {
		f, err := o.flow(slot<<1 | uint32(side))
		if err != nil || f.Used != uint64(want) || f.Paused != 0 || f.Target != slot<<1|uint32(1-side) {
			t.Errorf("flow %d: %+v, %v; want %d bytes used", side, f, err, want)
		}
	}
	keysOut, vals := make([]uint32, 2*slot+2), make([]flow, 2*slot+2)
	if n, err := o.lookupFlows(keysOut, vals); err != nil || n != len(vals) || vals[2*slot].Used != 8 || vals[2*slot+1].Used != 7 {
		t.Errorf("batch lookup: %d, %v, %+v", n, err, vals[2*slot:])
	}

	// No credit: the flow pauses, the bytes stay on the connector's end.
	if err := o.grant(slot<<1, 8); err != nil {
		t.Fatal(err)
	}
	client.Write([]byte("select 2"))
	if got := readFD(cfd); string(got) != "select 2" {
		t.Errorf("a paused flow left %q on the connector's end", got)
	}
	if f, err := o.flow(slot << 1); err != nil || f.Paused == 0 || f.Used != 8 {
		t.Errorf("after the credit ran out: %+v, %v", f, err)
	}

	// Closing the objects closes their files, and nothing is used after
	// it; the kernel frees them once the sockets leave the SOCKMAP (a
	// mapped socket holds the program, which holds its maps), as they do
	// when they close.
	o.forget(keys)
	o.close()
	o.close()
	if _, err := o.flow(0); !errors.Is(err, errReleased) {
		t.Errorf("a lookup after close: %v", err)
	}
	if n := bpfFiles(); n != before {
		t.Errorf("%d BPF maps and programs open after close, %d before", n, before)
	}
	for i, fd := range fds {
		unix.Close(fd)
		fds[i] = -1
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := 0
		if p, err := ebpf.NewProgramFromID(progID); err == nil {
			p.Close()
			left++
		}
		for _, id := range mapIDs {
			if m, err := ebpf.NewMapFromID(id); err == nil {
				m.Close()
				left++
			}
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of the program and its maps still in the kernel after close", left)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestVerifierLogWhole: a program the verifier refuses is reported with
// the verifier's whole log, not only its last line.
func TestVerifierLogWhole(t *testing.T) {
	// Reads r2, which the program never set, then returns without r0.
	_, err := loadVerdict(asm.Instructions{
		asm.Mov.Reg(asm.R3, asm.R2),
		asm.Return(),
	})
	if err == nil {
		t.Fatal("the verifier took a program that reads an unset register")
	}
	var ve *ebpf.VerifierError
	if !errors.As(err, &ve) {
		skipIfRefused(t, err)
		t.Fatalf("not a verifier error: %v", err)
	}
	if len(ve.Log) == 0 {
		t.Fatalf("no verifier log: %v", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, strings.Join(ve.Log, "\n")) {
		t.Errorf("the error does not carry the verifier's %d-line log:\n%s\nlog:\n%s", len(ve.Log), msg, strings.Join(ve.Log, "\n"))
	}
	t.Logf("%s", msg)
}

// TestInsertClosedSocket: the SOCKMAP refuses a socket whose peer has
// closed with EOPNOTSUPP, the error the connector logs at debug (short
// connections close before they are mapped, many a second) rather than
// as a warning.
func TestInsertClosedSocket(t *testing.T) {
	o, err := newBPFObjects(16)
	skipIfRefused(t, err)
	defer o.close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c1, fd1 := loopback(t, l)
	_, fd2 := loopback(t, l)
	defer unix.Close(fd1)
	defer unix.Close(fd2)
	var keys [2][16]byte
	for i, fd := range []int{fd1, fd2} {
		if keys[i], err = sockKey(fd); err != nil {
			t.Fatal(err)
		}
	}
	c1.Close()
	time.Sleep(50 * time.Millisecond) // the FIN reaches fd1: CLOSE_WAIT
	err = o.insert(0, keys, [2]int{fd1, fd2}, 0)
	if !errors.Is(err, unix.EOPNOTSUPP) {
		t.Fatalf("inserting a socket whose peer closed: %v, want EOPNOTSUPP", err)
	}
}
