package manager

import (
	"strings"
	"time"

	"github.com/carbidedb/carbide/manager/policy"
)

// Alerts have a life cycle. An alert whose condition can end (a stopped
// replicator, a blocked failover, another site's reader stopped) is
// raised under a key naming the condition and cleared when it ends: the
// state's Active list is what holds now, and `ls` shows it. Events (a
// failover done, a fence) only go to the history, which `ls -l` shows
// with the raised and cleared alerts.

// addAlert records an event in the site's alert history (through raft,
// so every manager shows it), timestamped; a manager that is not the
// coordinator only logs it.
func (a *Agent) addAlert(text string) {
	a.mu.Lock()
	if t, ok := a.alerted[text]; ok && time.Since(t) < 30*time.Second {
		a.mu.Unlock()
		return // the same alert again: once per 30 s is enough
	}
	a.alerted[text] = time.Now()
	a.mu.Unlock()
	if !a.ledger.Leading() {
		a.log.Warn("alert", "text", text)
		return
	}
	if err := a.apply(policy.Change{Op: policy.OpAlert, Value: alertLine(time.Now(), text)}); err != nil {
		a.log.Warn("alert not recorded", "text", text, "error", err)
	}
}

func alertLine(at time.Time, text string) string {
	return at.UTC().Format("2006/01/02 15:04:05") + " " + text
}

// raise makes key's alert active with text, and records it in the
// history, unless it is active with that text already; only the
// coordinator raises.
func (a *Agent) raise(key, text string) {
	if !a.ledger.Leading() {
		a.log.Warn("alert", "key", key, "text", text)
		return
	}
	if cur, ok := a.ledger.State().ActiveAlert(key); ok && cur.Text == text {
		return
	}
	now := time.Now()
	if err := a.apply(policy.Change{Op: policy.OpRaise, Key: key, Value: text, At: now},
		policy.Change{Op: policy.OpAlert, Value: alertLine(now, text)}); err != nil {
		a.log.Warn("alert not raised", "key", key, "text", text, "error", err)
	}
}

// clearAlert ends key's alert, if active, and records that in the history.
func (a *Agent) clearAlert(key string) {
	cur, ok := a.ledger.State().ActiveAlert(key)
	if !ok || !a.ledger.Leading() {
		return
	}
	if err := a.apply(policy.Change{Op: policy.OpClear, Key: key},
		policy.Change{Op: policy.OpAlert, Value: alertLine(time.Now(), "cleared: "+cur.Text)}); err != nil {
		a.log.Warn("alert not cleared", "key", key, "error", err)
	}
}

// clearAlertsNotIn clears the active alerts under prefix whose key is not
// in current.
func (a *Agent) clearAlertsNotIn(prefix string, current map[string]string) {
	for _, al := range a.ledger.State().Active {
		if _, ok := current[al.Key]; !ok && strings.HasPrefix(al.Key, prefix) {
			a.clearAlert(al.Key)
		}
	}
}
