package clustercheck

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/carbidedb/carbide/internal/consistency"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// maxNamedRows is how many differing rows a finding names.
const maxNamedRows = 5

// compareRows judges a chunk checked row by row: rows that differ (a
// hash, or a row only one host has) and that no transaction between the
// two snapshots changed are a real difference; those that one did are
// unresolved (returned), to be compared again.
func (c *Checker) compareRows(ctx context.Context, ch *replicatorpb.CheckChunk, ref, r *consistency.Result) (Verdict, string, map[string]bool) {
	if r.Err != "" {
		return Different, "the rows could not be listed there: " + r.Err, nil
	}
	diff := map[string]bool{}
	for k, h := range ref.Rows {
		if r.Rows[k] != h {
			diff[k] = true
		}
	}
	for k := range r.Rows {
		if _, ok := ref.Rows[k]; !ok {
			diff[k] = true
		}
	}
	if len(diff) == 0 {
		return Equal, "", nil
	}
	changed := map[string]bool{}
	for _, g := range consistency.Gaps(ref, r) {
		svc, a, b := g.Service, g.Ref, g.Other
		if a == consistency.Unknown || b == consistency.Unknown {
			return Changing, fmt.Sprintf("%d row(s) differ, and where %s stood is unknown", len(diff), svc), diff
		}
		all, keys, err := c.touchedKeys(ctx, ch, svc, min(a, b), max(a, b))
		if err != nil || all {
			return Changing, fmt.Sprintf("%d row(s) differ, and %s's transactions between the snapshots may have changed any", len(diff), svc), diff
		}
		for _, k := range keys {
			changed[k] = true
		}
	}
	var real []string
	unresolved := map[string]bool{}
	for k := range diff {
		if changed[k] {
			unresolved[k] = true
		} else {
			real = append(real, k)
		}
	}
	if len(real) == 0 {
		return Changing, fmt.Sprintf("%d row(s) differ, each changed between the snapshots", len(diff)), unresolved
	}
	sort.Strings(real)
	return Different, describeRows(ch, real, ref, r), nil
}

// describeRows names the rows that differ: key, and what each host holds.
func describeRows(ch *replicatorpb.CheckChunk, keys []string, ref, r *consistency.Result) string {
	var parts []string
	for i, k := range keys {
		if i == maxNamedRows {
			parts = append(parts, fmt.Sprintf("and %d more", len(keys)-maxNamedRows))
			break
		}
		name := keyText(ch, k)
		_, here := r.Rows[k]
		_, there := ref.Rows[k]
		switch {
		case !here:
			parts = append(parts, name+" missing there")
		case !there:
			parts = append(parts, name+" there only (not on "+ref.Host+")")
		default:
			parts = append(parts, name+" differs")
		}
	}
	return fmt.Sprintf("%d row(s) differ from %s's: %s", len(keys), ref.Host, strings.Join(parts, ", "))
}

// keyText renders a listed row's key for people: id=5, (a,b)=(x,1).
func keyText(ch *replicatorpb.CheckChunk, k string) string {
	vals := strings.Split(k, "\x1f")
	if len(ch.GetKey()) == 1 {
		return ch.GetKey()[0] + "=" + k
	}
	return "(" + strings.Join(ch.GetKey(), ",") + ")=(" + strings.Join(vals, ",") + ")"
}
