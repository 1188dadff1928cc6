package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/carbidedb/carbide/internal/certs"
	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/internal/security"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// TestScenarioEnableSSL runs the guide's "Enabling SSL for Replicators
// Only" as written, with both sites writing throughout, and checks what
// crosses a THL connection before (row text visible) and after (none).
func TestScenarioEnableSSL(t *testing.T) {
	s := startMSAA(t)
	if raw, decoded := s.thlRead("east1", "zq7xplain"); !decoded || !raw {
		t.Fatalf("before SSL: marker decoded %v, seen on the wire %v; want both (the check must see plaintext)", decoded, raw)
	}

	east := startSiteWriter(s, "east1", "east", 5*time.Millisecond)
	west := startSiteWriter(s, "west1", "west", 5*time.Millisecond)
	s.runScenario("scenarios/enable-ssl.txt")
	east.halt()
	west.halt()
	s.healthy(60 * time.Second)

	for _, h := range allHosts {
		out, err := s.shellOn(h, "trepctl status | grep -i uri; mm_trepctl status | grep -i uri")
		if err != nil || strings.Contains(out, "thl://") || strings.Count(out, "thls://") < 3 {
			t.Errorf("%s: status shows no thls URIs (%v):\n%s", h, err, out)
		}
	}
	if r := s.runCctrl("east1", "continuent", "cctrl", "ls\n"); !strings.Contains(r.out, "[SSL]") {
		t.Errorf("cctrl ls shows no [SSL]:\n%s%s", r.out, r.err)
	}
	if raw, decoded := s.thlRead("east1", "zq7xsecret"); !decoded || raw {
		t.Fatalf("with SSL: marker decoded %v, seen on the wire %v; want decoded and not seen", decoded, raw)
	}
	// A plaintext client is told why, and does not hang.
	conn, err := grpc.NewClient(s.addr("east1")+":2112", security.Insecure("secret").THLDialOptions(nil)...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := thlpb.NewTHLClient(conn).Stream(ctx, &thlpb.StreamRequest{Service: "east", ClientHost: "plaintext-check"})
	if err == nil {
		_, err = st.Recv()
	}
	if err == nil || !strings.Contains(err.Error(), "takes TLS only") {
		t.Errorf("plaintext client against a TLS THL port: %v", err)
	}

	s.strangersRefused("east2")

	// The managers take SSL up on restart, one after another: their raft
	// goes over mutual TLS only, so the first one restarted is cut off
	// from the others' raft until a second one is on TLS; from then on
	// those on TLS hold the quorum, and after the last one every manager
	// sees the coordinator.
	hasCoordinator := func(r *managerpb.StatusReply) error {
		if r.GetCoordinator() == "" {
			return fmt.Errorf("no coordinator: %s", r.GetCoordinatorProblem())
		}
		return nil
	}
	restartManagers := func(hosts []string, first string) {
		for i, h := range hosts {
			if out, err := s.shellOn(h, first+"manager restart"); err != nil {
				t.Fatalf("%s: %smanager restart: %v\n%s", h, first, err, out)
			}
			if i == 0 {
				continue
			}
			for _, on := range hosts[:i+1] {
				s.waitStatus(on, 30*time.Second, "a coordinator once "+h+"'s manager restarted", hasCoordinator)
			}
		}
	}
	restartManagers(eastHosts, "")
	// tpm update says when every control port answers TLS: not while
	// west's managers run with the old settings, and once they restarted.
	update := "cd $(tpm query staging) && tools/tpm update"
	if out, _ := s.shellOn("east1", update); !strings.Contains(out, "control ports: 15 of 18 answer TLS; not yet: west1 (manager") {
		t.Errorf("east1: tpm update does not name west's managers as the control ports without TLS:\n%s", out)
	}
	restartManagers([]string{"west1", "west2", "west3"}, "")
	if out, _ := s.shellOn("east1", update); !strings.Contains(out, "control ports: all 18 of the ini's hosts answer TLS") {
		t.Errorf("east1: tpm update does not say every control port answers TLS:\n%s", out)
	}
	// Then east moves to control-tls-only=true: tpm update and manager
	// restart on each host.
	if out, err := s.shellOn("east1", `sed -i "/^\[defaults\]$/a control-tls-only=true" $SANDBOX/tungsten.ini`); err != nil {
		t.Fatalf("control-tls-only=true into the ini: %v\n%s", err, out)
	}
	restartManagers(eastHosts, update+" && ")
	b, err := install.Open(filepath.Join(s.cfg.Dir, "east1", "continuent"))
	if err != nil {
		t.Fatal(err)
	}
	raft, err := net.DialTimeout("tcp", net.JoinHostPort(s.addr("east1"), strconv.Itoa(b.Install.Settings.RaftPort)), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = raft.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := security.Insecure("secret").ClientMember(raft); err == nil {
		t.Error("east1's raft port took a plaintext member with the secret after SSL: raft is not TLS-only")
	}
	raft.Close()

	// east's control ports refuse a plaintext client and say why; cctrl
	// (over TLS) still answers.
	for _, port := range []int{b.Install.Settings.ManagerRPCPort, b.Install.Settings.RMIPort} {
		conn, err := grpc.NewClient(net.JoinHostPort(s.addr("east1"), strconv.Itoa(port)), security.Insecure("secret").ControlDialOptions(nil)...)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = replicatorpb.NewReplicatorClient(conn).Services(ctx, &replicatorpb.ServicesRequest{})
		cancel()
		conn.Close()
		if err == nil || !strings.Contains(err.Error(), "takes TLS only (control-tls-only=true here)") {
			t.Errorf("a plaintext control client on east1:%d after control-tls-only=true: %v", port, err)
		}
	}
	if r := s.runCctrl("east2", "continuent", "cctrl", "ls\n"); r.code != 0 || !strings.Contains(r.out, "east1") {
		t.Errorf("cctrl ls on east2 with control-tls-only=true: exit %d\n%s%s", r.code, r.out, r.err)
	}

	// The REST APIs of the restarted agents answer over HTTPS only.
	https := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for port, comp := range map[int]string{8090: "manager", 8097: "replicator"} {
		base := fmt.Sprintf("%s/api/v2/%s/ping", net.JoinHostPort(s.addr("east1"), strconv.Itoa(port)), comp)
		resp, err := https.Get("https://" + base)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("%s REST over https: %v %v", comp, err, resp)
		} else {
			resp.Body.Close()
		}
		if resp, err := https.Get("http://" + base); err != nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s REST over plain http after SSL: %v %v", comp, err, resp)
		} else {
			resp.Body.Close()
		}
	}

	after := s.bothSitesWrite()
	sums := s.sameEverywhere(60*time.Second, allHosts, "app")
	e, w := total("east", east, after[0]), total("west", west, after[1])
	t.Logf("SSL on: %d tables equal on six hosts; inserts acknowledged east %d+%d, west %d+%d (%d+%d during the procedure)",
		len(sums), e.shared.Load(), e.own.Load(), w.shared.Load(), w.own.Load(), east.own.Load(), west.own.Load())
	s.checkWriters(e, w)
}

// thlRead inserts a row holding marker on host (east's primary) and reads
// east's THL from host's cluster replicator through a relay that records
// what the server sends, as a member with host's install would. It
// reports whether the marker crossed the wire as text and whether the
// decoded events hold it.
func (s *site) thlRead(host, marker string) (raw, decoded bool) {
	s.t.Helper()
	s.exec(host, "INSERT INTO app.shared (site, n) VALUES ('"+marker+"', 0)")
	b, err := install.Open(filepath.Join(s.cfg.Dir, host, "continuent"))
	if err != nil {
		s.t.Fatal(err)
	}
	sec, err := security.ForInstall(b)
	if err != nil {
		s.t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.t.Fatal(err)
	}
	defer l.Close()
	var mu sync.Mutex
	var wire bytes.Buffer
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		up, err := net.Dial("tcp", s.addr(host)+":2112")
		if err != nil {
			return
		}
		defer up.Close()
		go io.Copy(up, c)
		buf := make([]byte, 32<<10)
		for {
			n, err := up.Read(buf)
			mu.Lock()
			wire.Write(buf[:n])
			mu.Unlock()
			if _, werr := c.Write(buf[:n]); err != nil || werr != nil {
				return
			}
		}
	}()
	conn, err := grpc.NewClient(l.Addr().String(), sec.THLDialOptions(nil)...)
	if err != nil {
		s.t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	st, err := thlpb.NewTHLClient(conn).Stream(ctx, &thlpb.StreamRequest{Service: "east", ClientHost: "wire-check"})
	if err != nil {
		s.t.Fatalf("THL stream from %s: %v", host, err)
	}
	for !decoded {
		m, err := st.Recv()
		if err != nil {
			s.t.Fatalf("THL stream from %s: %v", host, err)
		}
		if ev := m.GetEvent(); ev != nil {
			pb, _ := proto.Marshal(ev)
			decoded = bytes.Contains(pb, []byte(marker))
		}
	}
	// The relay records the bytes before it forwards them: what the
	// client decoded is in wire already.
	mu.Lock()
	defer mu.Unlock()
	return bytes.Contains(wire.Bytes(), []byte(marker)), decoded
}

// strangersRefused checks that host's agents refuse what comes without
// the cluster's secret: control calls to the manager and the replicator,
// a THL stream with the cluster's certificate but another secret, and a
// connection to the managers' raft port.
func (s *site) strangersRefused(host string) {
	s.t.Helper()
	b, err := install.Open(filepath.Join(s.cfg.Dir, host, "continuent"))
	if err != nil {
		s.t.Fatal(err)
	}
	st := b.Install.Settings
	m, err := certs.Load(st)
	if err != nil {
		s.t.Fatal(err)
	}
	stranger := security.Insecure("not-the-secret").WithMaterial(m)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addr := func(port int) string { return fmt.Sprintf("%s:%d", s.addr(host), port) }
	dial := func(a string, opts []grpc.DialOption) *grpc.ClientConn {
		c, err := grpc.NewClient(a, opts...)
		if err != nil {
			s.t.Fatal(err)
		}
		s.t.Cleanup(func() { c.Close() })
		return c
	}
	_, err = managerpb.NewManagerClient(dial(addr(st.ManagerRPCPort), stranger.ControlDialOptions(nil))).Status(ctx, &managerpb.StatusRequest{})
	if status.Code(err) != codes.Unauthenticated {
		s.t.Errorf("manager control call without the secret: %v", err)
	}
	_, err = replicatorpb.NewReplicatorClient(dial(addr(st.RMIPort), stranger.ControlDialOptions(nil))).Services(ctx, &replicatorpb.ServicesRequest{})
	if status.Code(err) != codes.Unauthenticated {
		s.t.Errorf("replicator control call without the secret: %v", err)
	}
	stream, err := thlpb.NewTHLClient(dial(addr(st.THLPort), stranger.THLDialOptions(nil))).Stream(ctx, &thlpb.StreamRequest{Service: "east", ClientHost: "stranger"})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Unauthenticated {
		s.t.Errorf("THL stream without the secret: %v", err)
	}
	c, err := net.Dial("tcp", addr(st.RaftPort))
	if err != nil {
		s.t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("\x00\x00\x00\x01 raft request from a stranger"))
	if n, err := c.Read(make([]byte, 64)); err == nil || n > 0 {
		s.t.Errorf("the raft port answered a stranger (%d bytes, %v)", n, err)
	}
}
