package trepctl

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"time"

	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// maxConflicts is the most conflicts one listing shows (the replicator's
// bound too).
const maxConflicts = 1000

// conflictJSON is one conflict as conflicts -json prints it.
type conflictJSON struct {
	ID           uint64          `json:"id"`
	Seqno        uint64          `json:"seqno"`
	Fragno       uint32          `json:"fragno"`
	Change       uint32          `json:"change"`
	Row          uint32          `json:"row"`
	Origin       string          `json:"origin"`
	Schema       string          `json:"schema"`
	Table        string          `json:"table"`
	Key          string          `json:"key"`
	Action       string          `json:"action"`
	Kind         string          `json:"kind"`
	Before       json.RawMessage `json:"before"`
	Target       json.RawMessage `json:"target"`
	After        json.RawMessage `json:"after"`
	Policy       string          `json:"policy"`
	Decision     string          `json:"decision"`
	SourceCommit string          `json:"sourceCommitTime,omitempty"`
	DetectedAt   string          `json:"detectedAt"`
}

// image is a row image for JSON: the object, or null for none.
func image(s string) json.RawMessage {
	if s == "" || !json.Valid([]byte(s)) {
		return json.RawMessage("null")
	}
	return json.RawMessage(s)
}

// stamp formats a time in microseconds since the epoch, "" for none.
func stamp(us int64) string {
	if us == 0 {
		return ""
	}
	return time.UnixMicro(us).UTC().Format("2006-01-02 15:04:05.000000 UTC")
}

func (c *command) conflicts() (func(*flag.FlagSet), func(context.Context) error) {
	var limit int
	var asJSON bool
	return func(fs *flag.FlagSet) {
			fs.IntVar(&limit, "limit", 20, "how many conflicts, the latest first")
			fs.BoolVar(&asJSON, "json", false, "print JSON")
		}, func(ctx context.Context) error {
			if limit < 1 || limit > maxConflicts {
				return fmt.Errorf("-limit takes a number of conflicts from 1 to %d, not %d", maxConflicts, limit)
			}
			svc, err := c.pickService(ctx)
			if err != nil {
				return err
			}
			r, err := c.client.Conflicts(ctx, &replicatorpb.ConflictsRequest{Service: svc, Limit: uint32(limit)})
			if err != nil {
				return err
			}
			if asJSON {
				out := []conflictJSON{}
				for _, cf := range r.GetConflicts() {
					out = append(out, conflictJSON{ID: cf.GetId(), Seqno: cf.GetSeqno(), Fragno: cf.GetFragno(), Change: cf.GetChange(), Row: cf.GetRow(),
						Origin: cf.GetOrigin(), Schema: cf.GetSchema(), Table: cf.GetTable(), Key: cf.GetKey(), Action: cf.GetAction(), Kind: cf.GetKind(),
						Before: image(cf.GetBefore()), Target: image(cf.GetTarget()), After: image(cf.GetAfter()),
						Policy: cf.GetPolicy(), Decision: cf.GetDecision(), SourceCommit: stamp(cf.GetSourceCommitTimeUs()), DetectedAt: stamp(cf.GetDetectedAtUs())})
				}
				enc := json.NewEncoder(c.env.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			fmt.Fprintln(c.env.Out, "Processing conflicts command...")
			for _, cf := range r.GetConflicts() {
				fmt.Fprintf(c.env.Out, "#%d seqno %d (fragment %d, change %d, row %d) from %s: %s %s.%s %s: %s; %s (%s) %s\n",
					cf.GetId(), cf.GetSeqno(), cf.GetFragno(), cf.GetChange(), cf.GetRow(), cf.GetOrigin(), cf.GetAction(), cf.GetSchema(), cf.GetTable(),
					cf.GetKey(), cf.GetKind(), cf.GetDecision(), cf.GetPolicy(), stamp(cf.GetDetectedAtUs()))
				for _, img := range []struct{ name, v string }{{"before", cf.GetBefore()}, {"target", cf.GetTarget()}, {"after", cf.GetAfter()}} {
					if img.v != "" {
						fmt.Fprintf(c.env.Out, "    %-6s: %s\n", img.name, img.v)
					}
				}
			}
			fmt.Fprintf(c.env.Out, "Finished conflicts command: %d of service %s, the latest first\n", len(r.GetConflicts()), svc)
			return nil
		}
}
