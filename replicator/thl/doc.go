// Package thl is the transaction history log (THL) store of one replication
// service: an append-only, segmented log of thlpb.Event records in one
// directory (<install>/thl/<service>/, see DirFor).
//
// # Files
//
//	thl.data.NNNNNNNNNN   segments, numbered from 1 without gaps
//	thl.index.NNNNNNNNNN  the sparse seqno index of a sealed segment
//	thl.lock              flocked by the one process that writes the store
//
// A segment starts with a 24-byte header (magic "CTHL", format version,
// the seqno of its first transaction, a reserved word and a CRC32C of the
// header). Records follow back to back: a 4-byte little-endian payload
// length, the 4-byte CRC32C (Castagnoli) of the payload, and the payload,
// the proto-marshalled event. A payload is never empty and never longer
// than MaxRecordSize.
//
// # Invariants
//
//   - seqnos are dense and increasing across records and segments; a
//     fragmented transaction is one seqno with fragno 0..k, last_frag on
//     fragment k, and all its fragments are in one segment: a segment is
//     rotated only before a record with fragno 0.
//   - every segment but the last is sealed: it ends at a transaction
//     boundary, and its index file (written when it was sealed) holds its
//     size, first/last seqno, the epoch, event id and commit time of its
//     last event, and one (seqno, fragno, offset) entry per IndexInterval
//     of data. A missing or damaged index is rebuilt by scanning its
//     segment. The last (active) segment is scanned on open.
//   - on open, a torn tail of the last segment (a record cut short, zeros,
//     or a final run of records that fail their CRC with no valid record
//     after them) is truncated away and reported, as is an incomplete
//     transaction at its end (its source sends it again). Any other damage
//     is an error wrapping ErrCorrupt that names the file and the offset;
//     no reader returns anything at or past it.
//   - readers see only records whose write has completed (the published
//     end of the active segment); Append publishes without fsync, so a
//     reader may see an event that a machine crash then loses. Sync makes
//     what was appended durable.
//
// # Concurrency
//
// A Store serves one appender (Append, Sync, Truncate, Purge, Reset are
// serialised) and any number of Readers. It starts no goroutine: a tailing
// Reader waits in its caller's goroutine for a broadcast from Append, its
// context, Reader.Close or Store.Close. A store opened ReadOnly takes no
// lock, writes nothing and is a snapshot: its readers end with io.EOF.
//
// The package imports rpc/gen/thlpb, protobuf and the standard library.
package thl
