package cctrl

import (
	"fmt"
	"strconv"
	"time"

	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

type dsT = managerpb.Datasource

// LsOptions select what ls draws.
type LsOptions struct {
	Host string // only this datasource
	Long bool   // each datasource's details and the site's alerts (ls -l)
	SSL  bool   // THL is encrypted: [SSL] after STATUS
}

// Site states on a datasource's STATUS line.
const (
	StatusOK         = "OK"
	StatusDiminished = "DIMINISHED"
	StatusCritical   = "CRITICAL"
)

// LsLines draws a site's status in the operator guide's layout:
//
//	COORDINATOR[east3:AUTOMATIC:ONLINE]
//
//	ROUTERS:
//	+---------------------------------------------------------------------------------+
//	|connector@east1[6117](ONLINE, created=1, active=0)                               |
//	+---------------------------------------------------------------------------------+
//
//	DATASOURCES:
//	+---------------------------------------------------------------------------------+
//	|east1(master:ONLINE, progress=213, THL latency=0.921)                            |
//	|STATUS [OK] [2025/01/02 03:31:31 PM UTC]                                         |
//	+---------------------------------------------------------------------------------+
//	| MANAGER(state=ONLINE)                                                           |
//	| REPLICATOR(role=master, state=ONLINE)                                           |
//	| DATASERVER(state=ONLINE)                                                        |
//	| CONNECTIONS(created=1, active=0)                                                |
//	+---------------------------------------------------------------------------------+
//
// It is pure: the reply in, lines out (the first one blank, as cctrl prints
// them after the command).
func LsLines(r *managerpb.StatusReply, o LsOptions) []string {
	out := []string{"", coordinatorLine(r)}
	if t := r.GetTransition(); t != "" {
		out = append(out, "TRANSITION: "+t)
	}
	for _, w := range r.GetWarnings() {
		out = append(out, "WARNING: "+w)
	}
	// The alerts whose condition holds now; ls -l adds the history
	// (raised, cleared, and events such as a failover).
	for _, a := range r.GetActiveAlerts() {
		out = append(out, "ALERT: "+time.UnixMilli(a.GetSinceUnixMs()).UTC().Format("2006/01/02 15:04:05")+" "+a.GetText())
	}
	if o.Long {
		for _, a := range r.GetAlerts() {
			out = append(out, "ALERT LOG: "+a)
		}
	}
	out = append(out, "", "ROUTERS:")
	var routers []string
	for _, rt := range r.GetRouters() {
		routers = append(routers, routerLine(rt))
	}
	if len(routers) == 0 {
		routers = []string{"NONE"}
	}
	out = append(out, box(routers)...)
	out = append(out, "", "DATASOURCES:")
	for _, d := range r.GetDatasources() {
		if o.Host != "" && d.GetHost() != o.Host {
			continue
		}
		out = append(out, datasourceBox(r, d, o)...)
	}
	return out
}

// coordinatorLine is COORDINATOR[host:POLICY:ONLINE], or says why there is
// no coordinator.
func coordinatorLine(r *managerpb.StatusReply) string {
	if c := r.GetCoordinator(); c != "" {
		return fmt.Sprintf("COORDINATOR[%s:%s:ONLINE]", c, r.GetPolicy())
	}
	why := r.GetCoordinatorProblem()
	if why == "" {
		why = "no manager coordinates " + r.GetSite()
	}
	return fmt.Sprintf("COORDINATOR[NONE:%s:OFFLINE] %s (this view is %s's)", orUnknown(r.GetPolicy()), why, r.GetHost())
}

func routerLine(rt *managerpb.Router) string {
	pid := "-"
	if rt.GetPid() > 0 {
		pid = strconv.FormatInt(rt.GetPid(), 10)
	}
	notRunning := ""
	if !rt.GetAlive() {
		notRunning = ", NOT RUNNING"
	}
	return fmt.Sprintf("connector@%s[%s](%s, created=%d, active=%d%s)", rt.GetHost(), pid, orUnknown(rt.GetState()), rt.GetCreated(), rt.GetActive(), notRunning)
}

// datasourceBox is one datasource's box.
func datasourceBox(r *managerpb.StatusReply, d *dsT, o LsOptions) []string {
	known := d.GetManagerAlive() && d.GetReplicatorState() != ""
	progress, latency := d.GetAppliedSeqno(), d.GetAppliedLatency()
	if !known {
		progress, latency = -1, -1
	}
	state := orUnknown(d.GetState())
	if d.GetReason() != "" {
		state += "(" + d.GetReason() + ")"
	}
	lat := "latency"
	if d.GetRole() == "master" {
		lat = "THL latency"
	}
	head := fmt.Sprintf("%s(%s:%s, progress=%d, %s=%.3f)", d.GetHost(), orUnknown(d.GetRole()), state, progress, lat, latency)
	st := fmt.Sprintf("STATUS [%s] [%s]", DatasourceStatus(r, d), reportTime(r, d))
	if o.SSL || isSSL(d.GetMasterUri()) {
		st += "[SSL]"
	}
	managerState := d.GetManagerState()
	if managerState == "" {
		managerState = "STOPPED"
		if d.GetManagerAlive() {
			managerState = "ONLINE"
		}
	}
	replRole := d.GetReplicatorRole()
	if replRole == "" {
		replRole = d.GetRole()
	}
	replState := d.GetReplicatorState()
	if !d.GetManagerAlive() {
		replState = "" // what a dead manager last said is stale
	}
	repl := fmt.Sprintf(" REPLICATOR(role=%s, state=%s)", orUnknown(replRole), orUnknown(replState))
	if replRole != "master" {
		master := uriHost(d.GetMasterUri())
		if master == "" {
			master = r.GetPrimary()
		}
		repl = fmt.Sprintf(" REPLICATOR(role=%s, master=%s, state=%s)", orUnknown(replRole), orUnknown(master), orUnknown(replState))
	}
	body := []string{fmt.Sprintf(" MANAGER(state=%s)", managerState), repl}
	if d.GetManagerAlive() {
		body = append(body, conflictLines(d)...)
	}
	body = append(body,
		fmt.Sprintf(" DATASERVER(state=%s)", orUnknown(d.GetDataserver())),
		fmt.Sprintf(" CONNECTIONS(created=%d, active=%d)", d.GetConnectionsCreated(), d.GetConnectionsActive()),
	)
	if !o.Long {
		return box([]string{head, st}, body)
	}
	long := []string{
		fmt.Sprintf(" ADDRESS(%s, precedence=%d)", d.GetAddress(), d.GetPrecedence()),
		fmt.Sprintf(" DATABASE(read_only=%t, fenced=%t)", d.GetReadOnly(), d.GetFenced()),
		fmt.Sprintf(" THL(applied=%d, stored=%d, source=%s)", d.GetAppliedSeqno(), d.GetMaxStoredSeqno(), orNone(d.GetMasterUri())),
		fmt.Sprintf(" REPORT(age=%.1fs)", d.GetReportAgeSeconds()),
	}
	if e := d.GetDataserverError(); e != "" {
		long = append(long, " DATASERVER ERROR: "+e)
	}
	return box([]string{head, st}, body, long)
}

// conflictLines are a line per replicator service of the host that has
// recorded conflicts, with the command that lists them:
//
//	CONFLICTS(service=west, recorded=3): mm_trepctl -service west conflicts
func conflictLines(d *dsT) []string {
	var out []string
	for _, c := range d.GetConflicts() {
		prog := "trepctl"
		if c.GetCrossSite() {
			prog = "mm_trepctl"
		}
		out = append(out, fmt.Sprintf(" CONFLICTS(service=%s, recorded=%d): %s -service %s conflicts", c.GetService(), c.GetRecorded(), prog, c.GetService()))
	}
	return out
}

// DatasourceStatus is the STATUS of one datasource's box: the primary is
// CRITICAL when it is not ONLINE or not writable, DIMINISHED when its
// manager or replicator is not ONLINE; a replica is DIMINISHED when it or
// its replicator, database or manager is not ONLINE.
func DatasourceStatus(r *managerpb.StatusReply, d *dsT) string {
	healthy := d.GetManagerAlive() && d.GetReplicatorState() == "ONLINE"
	if d.GetHost() == r.GetPrimary() {
		switch {
		case d.GetState() != "ONLINE", d.GetDataserver() == "STOPPED", d.GetManagerAlive() && (d.GetReadOnly() || d.GetFenced()):
			return StatusCritical
		case !healthy || d.GetDataserver() != "ONLINE":
			return StatusDiminished
		}
		return StatusOK
	}
	if d.GetState() != "ONLINE" || !healthy || d.GetDataserver() != "ONLINE" {
		return StatusDiminished
	}
	return StatusOK
}

// reportTime is when the datasource was last heard of, as the guide prints
// times: 2025/01/02 03:31:31 PM UTC.
func reportTime(r *managerpb.StatusReply, d *dsT) string {
	ms := r.GetTimeUnixMs() - int64(d.GetReportAgeSeconds()*1000)
	return time.UnixMilli(ms).UTC().Format("2006/01/02 03:04:05 PM MST")
}

func isSSL(uri string) bool { return len(uri) >= 7 && uri[:7] == "thls://" }

func orUnknown(s string) string {
	if s == "" {
		return "UNKNOWN"
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
