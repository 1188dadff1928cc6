// Package consistency is the consistency check (trepctl check, cctrl's cluster
// check): it cuts tables into chunks by key range, builds the checksum
// query every host runs for a chunk, computes a chunk's checksum on a
// database in one consistent snapshot together with where each stream
// stood in it, keeps the results a replicator computed, and compares them.
//
// How hosts compare one moment without stopping writes: the master of a
// service writes a marker row (tungsten_<service>.consistency) holding the
// chunk's query; it travels through the THL like any transaction, and each
// host that applies it commits everything before it, runs the query in a
// consistent snapshot and records, from the same snapshot, the seqno of
// every stream applied there (the vector). Two hosts whose vectors are
// equal hold the same transactions and must hold the same chunk; where
// they differ, the transactions between them are read from the THL
// (Touches): if none touched the chunk, a different checksum is a real
// difference, else the chunk is checked again with a new marker.
//
// The replicator computes checks with it and the shell's cluster check
// compares them (shell/clustercheck), so it lives under internal. It
// imports rpc/gen/thlpb, rpc/gen/replicatorpb, database/sql and the MySQL
// driver (for its error numbers): no replicator, manager or shell package.
package consistency
