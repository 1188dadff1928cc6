// Package health probes one host for its manager: its database (up,
// read-only, why not), its cluster replicator (role, state, seqnos,
// holds, conflicts), its cross-site replicator's services and its
// connector, each within a bounded time, into the policy.Facts the
// manager gossips. Same tells which changes are worth gossiping at once.
//
// It observes; it never writes to what it probes. It must not import the
// manager, membership, consensus or fencing: it reaches the database and
// the replicators through the interfaces it declares.
package health
