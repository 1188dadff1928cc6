package manager

import (
	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

// The typed forms, on the wire, of the policy's states and transition
// kinds: the status carries both, the text for people and the kind for
// programs. A text not in a table maps to the enum's zero (unspecified,
// unknown, none).
var (
	datasourceKinds = map[string]managerpb.DatasourceState{
		policy.Online:  managerpb.DatasourceState_DATASOURCE_STATE_ONLINE,
		policy.Offline: managerpb.DatasourceState_DATASOURCE_STATE_OFFLINE,
		policy.Shunned: managerpb.DatasourceState_DATASOURCE_STATE_SHUNNED,
		policy.Failed:  managerpb.DatasourceState_DATASOURCE_STATE_FAILED,
	}
	dataserverKinds = map[string]managerpb.DataserverState{
		policy.DBUp:   managerpb.DataserverState_DATASERVER_STATE_ONLINE,
		policy.DBDown: managerpb.DataserverState_DATASERVER_STATE_STOPPED,
	}
	// routerKinds: a connector's state as the site's state holds it
	// (ONLINE, or OFFLINE by an operator).
	routerKinds = map[string]managerpb.ConnectorState{
		policy.Online:  managerpb.ConnectorState_CONNECTOR_STATE_ONLINE,
		policy.Offline: managerpb.ConnectorState_CONNECTOR_STATE_OFFLINE,
	}
	transitionKinds = map[string]managerpb.TransitionKind{
		policy.Switch:   managerpb.TransitionKind_TRANSITION_KIND_SWITCH,
		policy.Failover: managerpb.TransitionKind_TRANSITION_KIND_FAILOVER,
	}
)
