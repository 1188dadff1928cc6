// Package raftstore is the manager's durable storage for hashicorp/raft: a
// Store implements both raft.LogStore and raft.StableStore over a few small
// files in one directory. The replicated state is tiny (a few hundred log
// entries between snapshots), so everything is held in memory and every
// mutating call is durable on disk before it returns.
//
// # Files
//
//	raft.log   the log: an append-only sequence of records
//	stable     the stable store (current term, vote): one record
//	LOCK       flocked by the one process that has the store open
//	*.tmp      a compaction or stable write in progress; removed on open
//
// A record is a 4-byte little-endian payload length, the 4-byte CRC32C
// (Castagnoli) of the payload, and the payload. A payload is never empty; its
// first byte is its kind: a batch of log entries (one StoreLogs call, so a
// batch survives a crash whole or not at all), a deleted index range, or
// (only in the stable file) the stable key/value maps. See codec.go.
//
// # Invariants
//
//   - Replaying raft.log in order rebuilds the in-memory log exactly; the
//     in-memory state changes only after its record is written and fsynced.
//   - On open, a torn tail of raft.log (a record cut short, zeros, or a bad
//     record with no valid record anywhere after it) is truncated away. Any
//     other damage is a *CorruptError naming the file and byte offset.
//   - The stable file and compacted logs are replaced whole: temporary file,
//     fsync, rename, fsync of the directory.
//   - When raft.log is larger than 4 MiB and less than half of it is live,
//     DeleteRange rewrites it with only the live entries.
//   - After an fsync fails, the Store refuses further writes (ErrFailed): the
//     kernel may have dropped the dirty pages, so only a reopen can tell what
//     is on disk.
//
// Missing keys behave as in raft.InmemStore, which raft's startup code
// expects: Get returns ErrKeyNotFound (whose text is exactly "not found"),
// GetUint64 returns 0 and no error, and Set and SetUint64 keep separate key
// spaces.
//
// The package imports hashicorp/raft and the standard library.
package raftstore
