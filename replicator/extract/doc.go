// Package extract is the master role's extractor: it reads the local
// database's binary log as a replication client (go-mysql's BinlogSyncer)
// and turns each committed transaction into THL events (thlpb.Event
// fragments) for the THL store.
//
// Invariants:
//   - Row format only. Check refuses a server whose binlog_format is not ROW,
//     whose binlog is off, or whose binlog_row_image is not FULL.
//   - A transaction is sent only once its end (XID, COMMIT, XA COMMIT, or
//     the DDL statement itself) has been read, in binlog order: in one send
//     call, or, when it outgrew Config.SpillBytes and waited in a spill file
//     (spill.go), in several consecutive ones, the last ending with the
//     LastFrag fragment. Every fragment carries the event_id of the end of
//     the transaction, so Run(from = that event_id) resumes exactly at the
//     next transaction, across binlog rotation.
//   - Values are exact (see values.go for the mapping of each MySQL type).
//     TIMESTAMP values are rendered in UTC: the applier must run with
//     time_zone '+00:00'.
//   - Loop prevention: transactions that write a tracking schema
//     (Config.LoopSchemaPrefix + service, "tungsten_east") were applied by a
//     replicator and are dropped, except a heartbeat row written into this
//     service's own heartbeat table and a consistency check's marker
//     written into its consistency table; statements that start with
//     OriginComment, or that ran with pseudo_thread_id = OriginThreadID
//     (for statements the server rewrites, losing the comment), are
//     dropped too, and so is a group whose BEGIN or COMMIT ran with that
//     thread id (non-transactional rows an applier wrote). A transaction
//     that is dropped never stops the extractor: a row change it cannot
//     decode fails the transaction only at its end, if it is kept.
//   - With binlog_row_metadata=FULL nothing is read from the live schema.
//   - Only the transaction's end is trusted: incomplete transactions (cut
//     by a crash, rolled back) are discarded; SAVEPOINT statements are left
//     out. An XA transaction is sent at its XA COMMIT (dropped at XA
//     ROLLBACK); events sent while XA transactions are prepared carry
//     prepared_from, where RunFrom reads again to rebuild them (xa.go).
//   - Account statements are stored without plaintext passwords: the
//     password's hash instead, which sets the same password (passwords.go).
//   - Seqno and epoch are not assigned here: the caller (the THL store)
//     numbers what it stores.
//
// It is the only package that imports go-mysql; it imports
// replicator/position and rpc/gen/thlpb of ours, the MySQL driver for
// its few SQL queries, and filippo.io/edwards25519 for ed25519 password
// hashes.
package extract
