package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/testutil"
)

// tprovision runs tprovision on host (its cluster install).
func (s *site) tprovision(host string, args ...string) (string, error) {
	s.t.Helper()
	begin := time.Now()
	out, err := s.tool(host, "continuent", "tprovision", args...)
	s.t.Logf("%s$ tprovision %s (%.1f s)\n%s", host, strings.Join(args, " "), time.Since(begin).Seconds(), strings.TrimSpace(out))
	return out, err
}

// TestTprovision: under a steady write load on the primary, a replica is
// rebuilt from another replica with mysqldump and from the primary with
// the physical method (the guide's `tprovision -s east1 -m xtrabackup`);
// each comes back ONLINE and applies exactly after its copy. Refusals
// (the primary, bad input) and a failed copy change nothing. At the end
// every host has every acknowledged write once.
func TestTprovision(t *testing.T) {
	s := startSandbox(t, oneSite)
	s.exec("east1", "CREATE DATABASE app", "CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT, pad VARCHAR(200))")
	// Some data worth copying.
	for i := 0; i < 20; i++ {
		s.exec("east1", "INSERT INTO app.t (v, pad) SELECT seq, REPEAT('x', 200) FROM app.seq_1_to_500")
	}
	var acked atomic.Int64
	stop, done := make(chan struct{}), make(chan struct{})
	db := s.db("east1")
	go func() {
		defer close(done)
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := db.Exec("INSERT INTO app.t (v) VALUES (?)", 1_000_000+n); err == nil {
				acked.Add(1)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-done
	}()

	// Refusals change nothing.
	for _, c := range []struct {
		host string
		args []string
		want string
	}{
		{"east1", []string{"-s", "east2"}, "east1 is the primary of east"},
		{"east2", []string{"-s", "east9"}, `unknown source "east9"`},
		{"east2", []string{"-s", "east2"}, "is this host"},
		{"east2", []string{"-s", "east1", "-m", "tape"}, `unknown method "tape"`},
		{"east2", []string{"-m", "mysqldump"}, "no source"},
	} {
		out, err := s.tprovision(c.host, c.args...)
		if err == nil || !strings.Contains(out, c.want) || strings.Count(strings.TrimSpace(out), "\n") > 0 {
			t.Errorf("tprovision %v on %s: %v, want one line saying %q:\n%s", c.args, c.host, err, c.want, out)
		}
	}
	if err := allOnline(s.status("east1")); err != nil {
		t.Fatalf("after the refusals: %v", err)
	}

	// A copy that fails before touching the data: east3's database is
	// stopped, the backup cannot start (east2's replicator is down), the
	// database restarts on its own data and east3 is back as it was.
	if out, err := s.tool("east2", "continuent", "replicator", "stop"); err != nil {
		t.Fatalf("replicator stop on east2: %v\n%s", err, out)
	}
	out, err := s.tprovision("east3", "-s", "east2", "-m", "mariabackup")
	if err == nil || !strings.Contains(out, "nothing was changed") {
		t.Errorf("tprovision from a host whose replicator is down: %v\n%s", err, out)
	}
	if out, err := s.tool("east2", "continuent", "replicator", "start"); err != nil {
		t.Fatalf("replicator start on east2: %v\n%s", err, out)
	}
	s.waitStatus("east1", 30*time.Second, "east3 back as it was", allOnline)

	// A copy that did not finish (its marker left, as a mysqldump load
	// failing half-way leaves it): the managers refuse to bring east2
	// back; the next tprovision completes the copy and clears it.
	s.mustCctrl("east1", "datasource", "east2", "shun")
	marker := filepath.Join(s.cfg.Dir, "east2", "continuent", "var", "run", "tprovision.incomplete")
	if err := os.WriteFile(marker, []byte("mysqldump from east3 began at 2026-11-26T10:00:00Z\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		_, err := s.cctrl("east1", false, "datasource", "east2", "recover")
		if err == nil || !strings.Contains(err.Error(), "holds part of a tprovision copy that did not finish (mysqldump from east3") {
			return fmt.Errorf("recover of a half-copied host: %v", err)
		}
		return nil
	})

	// mysqldump from a replica.
	out, err = s.tprovision("east2", "-s", "east3", "-m", "mysqldump")
	if err != nil || !strings.Contains(out, "east2 is ONLINE") || !strings.Contains(out, "position copied from east3") {
		t.Fatalf("tprovision -s east3 -m mysqldump on east2: %v\n%s", err, out)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the marker of the unfinished copy is still there")
	}
	// The physical method from the primary, under writes.
	out, err = s.tprovision("east3", "-s", "east1", "-m", "xtrabackup", "-t", "2")
	if err != nil || !strings.Contains(out, "east3 is ONLINE") || !strings.Contains(out, "position seqno") {
		t.Fatalf("tprovision -s east1 -m xtrabackup on east3: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(s.cfg.Dir, "east3", "mysql", "data.tprovision-old")); err == nil {
		t.Errorf("the old datadir was left behind")
	}
	s.waitStatus("east1", 30*time.Second, "every host ONLINE after the copies", allOnline)
	awaitAcked(t, &acked, 20, 10*time.Second) // writes go on after the copies
	close(stop)
	<-done

	s.sameEverywhere(30*time.Second, eastHosts, "app")
	var rows int64
	s.db("east3").QueryRow("SELECT COUNT(*) FROM app.t WHERE v >= 1000000").Scan(&rows)
	t.Logf("%d writes acknowledged during the copies; %d rows on east3", acked.Load(), rows)
	if rows != acked.Load() {
		t.Errorf("east3 has %d of the %d acknowledged writes", rows, acked.Load())
	}
}

// TestTpmUpdateRestartsReplicator: tpm update rewrites the install and
// restarts its running replicator, whose services come back ONLINE (the
// guide's procedures run trepctl online or services right after);
// --no-restart leaves it alone.
func TestTpmUpdateRestartsReplicator(t *testing.T) {
	s := startSandbox(t, oneSite)
	before := s.pidOf("east2", "replicator")
	out, err := s.tool("east2", "continuent", "tpm", "update")
	if err != nil || !strings.Contains(out, "restarted the replicator of east2") {
		t.Fatalf("tpm update: %v\n%s", err, out)
	}
	after := s.pidOf("east2", "replicator")
	if after == before {
		t.Errorf("the replicator still runs as pid %d", before)
	}
	testutil.Eventually(t, 20*time.Second, func() error {
		if st := s.field("east2", "state"); st != "ONLINE" {
			return fmt.Errorf("east2's replicator is %s after tpm update", st)
		}
		return nil
	})
	if out, err := s.tool("east2", "continuent", "tpm", "update", "--no-restart"); err != nil || strings.Contains(out, "restarted") {
		t.Errorf("tpm update --no-restart: %v\n%s", err, out)
	}
	if pid := s.pidOf("east2", "replicator"); pid != after {
		t.Errorf("--no-restart restarted the replicator (%d -> %d)", after, pid)
	}
	s.exec("east1", "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)", "INSERT INTO app.t VALUES (1)")
	s.sameEverywhere(20*time.Second, eastHosts, "app")
}
