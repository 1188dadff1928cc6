package service

import "github.com/carbidedb/carbide/rpc/replstate"

// States as trepctl shows them (their typed form in the status is
// replstate's).
const (
	StateOnline       = replstate.Online
	StateOffline      = replstate.Offline
	StateError        = replstate.Error
	StateGoingOnline  = replstate.GoingOnline
	StateGoingOffline = replstate.GoingOffline
	RoleMaster        = "master"
	RoleSlave         = "slave"
)
