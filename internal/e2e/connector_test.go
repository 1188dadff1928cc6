package e2e

import (
	"database/sql"
	"fmt"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

// viaConnector opens a pool through host's connector as the application.
func (s *site) viaConnector(host string) *sql.DB {
	s.t.Helper()
	return s.appPool(s.addr(host) + ":3306")
}

// TestConnector: applications reach the primary through any host's
// connector, with the mariadb client as in the guide; router * offline
// refuses new connections with the connector's error and online restores
// them; counters show in the managers' status; through a switch the
// writes continue on the new primary, none lost.
func TestConnector(t *testing.T) {
	s := startSandbox(t, strings.Replace(oneSite, "master=east1\n", "master=east1\nconnectors=east1,east2,east3\n", 1))
	out, err := exec.Command("mariadb", "-h"+s.addr("east3"), "-P3306", "-uapp_user", "-psecret", "-N", "-e", "select @@hostname, @@server_id").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "east1") {
		t.Fatalf("mariadb through east3's connector: %v\n%s", err, out)
	}
	s.mustCctrl("east1", "router", "*", "offline")
	testutil.Eventually(t, 5*time.Second, func() error {
		out, err := exec.Command("mariadb", "-h"+s.addr("east2"), "-P3306", "-uapp_user", "-psecret", "-e", "select 1").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "OFFLINE") {
			return fmt.Errorf("connector still takes connections: %v %s", err, out)
		}
		return nil
	})
	s.mustCctrl("east1", "router", "*", "online")
	testutil.Eventually(t, 5*time.Second, func() error {
		return exec.Command("mariadb", "-h"+s.addr("east2"), "-P3306", "-uapp_user", "-psecret", "-e", "select 1").Run()
	})
	s.waitStatus("east1", 10*time.Second, "connector counters", func(r *managerpb.StatusReply) error {
		for _, rt := range r.GetRouters() {
			if rt.GetHost() == "east3" && (rt.GetPid() == 0 || rt.GetCreated() < 1) {
				return fmt.Errorf("east3's connector: pid %d created %d", rt.GetPid(), rt.GetCreated())
			}
		}
		if d := dsOf(r, "east1"); d.GetConnectionsCreated() < 2 {
			return fmt.Errorf("east1's CONNECTIONS created=%d", d.GetConnectionsCreated())
		}
		return nil
	})

	s.createApp()
	db := s.viaConnector("east2")
	var acked, failed atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 0; ; {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := db.Exec("INSERT INTO app.t (v) VALUES (?)", 5_000_000+n); err != nil {
				if strings.Contains(err.Error(), "Duplicate entry") {
					acked.Add(1)
					n++
				} else {
					failed.Add(1)
				}
				time.Sleep(5 * time.Millisecond)
				continue
			}
			acked.Add(1)
			n++
		}
	}()
	time.Sleep(time.Second)
	t.Logf("switch with connectors: %v", s.mustCctrl("east1", "switch"))
	// The connector closes connections to the demoted primary after
	// connector-disconnect-timeout (5 s); the pool then reconnects to
	// the new primary.
	time.Sleep(6 * time.Second)
	before := acked.Load()
	time.Sleep(time.Second)
	close(stop)
	<-done
	if acked.Load() == before {
		t.Errorf("no write through the connector after the switch (%d failed)", failed.Load())
	}
	s.sameEverywhere(30*time.Second, eastHosts, "app")
	var rows int64
	s.db("east3").QueryRow("SELECT COUNT(*) FROM app.t WHERE v >= 5000000").Scan(&rows)
	t.Logf("through east2's connector: %d writes acknowledged, %d failed around the switch; %d rows on east3", acked.Load(), failed.Load(), rows)
	if rows != acked.Load() {
		t.Errorf("%d rows, %d acknowledged", rows, acked.Load())
	}
}
