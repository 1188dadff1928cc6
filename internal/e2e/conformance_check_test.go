package e2e

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/testutil"
)

// The checks of the conformance suite: every service ONLINE and caught
// up, every table equal on every host, nothing applied twice; and the
// repair between files.

// A replService is one replication service of one host's install.
type replService struct {
	host, install, service, role, state string
	applied                             int64
}

// replServices reads every service of both installs of every host.
func (s *site) replServices() ([]replService, error) {
	var out []replService
	for _, h := range allHosts {
		for inst, prog := range map[string]string{"continuent": "trepctl", "replicator": "mm_trepctl"} {
			o, err := s.tool(h, inst, prog, "services", "-json")
			if err != nil {
				return nil, fmt.Errorf("%s %s services: %v: %s", h, prog, err, strings.TrimSpace(o))
			}
			var list []map[string]string
			if err := json.Unmarshal([]byte(o), &list); err != nil {
				return nil, fmt.Errorf("%s %s services -json: %v: %s", h, prog, err, o)
			}
			for _, m := range list {
				n, _ := strconv.ParseInt(m["appliedLastSeqno"], 10, 64)
				out = append(out, replService{host: h, install: inst, service: m["serviceName"], role: m["role"], state: m["state"], applied: n})
			}
		}
	}
	return out, nil
}

// caughtUp says why replication is not done: a service not ONLINE, or a
// replica (cluster or cross-site) whose applied seqno differs from its
// site master's. The masters are flushed first, so their seqnos cover
// their binlogs.
func (s *site) caughtUp() error {
	var problems []string
	svcs, err := s.replServices()
	if err != nil {
		return err
	}
	// Every site's master (the first host, or where a switch moved it)
	// has stored what its database holds.
	for _, v := range svcs {
		if v.install == "continuent" && v.role == "master" {
			if out, err := s.tool(v.host, "continuent", "trepctl", "flush", "-limit", "10"); err != nil {
				problems = append(problems, fmt.Sprintf("%s: trepctl flush: %v: %s", v.host, err, strings.TrimSpace(out)))
			}
		}
	}
	svcs, err = s.replServices()
	if err != nil {
		return errors.Join(append([]error{err}, errors.New(strings.Join(problems, "; ")))...)
	}
	masters := map[string]int64{}
	for _, v := range svcs {
		if v.install == "continuent" && v.role == "master" {
			masters[v.service] = v.applied
		}
	}
	for _, v := range svcs {
		where := fmt.Sprintf("%s %s service %s", v.host, map[string]string{"continuent": "trepctl", "replicator": "mm_trepctl"}[v.install], v.service)
		m, ok := masters[v.service]
		switch {
		case v.state != "ONLINE":
			problems = append(problems, fmt.Sprintf("%s is %s%s", where, v.state, s.pendingError(v)))
		case !ok:
			problems = append(problems, where+" has no master")
		case v.applied > m:
			problems = append(problems, fmt.Sprintf("%s applied seqno %d, beyond its master's %d", where, v.applied, m))
		case v.applied < m:
			problems = append(problems, fmt.Sprintf("%s applied seqno %d of its master's %d", where, v.applied, m))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// pendingError is ": <seqno> <error>" of a service that stopped.
func (s *site) pendingError(v replService) string {
	m, _ := s.serviceStatus(v)
	if m["pendingError"] == "" || m["pendingError"] == "NONE" {
		return ""
	}
	return fmt.Sprintf(" (seqno %s: %s)", m["pendingErrorSeqno"], m["pendingError"])
}

func (s *site) serviceStatus(v replService) (map[string]string, error) {
	prog := map[string]string{"continuent": "trepctl", "replicator": "mm_trepctl"}[v.install]
	o, err := s.tool(v.host, v.install, prog, "-service", v.service, "status", "-json")
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	err = json.Unmarshal([]byte(o), &m)
	return m, err
}

// repairReplication brings every stopped service back online past the
// transactions that stop it, as an operator would after recording them
// (one skip per try: a file can leave several behind). It returns false
// when a service stopped without a seqno to skip (a master's extractor
// that cannot read the binlog): only a new sandbox helps then.
func (s *site) repairReplication(t *testing.T) bool {
	clean := 0
	for try := 0; try < 10; try++ {
		svcs, err := s.replServices()
		if err != nil {
			t.Logf("repair: %v", err)
			time.Sleep(time.Second)
			continue
		}
		stopped := 0
		for _, v := range svcs {
			if v.state == "ONLINE" {
				continue
			}
			stopped++
			prog := map[string]string{"continuent": "trepctl", "replicator": "mm_trepctl"}[v.install]
			args := []string{"-service", v.service, "online"}
			m, err := s.serviceStatus(v)
			switch {
			case err == nil && m["pendingErrorSeqno"] != "" && m["pendingErrorSeqno"] != "-1":
				args = append(args, "-skip-seqno", m["pendingErrorSeqno"])
			case v.role == "master" && try > 2:
				t.Logf("repair: %s %s service %s stays %s with nothing to skip: %s", v.host, prog, v.service, v.state, m["pendingError"])
				return false
			}
			out, err := s.tool(v.host, v.install, prog, args...)
			t.Logf("repair: %s %s %s: %v %s", v.host, prog, strings.Join(args, " "), err, strings.TrimSpace(out))
		}
		// A service put online may stop at the next transaction of the
		// file: done when three looks in a row find every service online.
		if clean++; stopped > 0 {
			clean = 0
		}
		if clean == 3 {
			return true
		}
		time.Sleep(time.Second)
	}
	return false
}

// conforms waits until replication is caught up and every host holds the
// same data, with w's writes paused; and w's ledger holds each
// acknowledged write once on every host.
func (s *site) conforms(timeout time.Duration, w *steadyWriter) error {
	if w != nil {
		w.mu.Lock()
		defer w.mu.Unlock()
	}
	var last error
	deadline := time.Now().Add(timeout)
	for {
		last = errors.Join(s.caughtUp(), s.sameData())
		if last == nil && w != nil {
			last = w.check(s)
		}
		if last == nil || time.Now().After(deadline) {
			return last
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// sameData compares every table of every user schema on every host with
// west1's.
func (s *site) sameData() error {
	want, err := s.tableSums("west1")
	if err != nil {
		return err
	}
	var out []string
	for _, h := range allHosts[:] {
		if h == "west1" {
			continue
		}
		got, err := s.tableSums(h)
		if err != nil {
			return err
		}
		if d := diff(want, got); d != "" {
			out = append(out, fmt.Sprintf("%s differs from west1: %s", h, d))
		}
	}
	if len(out) > 0 {
		return errors.New(strings.Join(out, "; "))
	}
	return nil
}

// tableSums is CHECKSUM TABLE of every base table and sequence outside
// the system schemas. A system-versioned table is compared by its current
// rows without the row_start/row_end columns (each host stamps its own
// history).
func (s *site) tableSums(host string) (map[string]string, error) {
	db := s.db(host)
	// A table locked by a stuck applier must fail the check, not hang it.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED', 'SEQUENCE')")
	if err != nil {
		return nil, fmt.Errorf("%s: list tables: %v", host, err)
	}
	type table struct{ schema, name, kind string }
	var tables []table
	for rows.Next() {
		var tb table
		rows.Scan(&tb.schema, &tb.name, &tb.kind)
		if !systemSchema(tb.schema) {
			tables = append(tables, tb)
		}
	}
	rows.Close()
	out := map[string]string{}
	for _, tb := range tables {
		q := "`" + strings.ReplaceAll(tb.schema, "`", "``") + "`.`" + strings.ReplaceAll(tb.name, "`", "``") + "`"
		key := tb.schema + "." + tb.name
		if tb.kind == "SYSTEM VERSIONED" {
			sum, err := currentRowsHash(ctx, db, tb.schema, tb.name, q)
			if err != nil {
				return nil, fmt.Errorf("%s: hash %s: %v", host, key, err)
			}
			out[key] = sum
			continue
		}
		var name string
		var sum sql.NullString
		if err := db.QueryRowContext(ctx, "CHECKSUM TABLE "+q).Scan(&name, &sum); err != nil {
			if strings.Contains(err.Error(), "doesn't exist") {
				continue // dropped while listed
			}
			return nil, fmt.Errorf("%s: CHECKSUM TABLE %s: %v", host, key, err)
		}
		out[key] = sum.String
	}
	return out, nil
}

// currentRowsHash hashes a table's current rows, sorted, without its
// row_start/row_end columns.
func currentRowsHash(ctx context.Context, db *sql.DB, schema, table, q string) (string, error) {
	rows, err := db.QueryContext(ctx, "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND EXTRA NOT LIKE '%ROW START%' AND EXTRA NOT LIKE '%ROW END%' ORDER BY ORDINAL_POSITION", schema, table)
	if err != nil {
		return "", err
	}
	var cols []string
	for rows.Next() {
		var c string
		rows.Scan(&c)
		cols = append(cols, "`"+strings.ReplaceAll(c, "`", "``")+"`")
	}
	rows.Close()
	rows, err = db.QueryContext(ctx, "SELECT "+strings.Join(cols, ",")+" FROM "+q)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var lines []string
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return "", err
		}
		var b strings.Builder
		for _, v := range vals {
			if v == nil {
				b.WriteString("\\N")
			} else {
				b.WriteString(hex.EncodeToString(v))
			}
			b.WriteByte(',')
		}
		lines = append(lines, b.String())
	}
	sort.Strings(lines)
	h := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return fmt.Sprintf("%d rows %x", len(lines), h[:8]), rows.Err()
}

// appliedPastNow waits until every replica (cluster and cross-site) has
// applied what its site's master held when it was called, while writes
// may go on: the masters are flushed, their applied seqnos taken as the
// marks, then each replica must reach its mark.
func (s *site) appliedPastNow(timeout time.Duration) {
	s.t.Helper()
	marks := map[string]int64{}
	testutil.Eventually(s.t, timeout, func() error {
		for _, m := range []string{"east1", "west1"} {
			if out, err := s.tool(m, "continuent", "trepctl", "flush", "-limit", "10"); err != nil {
				return fmt.Errorf("%s: trepctl flush: %v: %s", m, err, strings.TrimSpace(out))
			}
		}
		svcs, err := s.replServices()
		if err != nil {
			return err
		}
		for _, v := range svcs {
			if v.install == "continuent" && v.role == "master" {
				marks[v.service] = v.applied
			}
		}
		return nil
	})
	testutil.Eventually(s.t, timeout, func() error {
		svcs, err := s.replServices()
		if err != nil {
			return err
		}
		var behind []string
		for _, v := range svcs {
			if m, ok := marks[v.service]; ok && v.applied < m {
				behind = append(behind, fmt.Sprintf("%s %s service %s applied %d of %d", v.host, v.install, v.service, v.applied, m))
			}
		}
		if len(behind) > 0 {
			return errors.New(strings.Join(behind, "; "))
		}
		return nil
	})
}
