package service

// States as trepctl shows them.
const (
	StateOnline       = "ONLINE"
	StateOffline      = "OFFLINE:NORMAL"
	StateError        = "OFFLINE:ERROR"
	StateGoingOnline  = "GOING-ONLINE:SYNCHRONIZING"
	StateGoingOffline = "GOING-OFFLINE"
	RoleMaster        = "master"
	RoleSlave         = "slave"
)
