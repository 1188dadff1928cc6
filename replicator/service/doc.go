// Package service is one replication service: its role (master or slave),
// its state as operators know it (ONLINE, OFFLINE:NORMAL, OFFLINE:ERROR,
// GOING-ONLINE:SYNCHRONIZING, GOING-OFFLINE) and the pipeline that runs
// while it is online:
//
//	master: binlog extractor → THL store (served to replicas by the THL server)
//	slave:  THL client → THL store → SQL applier → database
//
// The THL store stays open while the service exists, so a replica serves
// its THL too (cross-site replicators read replicas first). Online starts
// the pipeline's goroutines under one context; Offline cancels it and
// waits for them. A failure puts the service OFFLINE:ERROR with the
// failing seqno and message.
//
// The service reaches its stages through interfaces it declares
// (stages.go: Extractor, THLClient, Applier), made by Config.Stages: the
// real extract, stream and apply types by default, fakes in unit tests.
//
// Files by concern: config.go (the configuration), lifecycle.go (the
// state machine: online, offline, the end of a run), master.go and
// slave.go (the two pipelines), rolefile.go (the role kept across
// restarts), reset.go, status.go, and service.go (opening the THL store,
// the applier and the database).
//
// It imports the replicator's own packages (thl, extract, apply, stream)
// and rpc.
package service
