package replstate

import (
	"strings"

	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// The guide's texts of the states.
const (
	Online       = "ONLINE"
	Offline      = "OFFLINE:NORMAL"
	Error        = "OFFLINE:ERROR"
	GoingOnline  = "GOING-ONLINE:SYNCHRONIZING"
	GoingOffline = "GOING-OFFLINE"
)

var texts = map[replicatorpb.ReplicatorState]string{
	replicatorpb.ReplicatorState_REPLICATOR_STATE_ONLINE:         Online,
	replicatorpb.ReplicatorState_REPLICATOR_STATE_OFFLINE_NORMAL: Offline,
	replicatorpb.ReplicatorState_REPLICATOR_STATE_OFFLINE_ERROR:  Error,
	replicatorpb.ReplicatorState_REPLICATOR_STATE_GOING_ONLINE:   GoingOnline,
	replicatorpb.ReplicatorState_REPLICATOR_STATE_GOING_OFFLINE:  GoingOffline,
}

// Text is k as trepctl shows it ("" for unspecified).
func Text(k replicatorpb.ReplicatorState) string { return texts[k] }

// Of is the state whose text begins text (trepctl's state, possibly
// followed by more, as in "OFFLINE:ERROR: the error"); unspecified for
// "" or a text of no state. Only where a state arrives as text (an
// operator's input, a script's) is it read this way.
func Of(text string) replicatorpb.ReplicatorState {
	best, n := replicatorpb.ReplicatorState_REPLICATOR_STATE_UNSPECIFIED, 0
	for k, t := range texts {
		if strings.HasPrefix(text, t) && len(t) > n && (len(text) == len(t) || text[len(t)] == ':' || text[len(t)] == ' ') {
			best, n = k, len(t)
		}
	}
	return best
}

// Healthy reports whether a service in state k moves or is about to:
// ONLINE, or GOING-ONLINE.
func Healthy(k replicatorpb.ReplicatorState) bool {
	return k == replicatorpb.ReplicatorState_REPLICATOR_STATE_ONLINE || k == replicatorpb.ReplicatorState_REPLICATOR_STATE_GOING_ONLINE
}
