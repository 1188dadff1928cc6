package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// ack is one INSERT the writer had acknowledged: when, by which host.
type ack struct {
	id   int64
	host string
	at   time.Time
}

// appWriter inserts rows of increasing id into app.t as the application
// user, on one connection per host: on success it pauses 1 ms and goes on
// with the next id; on an error it tries the same id on the next host at
// once (pausing 1 ms only after every host refused in a row). An INSERT
// refused as a duplicate was committed before with its answer lost, and
// counts as acknowledged.
type appWriter struct {
	hosts []string
	dbs   map[string]*sql.DB
	quit  chan struct{}
	done  chan struct{}

	mu            sync.Mutex
	acks          []ack
	refused       int      // read-only refusals
	dups          int      // duplicates: committed before, answer lost
	uncertain     []string // INSERTs that failed without an answer (connection lost)
	unansweredIDs []int64  // their ids
	otherErrs     int
	lastErr       string
}

func (m *managerSite) startWriter(b *testing.B) *appWriter {
	b.Helper()
	w := &appWriter{hosts: managerHosts, dbs: map[string]*sql.DB{}, quit: make(chan struct{}), done: make(chan struct{})}
	for _, h := range managerHosts {
		db := m.db(b, h, "app_user", "secret")
		db.SetMaxOpenConns(1)
		w.dbs[h] = db
	}
	go w.run()
	b.Cleanup(func() {
		w.stop()
		for _, db := range w.dbs {
			db.Close()
		}
	})
	return w
}

func (w *appWriter) run() {
	defer close(w.done)
	target, failed := 0, 0
	for id := int64(1); ; {
		select {
		case <-w.quit:
			return
		default:
		}
		h := w.hosts[target]
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := w.dbs[h].ExecContext(ctx, "INSERT INTO app.t VALUES (?, ?, NOW(6))", id, h)
		cancel()
		now := time.Now()
		var me *mysql.MySQLError
		switch {
		case err == nil || errors.As(err, &me) && me.Number == 1062:
			w.mu.Lock()
			w.acks = append(w.acks, ack{id: id, host: h, at: now})
			if err != nil {
				w.dups++
			}
			w.mu.Unlock()
			id++
			failed = 0
			time.Sleep(time.Millisecond)
			continue
		case errors.As(err, &me) && me.Number == 1290: // read-only
			w.mu.Lock()
			w.refused++
			w.mu.Unlock()
		default:
			w.mu.Lock()
			if me == nil && !strings.Contains(err.Error(), "connection refused") {
				w.uncertain = append(w.uncertain, fmt.Sprintf("%d@%s %s: %v", id, h, now.Format("15:04:05.000"), err))
				w.unansweredIDs = append(w.unansweredIDs, id)
			}
			w.otherErrs++
			w.lastErr = h + ": " + err.Error()
			w.mu.Unlock()
		}
		target = (target + 1) % len(w.hosts)
		if failed++; failed%len(w.hosts) == 0 {
			time.Sleep(time.Millisecond)
		}
	}
}

// stop ends the writer and waits for it; stopping twice does nothing.
func (w *appWriter) stop() {
	select {
	case <-w.quit:
	default:
		close(w.quit)
	}
	<-w.done
}

// mark is the position in the acknowledgement log where a measurement
// starts.
func (w *appWriter) mark() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acks)
}

// waitAck waits for the first acknowledgement from position from on that
// satisfies ok, returning it and its position.
func (w *appWriter) waitAck(from int, timeout time.Duration, ok func(ack) bool) (ack, int, error) {
	deadline := time.Now().Add(timeout)
	for i := from; ; {
		w.mu.Lock()
		for ; i < len(w.acks); i++ {
			if a := w.acks[i]; ok(a) {
				w.mu.Unlock()
				return a, i, nil
			}
		}
		w.mu.Unlock()
		if time.Now().After(deadline) {
			return ack{}, 0, fmt.Errorf("no such write acknowledged within %v", timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// lastBefore is the last acknowledgement by host before position i.
func (w *appWriter) lastBefore(i int, host string) (ack, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i--; i >= 0; i-- {
		if w.acks[i].host == host {
			return w.acks[i], true
		}
	}
	return ack{}, false
}

// acked maps every acknowledged id to its acknowledgement.
func (w *appWriter) acked() map[int64]ack {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[int64]ack, len(w.acks))
	for _, a := range w.acks {
		out[a.id] = a
	}
	return out
}

// describe sums up what the writer has seen.
func (w *appWriter) describe() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := fmt.Sprintf("%d acknowledged (%d as duplicates), %d refused read-only, %d other errors (last: %s)",
		len(w.acks), w.dups, w.refused, w.otherErrs, w.lastErr)
	if len(w.uncertain) > 0 {
		s += fmt.Sprintf("; %d INSERTs without an answer: %s", len(w.uncertain), firstN(w.uncertain, 10))
	}
	return s
}
