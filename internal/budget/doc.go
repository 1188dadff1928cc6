// Package budget bounds the bytes held between two goroutines of a
// pipeline: a queue bounded in items alone bounds nothing when one item
// can be a row of a gigabyte.
//
// It imports nothing of Carbide.
package budget
