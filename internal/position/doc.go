// Package position is the source position of a transaction in a binary
// log, as THL events carry it in event_id: the one place an event id is
// written and read (the replicator, the manager's orphan check, tprovision).
// It is a leaf: it imports nothing of ours, so every package may use it.
package position
