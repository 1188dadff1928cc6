// Package textutil holds small helpers for the text programs print: the
// lines of a tool's output, for an error message of one sentence.
//
// It imports nothing of Carbide.
package textutil
