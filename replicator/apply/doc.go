// Package apply is the replica side's SQL applier: it turns THL events
// back into SQL on the local database, exactly once.
//
// Row changes become primary-key statements (multi-row INSERTs, UPDATE and
// DELETE by key) built as literal SQL text, so a block of source
// transactions goes to the server as one multi-statement round trip:
// round trips, not disk flushes, are the cost of applying. Each block is
// one database transaction that also updates the service's tracking row,
// tungsten_<service>.trep_commit_seqno; that row is the restart point, so
// a crash at any moment loses or repeats nothing.
//
// The applier's transactions write the tracking schema, which is how the
// local extractor recognises them and never extracts them again (loop
// prevention); statements carry the origin comment and thread id for the
// same reason and run with a tracking write too. A transaction holding a
// statement and then rows (CREATE TABLE … SELECT) runs the statement on
// its own (it commits implicitly) and commits the rows with the tracking
// row; a statement after rows in its transaction (DML a session logged
// as a statement) runs inside the block's database transaction.
//
// Conflicts (conflict.go): before a block is sent, a locking read fetches
// the rows it changes first and compares them with the before-images
// (verify.go; some tables match them in the WHERE instead, match.go); an
// INSERT of a taken key fails. A block that meets a conflict is rolled
// back and its transactions applied again one at a time in conflict mode
// (conflictmode.go), each row read and compared by the server and resolved
// by the service's policy (stop, log, skip, converge); each decision is
// recorded in tungsten_<service>.conflicts with the tracking row
// (conflictlog.go).
//
// It imports rpc/gen/thlpb and the MySQL driver; nothing of go-mysql.
package apply
