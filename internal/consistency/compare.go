package consistency

import (
	"fmt"
	"slices"
	"strings"
)

// Verdict is what a comparison of one host's chunk with the reference
// found.
type Verdict int

const (
	// Equal: the same rows.
	Equal Verdict = iota
	// Different: other rows, and the two hosts held the same
	// transactions of the chunk: a real difference.
	Different
	// Changing: other rows, and transactions one host held and the other
	// not may have changed the chunk: check it again.
	Changing
)

func (v Verdict) String() string {
	return [...]string{"equal", "different", "changing"}[v]
}

// Unknown is a vector's seqno for a stream whose place in a snapshot is
// not known (its master could not locate the snapshot's binlog position).
const Unknown = -2

// Touched says whether a transaction of service svc after seqno from, up
// to and including seqno to, may have changed the chunk being compared.
type Touched func(svc string, from, to int64) (bool, error)

// Compare judges host result r against ref (the master's): equal rows are
// Equal; otherwise Different when, for every stream where the two
// snapshots stood at different seqnos, none of the transactions between
// them touched the chunk, else Changing. why says it for people.
func Compare(ref, r *Result, touched Touched) (v Verdict, why string) {
	if r.Err != "" {
		return Different, "the checksum failed there: " + r.Err
	}
	if r.Count == ref.Count && r.CRC == ref.CRC {
		return Equal, ""
	}
	diff := fmt.Sprintf("%d rows, checksum %s; %s has %d rows, checksum %s", r.Count, r.CRC, ref.Host, ref.Count, ref.CRC)
	for _, g := range Gaps(ref, r) {
		svc, a, b := g.Service, g.Ref, g.Other
		if a == Unknown || b == Unknown {
			return Changing, fmt.Sprintf("%s (where %s stood is unknown)", diff, svc)
		}
		t, err := touched(svc, min(a, b), max(a, b))
		switch {
		case err != nil:
			return Changing, fmt.Sprintf("%s (%s at seqno %d there, %d on %s, and which rows its transactions between changed is unknown: %v)", diff, svc, b, a, ref.Host, err)
		case t:
			return Changing, fmt.Sprintf("%s (%s at seqno %d there, %d on %s, and a transaction between changed the chunk)", diff, svc, b, a, ref.Host)
		}
	}
	return Different, diff
}

// Gap is a stream whose seqno differed between two snapshots: Ref's in
// the reference, Other's in the other.
type Gap struct {
	Service    string
	Ref, Other int64
}

// Gaps lists the streams where r's snapshot and ref's stood apart, by
// service name; a stream one of them lacks stood at -1 there.
func Gaps(ref, r *Result) []Gap {
	var out []Gap
	seen := map[string]bool{}
	for _, m := range []map[string]int64{ref.Tracking, r.Tracking} {
		for svc := range m {
			if seen[svc] {
				continue
			}
			seen[svc] = true
			if a, b := seqnoOf(ref.Tracking, svc), seqnoOf(r.Tracking, svc); a != b {
				out = append(out, Gap{svc, a, b})
			}
		}
	}
	slices.SortFunc(out, func(x, y Gap) int { return strings.Compare(x.Service, y.Service) })
	return out
}

func seqnoOf(m map[string]int64, svc string) int64 {
	if v, ok := m[svc]; ok {
		return v
	}
	return -1
}
