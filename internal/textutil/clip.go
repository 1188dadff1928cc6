package textutil

import "unicode/utf8"

// Clip cuts s to at most n bytes, at a character boundary, and marks the
// cut with an ellipsis.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}
