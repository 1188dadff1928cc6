// Package layers holds no code: its test checks the import rules the
// packages' doc.go files state (which package may import which), by
// reading `go list` of the module, so that a rule broken fails make test
// rather than waiting for a reader to notice.
//
// It imports nothing.
package layers
