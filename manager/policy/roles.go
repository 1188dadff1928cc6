package policy

// Replicator roles.
const (
	RoleMaster = "master"
	RoleSlave  = "slave"
)
