// Package position is the source position of a transaction in a binary
// log, as THL events carry it in event_id. It is a leaf: it imports nothing
// of ours, so every part of the replicator may use it.
package position
