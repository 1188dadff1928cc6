package origin

import "strings"

// ThreadID is the pseudo_thread_id the applier's session runs with; the
// extractor drops statements logged with it.
const ThreadID uint32 = 0xCA7B1DE0

const prefix = "/*carbide origin="

// Comment is the comment put before a statement applied for service:
// "/*carbide origin=east*/ ".
func Comment(service string) string { return prefix + service + "*/ " }

// Parse returns the service named by a leading Comment of sql.
func Parse(sql string) (service string, ok bool) {
	s := strings.TrimLeft(sql, " \t\r\n")
	if !strings.HasPrefix(s, prefix) {
		return "", false
	}
	s = s[len(prefix):]
	end := strings.Index(s, "*/")
	if end < 0 {
		return "", false
	}
	return strings.TrimSpace(s[:end]), true
}
