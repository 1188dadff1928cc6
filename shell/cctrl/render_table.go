package cctrl

import (
	"fmt"
	"io"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"

	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

// table is what the table printer prints: a header and rows of cells.
type table struct {
	header []string
	rows   [][]string
}

// resourcesTable lists every resource of the site (ls resources): each
// datasource, its dataserver, replicator and manager, and each router.
func resourcesTable(r *managerpb.StatusReply) table {
	t := table{header: []string{"RESOURCE", "HOST", "STATE", "DETAIL"}}
	add := func(cells ...string) { t.rows = append(t.rows, cells) }
	for _, d := range r.GetDatasources() {
		state := orUnknown(d.GetState())
		if d.GetReason() != "" {
			state += "(" + d.GetReason() + ")"
		}
		add("datasource", d.GetHost(), state, d.GetRole())
	}
	for _, d := range r.GetDatasources() {
		detail := fmt.Sprintf("read_only=%t", d.GetReadOnly())
		if d.GetDataserverError() != "" {
			detail = d.GetDataserverError()
		}
		add("dataserver", d.GetHost(), orUnknown(d.GetDataserver()), detail)
	}
	for _, d := range r.GetDatasources() {
		add("replicator", d.GetHost(), orUnknown(d.GetReplicatorState()), fmt.Sprintf("%s, applied=%d", orUnknown(d.GetReplicatorRole()), d.GetAppliedSeqno()))
	}
	for _, m := range r.GetMembers() {
		detail := "member"
		if m.GetWitness() {
			detail = "witness"
		}
		if m.GetCoordinator() {
			detail += ", coordinator"
		}
		state := "STOPPED"
		for _, d := range r.GetDatasources() {
			if d.GetHost() == m.GetHost() && d.GetManagerState() != "" {
				state = d.GetManagerState()
			}
		}
		if m.GetWitness() && m.GetState() == "alive" {
			state = "ONLINE"
		}
		add("manager", m.GetHost(), state, detail)
	}
	for _, rt := range r.GetRouters() {
		detail := fmt.Sprintf("pid=%d", rt.GetPid())
		if !rt.GetAlive() {
			detail = "NOT RUNNING"
		}
		add("router", rt.GetHost(), orUnknown(rt.GetState()), detail)
	}
	return t
}

// writeTable prints t as an ASCII table.
func writeTable(w io.Writer, t table) error {
	tb := tablewriter.NewTable(w,
		tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{Symbols: tw.NewSymbols(tw.StyleASCII)})),
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithHeaderAlignment(tw.AlignLeft),
		tablewriter.WithRowAlignment(tw.AlignLeft),
	)
	tb.Header(t.header)
	for _, r := range t.rows {
		if err := tb.Append(r); err != nil {
			return err
		}
	}
	return tb.Render()
}
