package cctrl

import (
	"fmt"

	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// MMHost is what one host's cross-site replicator told, for ls in mm mode.
type MMHost struct {
	Host string
	Addr string // its control address
	// Problem says why it gave no answer ("" when it answered).
	Problem  string
	Services []MMService
}

// MMService is one cross-site service of a host.
type MMService struct {
	Status *replicatorpb.ServiceStatus
	// Source is the origin host it reads from (from masterConnectUri).
	Source string
	// OriginPrimary is the origin site's primary ("" when unknown).
	OriginPrimary string
}

// MMLines draws a box per host of site with each cross-site service it
// runs:
//
//	CROSS-SITE REPLICATORS OF west:
//	+---------------------------------------------------------------------------------+
//	|west1(cross-site replicator, services=1)                                         |
//	+---------------------------------------------------------------------------------+
//	| east(slave:ONLINE, appliedLastSeqno=5, appliedLatency=0.422)                    |
//	|   source=east2 (thl://east2:2113/), east primary=east1                          |
//	|   CONFLICTS(recorded=3): mm_trepctl -service east conflicts                     |
//	+---------------------------------------------------------------------------------+
//
// The CONFLICTS line is there only for a service that has recorded
// conflicts.
func MMLines(site string, hosts []MMHost) []string {
	out := []string{"", fmt.Sprintf("CROSS-SITE REPLICATORS OF %s:", site)}
	for _, h := range hosts {
		if h.Problem != "" {
			out = append(out, box([]string{h.Host + "(cross-site replicator: NOT RUNNING)"}, []string{" " + h.Problem})...)
			continue
		}
		var body []string
		for _, sv := range h.Services {
			st := sv.Status
			body = append(body, fmt.Sprintf(" %s(%s:%s, appliedLastSeqno=%d, appliedLatency=%.3f)",
				st.GetService(), orUnknown(st.GetRole()), orUnknown(st.GetState()), st.GetAppliedLastSeqno(), st.GetAppliedLatency()))
			src := "none"
			if uri := st.GetMasterConnectUri(); uri != "" {
				src = fmt.Sprintf("%s (%s)", orUnknown(sv.Source), uri)
			}
			body = append(body, fmt.Sprintf("   source=%s, %s primary=%s", src, st.GetService(), orUnknown(sv.OriginPrimary)))
			if n := st.GetConflicts(); n > 0 {
				body = append(body, fmt.Sprintf("   CONFLICTS(recorded=%d): mm_trepctl -service %s conflicts", n, st.GetService()))
			}
			if e := st.GetPendingError(); e != "" || st.GetPendingExceptionMessage() != "" {
				if e == "" {
					e = st.GetPendingExceptionMessage()
				}
				body = append(body, fmt.Sprintf("   ERROR(seqno=%d): %s", st.GetPendingErrorSeqno(), e))
			}
		}
		if len(body) == 0 {
			body = []string{" no cross-site service"}
		}
		out = append(out, box([]string{fmt.Sprintf("%s(cross-site replicator, services=%d)", h.Host, len(h.Services))}, body)...)
	}
	return out
}
