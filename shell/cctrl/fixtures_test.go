package cctrl

import (
	"time"

	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

// guideTime is when the guide's sample ls was taken.
var guideTime = time.Date(2025, 1, 2, 15, 31, 31, 0, time.UTC)

// healthy is the operator guide's sample: east1 primary, east3
// coordinating, everything ONLINE at seqno 213.
func healthy() *managerpb.StatusReply {
	ds := func(host, role string, latency float64, created int64, age float64) *managerpb.Datasource {
		d := &managerpb.Datasource{Host: host, Role: role, State: "ONLINE", Address: "10.9.1." + host[4:],
			ManagerAlive: true, ManagerState: "ONLINE", Dataserver: "ONLINE", ReadOnly: role != "master",
			ReplicatorRole: role, ReplicatorState: "ONLINE", AppliedSeqno: 213, AppliedLatency: latency, MaxStoredSeqno: 213,
			ConnectionsCreated: created, ReportAgeSeconds: age}
		if role != "master" {
			d.MasterUri = "thl://east1:2112/"
		}
		return d
	}
	return &managerpb.StatusReply{
		Site: "east", Host: "east1", Coordinator: "east3", Policy: "AUTOMATIC", Primary: "east1", Term: 1,
		TimeUnixMs: guideTime.UnixMilli(), Initialized: true,
		Datasources: []*managerpb.Datasource{
			ds("east1", "master", 0.921, 1, 0),
			ds("east2", "slave", 0.950, 0, 0),
			ds("east3", "slave", 0.942, 0, 2),
		},
		Routers: []*managerpb.Router{
			{Host: "east1", State: "ONLINE", Pid: 6117, Created: 1, Alive: true},
			{Host: "east2", State: "ONLINE", Pid: 6105, Alive: true},
			{Host: "east3", State: "ONLINE", Pid: 6109, Alive: true},
		},
		Members: []*managerpb.Member{
			{Host: "east1", Address: "10.9.1.1:7800", State: "alive", Voter: true},
			{Host: "east2", Address: "10.9.1.2:7800", State: "alive", Voter: true},
			{Host: "east3", Address: "10.9.1.3:7800", State: "alive", Voter: true, Coordinator: true},
		},
	}
}

func dsOf(r *managerpb.StatusReply, host string) *managerpb.Datasource {
	for _, d := range r.GetDatasources() {
		if d.GetHost() == host {
			return d
		}
	}
	panic("no datasource " + host)
}

// scenario is one status to draw, and the options to draw it with.
type scenario struct {
	name  string
	reply *managerpb.StatusReply
	opts  LsOptions
}

// scenarios are the sites ls must draw right.
func scenarios() []scenario {
	var out []scenario
	add := func(name string, o LsOptions, change func(r *managerpb.StatusReply)) {
		r := healthy()
		change(r)
		out = append(out, scenario{name, r, o})
	}
	add("healthy", LsOptions{}, func(*managerpb.StatusReply) {})
	add("lagging", LsOptions{}, func(r *managerpb.StatusReply) {
		d := dsOf(r, "east3")
		d.AppliedSeqno, d.AppliedLatency = 150, 63.518
	})
	add("shunned", LsOptions{}, func(r *managerpb.StatusReply) {
		d := dsOf(r, "east2")
		d.State, d.Reason, d.ReplicatorState = "SHUNNED", "MANUALLY-SHUNNED", "OFFLINE:NORMAL"
	})
	add("failover", LsOptions{}, func(r *managerpb.StatusReply) {
		r.Primary, r.Term = "east2", 2
		old := dsOf(r, "east1")
		old.Role, old.State, old.Reason = "slave", "FAILED", "dataserver down"
		old.Dataserver, old.DataserverError, old.ReplicatorState = "STOPPED", "dial tcp 10.9.1.1:13306: connect: connection refused", "OFFLINE:ERROR"
		old.MasterUri, old.ConnectionsCreated, old.ReadOnly = "", 0, true
		p := dsOf(r, "east2")
		p.Role, p.ReplicatorRole, p.ReadOnly, p.MasterUri, p.AppliedSeqno, p.MaxStoredSeqno = "master", "master", false, "", 220, 220
		e3 := dsOf(r, "east3")
		e3.MasterUri, e3.AppliedSeqno = "thl://east2:2112/", 220
	})
	add("primary-failed", LsOptions{Long: true}, func(r *managerpb.StatusReply) {
		p := dsOf(r, "east1")
		p.State, p.Reason, p.Dataserver, p.ReadOnly = "FAILED", "dataserver down", "STOPPED", true
		r.Alerts = []string{"2025/01/02 15:31:00 the replicator of east3 is OFFLINE:ERROR; see trepctl status on east3 (an apply error needs an operator)",
			"2025/01/02 15:31:02 primary east1 is FAILED(dataserver down); no candidate to fail over to: east2 SHUNNED, east3 replicator OFFLINE:ERROR"}
		r.ActiveAlerts = []*managerpb.Alert{{Key: "monitor/no-candidate/east1", SinceUnixMs: time.Date(2025, 1, 2, 15, 31, 2, 0, time.UTC).UnixMilli(),
			Text: "primary east1 is FAILED(dataserver down); no candidate to fail over to: east2 SHUNNED, east3 replicator OFFLINE:ERROR"}}
	})
	add("writable-lost", LsOptions{}, func(r *managerpb.StatusReply) {
		r.Transition = "switch east1 -> east2"
		dsOf(r, "east1").ReadOnly = true
	})
	add("maintenance", LsOptions{}, func(r *managerpb.StatusReply) { r.Policy = "MAINTENANCE" })
	add("offset-warning", LsOptions{}, func(r *managerpb.StatusReply) {
		r.Warnings = []string{"sites east and west take writes with the same auto_increment_offset 1 (east1, west1): their generated keys collide; give each site its own auto-increment-offset"}
	})
	add("ssl", LsOptions{SSL: true}, func(r *managerpb.StatusReply) {
		dsOf(r, "east2").MasterUri = "thls://east1:2112/"
		dsOf(r, "east3").MasterUri = "thls://east1:2112/"
	})
	add("connector-offline", LsOptions{}, func(r *managerpb.StatusReply) {
		r.Routers[1].State = "OFFLINE"
		r.Routers[2].Alive, r.Routers[2].Pid = false, 0
	})
	add("no-coordinator", LsOptions{}, func(r *managerpb.StatusReply) {
		r.Coordinator, r.Host = "", "east1"
		r.CoordinatorProblem = "no quorum: this manager reaches 1 of the 3 managers of east, a coordinator needs 2; no automatic action is taken"
		for _, h := range []string{"east2", "east3"} {
			d := dsOf(r, h)
			d.ManagerAlive, d.ManagerState, d.Dataserver, d.ReportAgeSeconds = false, "STOPPED", "UNKNOWN", 12.5
		}
		for _, m := range r.Members[1:] {
			m.State, m.Coordinator = "dead", false
		}
		for _, rt := range r.Routers[1:] {
			rt.Alive = false
		}
	})
	add("long", LsOptions{Long: true, Host: "east2"}, func(*managerpb.StatusReply) {})
	// Both sites wrote the same rows: every host's cross-site service
	// recorded what it met, and east2's cluster service too (it met
	// west's changes before east1's).
	add("conflicts", LsOptions{}, func(r *managerpb.StatusReply) {
		for _, d := range r.Datasources {
			d.Conflicts = []*managerpb.ServiceConflicts{{Service: "west", Recorded: 3, CrossSite: true}}
		}
		e2 := dsOf(r, "east2")
		e2.Conflicts = append([]*managerpb.ServiceConflicts{{Service: "east", Recorded: 2}}, e2.Conflicts...)
	})
	return out
}
