package clustercheck

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/carbidedb/carbide/internal/consistency"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// Verdict is what the check found of one host's chunk.
type Verdict int

// The verdicts: consistency's three, and Missing for a host that computed
// nothing for the chunk.
const (
	Equal     = Verdict(consistency.Equal)
	Different = Verdict(consistency.Different)
	Changing  = Verdict(consistency.Changing)
	Missing   = Changing + 1
)

func (v Verdict) String() string {
	if v == Missing {
		return "missing"
	}
	return consistency.Verdict(v).String()
}

// Finding is one host's verdict on one chunk.
type Finding struct {
	Verdict Verdict
	Why     string
	Count   int64
	Rows    string // the rows that differ, where listed
}

// Report is a check's outcome.
type Report struct {
	Service string
	Master  string
	Hosts   []string // compared with the master
	Tables  []TableReport

	verdicts map[uint32]map[string]*Finding
	rows     map[uint32]int64
	// unresolved: the rows of a chunk checked row by row that differed
	// from the master's on a host in every try so far, each changed
	// between the snapshots.
	unresolved map[uint32]map[string]map[string]bool
}

// TableReport is one table's outcome.
type TableReport struct {
	Table    string `json:"table"`
	Chunks   int    `json:"chunks"`
	Rows     int64  `json:"rows"`
	Equal    bool   `json:"equal"`
	Findings []Row  `json:"findings,omitempty"`
}

// Row is a chunk a host does not hold as the master does (or could not be
// compared).
type Row struct {
	Host    string `json:"host"`
	Chunk   uint32 `json:"chunk"`
	Range   string `json:"range"`
	Verdict string `json:"verdict"`
	Why     string `json:"why"`
}

func (r *Report) record(ch *replicatorpb.CheckChunk, host string, f *Finding) {
	if r.verdicts[ch.GetChunk()] == nil {
		r.verdicts[ch.GetChunk()] = map[string]*Finding{}
	}
	if old := r.verdicts[ch.GetChunk()][host]; old != nil && (old.Verdict == Equal || old.Verdict == Different) {
		if old.Verdict == Different && f.Verdict == Different && f.Rows != "" && old.Rows == "" {
			r.verdicts[ch.GetChunk()][host] = f // the rows that differ, named
		}
		return // final: a chunk checked again for another host
	}
	r.verdicts[ch.GetChunk()][host] = f
}

// recordRows records a row-by-row comparison: rows that differed on
// every try so far stay unresolved; none left is Equal (each row was
// equal in some try).
func (r *Report) recordRows(ch *replicatorpb.CheckChunk, host string, f *Finding, unresolved map[string]bool) {
	if f.Verdict == Changing {
		if r.unresolved == nil {
			r.unresolved = map[uint32]map[string]map[string]bool{}
		}
		if r.unresolved[ch.GetChunk()] == nil {
			r.unresolved[ch.GetChunk()] = map[string]map[string]bool{}
		}
		if prev, ok := r.unresolved[ch.GetChunk()][host]; ok {
			for k := range unresolved {
				if !prev[k] {
					delete(unresolved, k) // equal in an earlier try
				}
			}
		}
		r.unresolved[ch.GetChunk()][host] = unresolved
		if len(unresolved) == 0 {
			f = &Finding{Verdict: Equal, Count: f.Count}
		}
	}
	r.record(ch, host, f)
}

// different returns the chunks some host holds differently, and whose
// rows are not named yet.
func (r *Report) different(chunks []*replicatorpb.CheckChunk) []*replicatorpb.CheckChunk {
	var out []*replicatorpb.CheckChunk
	for _, ch := range chunks {
		for _, f := range r.verdicts[ch.GetChunk()] {
			if f.Verdict == Different && f.Rows == "" {
				out = append(out, ch)
				break
			}
		}
	}
	return out
}

// changing returns the chunks some host could not be compared on because
// they changed between snapshots.
func (r *Report) changing(chunks []*replicatorpb.CheckChunk) []*replicatorpb.CheckChunk {
	var out []*replicatorpb.CheckChunk
	for _, ch := range chunks {
		for _, f := range r.verdicts[ch.GetChunk()] {
			if f.Verdict == Changing {
				out = append(out, ch)
				break
			}
		}
	}
	return out
}

// finish builds the per-table report.
func (r *Report) finish(chunks []*replicatorpb.CheckChunk) {
	byTable := map[string]*TableReport{}
	var order []string
	for _, ch := range chunks {
		name := ch.GetSchema() + "." + ch.GetTable()
		t := byTable[name]
		if t == nil {
			t = &TableReport{Table: name, Equal: true}
			byTable[name] = t
			order = append(order, name)
		}
		t.Chunks++
		t.Rows += r.rows[ch.GetChunk()]
		c := consistency.ChunkFromProto(ch)
		hosts := make([]string, 0, len(r.verdicts[ch.GetChunk()]))
		for h := range r.verdicts[ch.GetChunk()] {
			hosts = append(hosts, h)
		}
		sort.Strings(hosts)
		for _, h := range hosts {
			f := r.verdicts[ch.GetChunk()][h]
			if f.Verdict == Equal {
				continue
			}
			t.Equal = false
			why := f.Why
			if f.Verdict == Changing {
				why += "; it changed between the snapshots on every try: not verified"
			}
			t.Findings = append(t.Findings, Row{Host: h, Chunk: ch.GetChunk(), Range: c.Range(), Verdict: f.Verdict.String(), Why: why})
		}
	}
	for _, name := range order {
		r.Tables = append(r.Tables, *byTable[name])
	}
}

// Equal says whether every host held every chunk as the master did.
func (r *Report) Equal() bool {
	for _, t := range r.Tables {
		if !t.Equal {
			return false
		}
	}
	return true
}

// WriteText writes the report for people: a line per table, a line per
// finding under it, and a last line with the outcome.
func (r *Report) WriteText(w io.Writer) {
	hosts := append([]string{r.Master}, r.Hosts...)
	fmt.Fprintf(w, "check through %s (master %s) of %s\n", r.Service, r.Master, strings.Join(hosts, ", "))
	bad := 0
	for _, t := range r.Tables {
		if t.Equal {
			fmt.Fprintf(w, "%s: equal on every host (%d rows, %d chunks)\n", t.Table, t.Rows, t.Chunks)
			continue
		}
		bad++
		fmt.Fprintf(w, "%s: DIFFERENT (%d rows, %d chunks)\n", t.Table, t.Rows, t.Chunks)
		for _, f := range t.Findings {
			fmt.Fprintf(w, "  %s chunk %d (%s): %s: %s\n", f.Host, f.Chunk, f.Range, f.Verdict, f.Why)
		}
	}
	switch {
	case len(r.Tables) == 0:
		fmt.Fprintln(w, "no table to check")
	case bad == 0:
		fmt.Fprintf(w, "every table equal on every host (%d tables)\n", len(r.Tables))
	default:
		fmt.Fprintf(w, "%d of %d tables differ or could not be verified\n", bad, len(r.Tables))
	}
}

// WriteJSON writes the report as one JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	tables := r.Tables
	if tables == nil {
		tables = []TableReport{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Service string        `json:"service"`
		Master  string        `json:"master"`
		Hosts   []string      `json:"hosts"`
		Equal   bool          `json:"equal"`
		Tables  []TableReport `json:"tables"`
	}{r.Service, r.Master, append([]string{r.Master}, r.Hosts...), r.Equal(), tables})
}
