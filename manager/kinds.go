package manager

import (
	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

// The typed forms, on the wire, of the policy's states: the status
// carries both, the text for people and the kind for programs.

func datasourceKind(state string) managerpb.DatasourceState {
	switch state {
	case policy.Online:
		return managerpb.DatasourceState_DATASOURCE_STATE_ONLINE
	case policy.Offline:
		return managerpb.DatasourceState_DATASOURCE_STATE_OFFLINE
	case policy.Shunned:
		return managerpb.DatasourceState_DATASOURCE_STATE_SHUNNED
	case policy.Failed:
		return managerpb.DatasourceState_DATASOURCE_STATE_FAILED
	}
	return managerpb.DatasourceState_DATASOURCE_STATE_UNSPECIFIED
}

func dataserverKind(db string) managerpb.DataserverState {
	switch db {
	case policy.DBUp:
		return managerpb.DataserverState_DATASERVER_STATE_ONLINE
	case policy.DBDown:
		return managerpb.DataserverState_DATASERVER_STATE_STOPPED
	}
	return managerpb.DataserverState_DATASERVER_STATE_UNKNOWN
}

// routerKind is the kind of a connector state the site's state holds
// (ONLINE, or OFFLINE by an operator).
func routerKind(state string) managerpb.ConnectorState {
	switch state {
	case policy.Online:
		return managerpb.ConnectorState_CONNECTOR_STATE_ONLINE
	case policy.Offline:
		return managerpb.ConnectorState_CONNECTOR_STATE_OFFLINE
	}
	return managerpb.ConnectorState_CONNECTOR_STATE_UNSPECIFIED
}
