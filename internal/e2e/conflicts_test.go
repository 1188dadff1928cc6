package e2e

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/testutil"
)

// TestConflictsConverge: with the cross-site replicators offline on both
// sites, east1 and west1 change the same rows (an UPDATE each of row 1,
// east's DELETE of row 2 against west's UPDATE of it, an INSERT each of
// key 10); back online, every host of both sites ends with east's writes
// (the default converge rule, east first in ini order), and each primary
// recorded the three conflicts its cross-site applier met, once each:
// west1 applied east's changes over its own, east1 kept its own. cctrl
// ls and mm_cctrl ls on both sites then show what every host's services
// recorded.
func TestConflictsConverge(t *testing.T) {
	s := startMSAA(t)
	s.exec("east1", "CREATE TABLE app.c (id INT PRIMARY KEY, v VARCHAR(20))", "INSERT INTO app.c VALUES (1, 'orig'), (2, 'orig'), (3, 'orig')")
	s.sameEverywhere(60*time.Second, allHosts, "app")
	for _, h := range allHosts {
		if out, err := s.tool(h, "replicator", "mm_trepctl", "offline"); err != nil {
			t.Fatalf("%s: mm_trepctl offline: %v %s", h, err, out)
		}
	}
	s.exec("east1", "UPDATE app.c SET v = 'east' WHERE id = 1", "DELETE FROM app.c WHERE id = 2", "INSERT INTO app.c VALUES (10, 'east')")
	s.exec("west1", "UPDATE app.c SET v = 'west' WHERE id = 1", "UPDATE app.c SET v = 'west' WHERE id = 2", "INSERT INTO app.c VALUES (10, 'west')")
	for _, h := range allHosts {
		if out, err := s.tool(h, "replicator", "mm_trepctl", "online"); err != nil {
			t.Fatalf("%s: mm_trepctl online: %v %s", h, err, out)
		}
	}
	s.sameEverywhere(60*time.Second, allHosts, "app")
	s.allOnlineAndCaughtUp(60 * time.Second)
	for _, h := range allHosts {
		var rows string
		if err := s.db(h).QueryRow("SELECT GROUP_CONCAT(id, ':', v ORDER BY id) FROM app.c").Scan(&rows); err != nil || rows != "1:east,3:orig,10:east" {
			t.Errorf("%s holds %s (%v), want east's rows 1:east,3:orig,10:east", h, rows, err)
		}
	}
	for _, c := range []struct{ host, service, want string }{
		{"west1", "east", "UPDATE id=1 row differs applied|DELETE id=2 row differs applied|INSERT id=10 row exists applied"},
		{"east1", "west", "UPDATE id=1 row differs kept|UPDATE id=2 row missing kept|INSERT id=10 row exists kept"},
	} {
		var got string
		err := s.db(c.host).QueryRow(fmt.Sprintf("SELECT GROUP_CONCAT(CONCAT_WS(' ', action, row_key, kind, decision) ORDER BY seqno, change_no, row_no SEPARATOR '|') FROM tungsten_%s.conflicts", c.service)).Scan(&got)
		if err != nil || got != c.want {
			t.Errorf("%s recorded %q (%v) for %s, want %q", c.host, got, err, c.service, c.want)
		}
		out, err := s.tool(c.host, "replicator", "mm_trepctl", "-service", c.service, "conflicts", "-json")
		var list []map[string]any
		if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 3 {
			t.Errorf("%s: mm_trepctl -service %s conflicts -json: %v\n%s", c.host, c.service, err, out)
		}
		out, err = s.tool(c.host, "replicator", "mm_trepctl", "-service", c.service, "status")
		line := ""
		for _, l := range strings.Split(out, "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "conflicts" {
				line = strings.TrimSpace(v)
			}
		}
		if err != nil || line != "3" {
			t.Errorf("%s: mm_trepctl -service %s status says conflicts : %q, want 3: %v", c.host, c.service, line, err)
		}
	}
	s.lsShowsConflicts(30 * time.Second)
}

// lsShowsConflicts waits until cctrl ls on a host of each site draws, in
// each datasource's box, a CONFLICTS line for each service of the host
// whose status counts conflicts, and mm_cctrl ls one in each cross-site
// service's: the counts the replicators give, the two primaries' among
// them.
func (s *site) lsShowsConflicts(timeout time.Duration) {
	s.t.Helper()
	sites := map[string][]string{"east": allHosts[:3], "west": allHosts[3:]}
	cross := map[string]string{"east": "west", "west": "east"}
	var lastLs, lastMM string
	testutil.Eventually(s.t, timeout, func() error {
		for site, hosts := range sites {
			ls, mm := map[string][]string{}, map[string][]string{}
			for _, h := range hosts {
				for _, v := range []replService{{host: h, install: "continuent", service: site}, {host: h, install: "replicator", service: cross[site]}} {
					st, err := s.serviceStatus(v)
					if err != nil {
						return fmt.Errorf("%s %s status: %v", h, v.service, err)
					}
					if n := st["conflicts"]; n != "" && n != "0" {
						prog := map[string]string{"continuent": "trepctl", "replicator": "mm_trepctl"}[v.install]
						ls[h] = append(ls[h], fmt.Sprintf("CONFLICTS(service=%s, recorded=%s): %s -service %s conflicts", v.service, n, prog, v.service))
						if v.install == "replicator" {
							mm[h] = append(mm[h], fmt.Sprintf("CONFLICTS(recorded=%s): mm_trepctl -service %s conflicts", n, v.service))
						}
					}
				}
			}
			if len(ls[site+"1"]) == 0 {
				return fmt.Errorf("%s1's services count no conflicts", site)
			}
			r := s.runCctrl(hosts[2], "continuent", "cctrl", "ls\n")
			lastLs = r.out
			if got := boxLines(r.out, "CONFLICTS("); r.code != 0 || !reflect.DeepEqual(got, ls) {
				return fmt.Errorf("cctrl ls on %s (exit %d %s) draws conflicts %v, the replicators count %v", hosts[2], r.code, r.err, got, ls)
			}
			r = s.runCctrl(hosts[1], "replicator", "mm_cctrl", "ls\n")
			lastMM = r.out
			if got := boxLines(r.out, "CONFLICTS("); r.code != 0 || !reflect.DeepEqual(got, mm) {
				return fmt.Errorf("mm_cctrl ls on %s (exit %d %s) draws conflicts %v, the replicators count %v", hosts[1], r.code, r.err, got, mm)
			}
		}
		return nil
	})
	s.t.Logf("the last cctrl ls:\n%s\nthe last mm_cctrl ls:\n%s", lastLs, lastMM)
}

// boxLines collects, per host box of an ls (a box's first line is
// "|host(…", its body lines begin with a space), the body lines that
// begin with prefix, trimmed.
func boxLines(out, prefix string) map[string][]string {
	got := map[string][]string{}
	host := ""
	for _, l := range strings.Split(out, "\n") {
		l, ok := strings.CutPrefix(strings.TrimSuffix(strings.TrimSpace(l), "|"), "|")
		if !ok || l == "" {
			continue
		}
		if l[0] != ' ' {
			if i := strings.IndexByte(l, '('); i > 0 && !strings.ContainsAny(l[:i], " @") {
				host = l[:i]
			}
			continue
		}
		if l = strings.TrimSpace(l); strings.HasPrefix(l, prefix) {
			got[host] = append(got[host], l)
		}
	}
	return got
}

// TestConflictsCrossing: crossings where a value-only comparison lets
// the losing site's change through on some hosts and not on others. With
// the cross-site replicators offline, east1 and west1 change the same
// rows; online, every host must end with east's rows (east wins):
//   - row 1: east deletes it; west deletes it and inserts it again. East1
//     meets west's INSERT on a free key (east deleted it concurrently).
//   - row 2: both set v='a'; west then sets v='b'. East1 meets west's
//     second UPDATE with its before-image 'a' equal to east's row: the
//     values agree, yet west made it without having seen east's change.
//   - row 3: both set v='a'; west then deletes it (the same, for a DELETE).
//   - row 4: west sets v='w' and back to 'orig'; east sets v='e'. West1
//     meets east's UPDATE with its before-image 'orig' equal to its row.
//   - row 20: both insert (20,'a'); west then sets v='b'.
func TestConflictsCrossing(t *testing.T) {
	s := startMSAA(t)
	s.exec("east1", "CREATE TABLE app.c (id INT PRIMARY KEY, v VARCHAR(20))", "INSERT INTO app.c VALUES (1, 'orig'), (2, 'orig'), (3, 'orig'), (4, 'orig')")
	s.sameEverywhere(60*time.Second, allHosts, "app")
	for _, h := range allHosts {
		if out, err := s.tool(h, "replicator", "mm_trepctl", "offline"); err != nil {
			t.Fatalf("%s: mm_trepctl offline: %v %s", h, err, out)
		}
	}
	s.exec("east1", "DELETE FROM app.c WHERE id = 1", "UPDATE app.c SET v = 'a' WHERE id IN (2, 3)", "UPDATE app.c SET v = 'e' WHERE id = 4",
		"INSERT INTO app.c VALUES (20, 'a')")
	s.exec("west1", "DELETE FROM app.c WHERE id = 1", "INSERT INTO app.c VALUES (1, 'west')",
		"UPDATE app.c SET v = 'a' WHERE id IN (2, 3)", "UPDATE app.c SET v = 'b' WHERE id = 2", "DELETE FROM app.c WHERE id = 3",
		"UPDATE app.c SET v = 'w' WHERE id = 4", "UPDATE app.c SET v = 'orig' WHERE id = 4",
		"INSERT INTO app.c VALUES (20, 'a')", "UPDATE app.c SET v = 'b' WHERE id = 20")
	for _, h := range allHosts {
		if out, err := s.tool(h, "replicator", "mm_trepctl", "online"); err != nil {
			t.Fatalf("%s: mm_trepctl online: %v %s", h, err, out)
		}
	}
	s.allOnlineAndCaughtUp(60 * time.Second)
	const want = "2:a,3:a,4:e,20:a"
	rows := map[string]string{}
	bad := false
	for _, h := range allHosts {
		var got string
		if err := s.db(h).QueryRow("SELECT IFNULL(GROUP_CONCAT(id, ':', v ORDER BY id), '') FROM app.c").Scan(&got); err != nil {
			t.Fatalf("%s: %v", h, err)
		}
		rows[h] = got
		bad = bad || got != want
	}
	if bad {
		var b strings.Builder
		for _, h := range allHosts {
			fmt.Fprintf(&b, "\n%s holds %s", h, rows[h])
			for _, id := range []int{1, 2, 3, 4, 20} {
				for _, schema := range []string{"tungsten_east", "tungsten_west"} {
					for _, c := range s.conflictsOf(h, schema, "c", id) {
						fmt.Fprintf(&b, "\n  %s.conflicts: %s", schema, c)
					}
				}
			}
		}
		t.Fatalf("want every host to hold east's rows %s:%s", want, b.String())
	}
}
