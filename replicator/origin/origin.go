// Package origin is how a replicator marks what it applies, so that the
// extractor of the same database never extracts it again (loop
// prevention): row changes carry the write to the tracking schema
// tungsten_<service>; statements (DDL) carry a leading comment naming the
// service and run with a pseudo thread id of our own, because MariaDB
// rewrites some DDL (DROP TABLE, CREATE VIEW) before logging it and the
// comment is lost. It is a leaf: it imports only the standard library.
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
