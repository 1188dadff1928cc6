package replstate

import (
	"testing"

	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

func TestTextAndOf(t *testing.T) {
	for k := range replicatorpb.ReplicatorState_name {
		k := replicatorpb.ReplicatorState(k)
		if got := Of(Text(k)); got != k {
			t.Errorf("Of(Text(%v)) = %v", k, got)
		}
	}
	for text, want := range map[string]replicatorpb.ReplicatorState{
		"OFFLINE:ERROR: apply failed at seqno 7": replicatorpb.ReplicatorState_REPLICATOR_STATE_OFFLINE_ERROR,
		"GOING-ONLINE:SYNCHRONIZING":             replicatorpb.ReplicatorState_REPLICATOR_STATE_GOING_ONLINE,
		"ONLINEX":                                replicatorpb.ReplicatorState_REPLICATOR_STATE_UNSPECIFIED,
		"online":                                 replicatorpb.ReplicatorState_REPLICATOR_STATE_UNSPECIFIED,
		"":                                       replicatorpb.ReplicatorState_REPLICATOR_STATE_UNSPECIFIED,
	} {
		if got := Of(text); got != want {
			t.Errorf("Of(%q) = %v, want %v", text, got, want)
		}
	}
}
