// Package replicator is the replication agent: binlog extractor, THL store
// and server/client, and the exactly-once SQL applier, organised as
// pipelines of bounded stages per service.
//
// It may import rpc and internal packages only.
package replicator
