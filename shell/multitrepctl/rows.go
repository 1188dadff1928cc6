package multitrepctl

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// Default columns of list and position.
var (
	listFields      = []string{"host", "servicename", "role", "state", "appliedlastseqno", "appliedlatency"}
	positionFields  = []string{"host", "servicename", "role", "state", "appliedlastseqno", "appliedlasteventid"}
	heartbeatFields = []string{"host", "servicename", "role", "heartbeat"}
)

// builtinFields are the fields every row can have, answered or not.
var builtinFields = []string{
	"host", "servicename", "role", "state", "appliedlastseqno", "appliedlatency",
	"appliedlasteventid", "minstoredseqno", "maxstoredseqno", "epoch", "masterconnecturi",
	"pendingerror", "pendingerrorseqno", "pendingexceptionmessage", "site", "address", "heartbeat",
}

// States of a replicator that gave no status.
const (
	StateNotRunning = "NOT RUNNING"
	StateNoAnswer   = "NO ANSWER"
)

// row is one (host, service) line of the table.
type row struct {
	host     string
	hostPos  int
	service  string
	svcPos   int
	kind     config.InstallKind
	role     string
	answered bool
	values   map[string]string // lower-case field name → value
}

func (r *row) get(field string) string { return r.values[field] }

// statusRow makes the row of a service that answered.
func statusRow(t target, st *replicatorpb.ServiceStatus) *row {
	r := &row{host: t.host.Name, hostPos: t.hostPos, service: st.GetService(), kind: t.in.Kind, role: st.GetRole(), answered: true, values: map[string]string{}}
	v := r.values
	for _, f := range st.GetFields() {
		v[strings.ToLower(f.GetName())] = f.GetValue()
	}
	i := func(n int64) string { return strconv.FormatInt(n, 10) }
	v["host"] = t.host.Name
	v["servicename"] = st.GetService()
	v["role"] = st.GetRole()
	v["state"] = st.GetState()
	v["appliedlastseqno"] = i(st.GetAppliedLastSeqno())
	v["appliedlatency"] = strconv.FormatFloat(st.GetAppliedLatency(), 'f', 3, 64)
	v["appliedlasteventid"] = st.GetAppliedLastEventId()
	v["minstoredseqno"] = i(st.GetMinStoredSeqno())
	v["maxstoredseqno"] = i(st.GetMaxStoredSeqno())
	v["epoch"] = strconv.FormatUint(st.GetEpoch(), 10)
	v["masterconnecturi"] = st.GetMasterConnectUri()
	v["pendingerror"] = st.GetPendingError()
	v["pendingerrorseqno"] = i(st.GetPendingErrorSeqno())
	v["pendingexceptionmessage"] = st.GetPendingExceptionMessage()
	v["site"] = t.host.Site
	v["address"] = t.addr
	return r
}

// deadRows makes the rows of a replicator that did not answer: one per
// service the configuration gives it, with what the configuration knows.
func deadRows(t target, err error) []*row {
	state := deadState(err)
	var out []*row
	for _, sp := range t.in.Services {
		out = append(out, &row{host: t.host.Name, hostPos: t.hostPos, service: sp.Name, kind: t.in.Kind, role: sp.Role, values: map[string]string{
			"host": t.host.Name, "servicename": sp.Name, "role": sp.Role, "state": state,
			"site": t.host.Site, "address": t.addr,
		}})
	}
	return out
}

// deadState is the state column of a replicator that gave no status.
func deadState(err error) string {
	switch status.Code(err) {
	case codes.Unavailable:
		return StateNotRunning
	case codes.DeadlineExceeded:
		return StateNoAnswer
	}
	if s, ok := status.FromError(err); ok {
		return "ERROR: " + s.Message()
	}
	return "ERROR: " + err.Error()
}

// sortRows orders rows: by host then service (sites in ini order), or with
// byService by service, then master first, then host; then, stably, by the
// sortBy field when given.
func sortRows(rows []*row, sites []string, byService bool, sortBy string) {
	for _, r := range rows {
		r.svcPos = slices.Index(sites, r.service)
		if r.svcPos < 0 {
			r.svcPos = len(sites)
		}
	}
	bySvc := func(a, b *row) int {
		return cmp.Or(cmp.Compare(a.svcPos, b.svcPos), strings.Compare(a.service, b.service))
	}
	byHost := func(a, b *row) int {
		return cmp.Or(cmp.Compare(a.hostPos, b.hostPos), strings.Compare(a.host, b.host))
	}
	byKind := func(a, b *row) int { return strings.Compare(string(a.kind), string(b.kind)) }
	master := func(r *row) int {
		if r.role == config.RoleMaster {
			return 0
		}
		return 1
	}
	if byService {
		slices.SortStableFunc(rows, func(a, b *row) int {
			return cmp.Or(bySvc(a, b), cmp.Compare(master(a), master(b)), byHost(a, b), byKind(a, b))
		})
	} else {
		slices.SortStableFunc(rows, func(a, b *row) int { return cmp.Or(byHost(a, b), bySvc(a, b), byKind(a, b)) })
	}
	if sortBy != "" {
		slices.SortStableFunc(rows, func(a, b *row) int { return compareValues(a.get(sortBy), b.get(sortBy)) })
	}
}

// compareValues compares numbers as numbers, anything else as text.
func compareValues(a, b string) int {
	x, errA := strconv.ParseFloat(a, 64)
	y, errB := strconv.ParseFloat(b, 64)
	if errA == nil && errB == nil {
		return cmp.Compare(x, y)
	}
	return strings.Compare(a, b)
}

// checkFields finds a field no row has and that is not a built-in one:
// a misspelling. With no answered row, any name is accepted.
func checkFields(rows []*row, names ...string) error {
	answered := false
	for _, r := range rows {
		answered = answered || r.answered
	}
	if !answered {
		return nil
	}
	for _, n := range names {
		if n == "" || slices.Contains(builtinFields, n) {
			continue
		}
		found := false
		for _, r := range rows {
			if _, ok := r.values[n]; ok {
				found = true
				break
			}
		}
		if !found {
			return usagef("no replicator has a field %s (fields: %s, and those of trepctl status in lower case)", n, strings.Join(builtinFields, ", "))
		}
	}
	return nil
}
