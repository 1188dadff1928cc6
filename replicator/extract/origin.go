package extract

import "github.com/carbidedb/carbide/replicator/origin"

// OriginComment is origin.Comment: the comment an applier puts before a
// statement (DDL) it applies for service.
func OriginComment(service string) string { return origin.Comment(service) }

// Origin is origin.Parse.
func Origin(sql string) (service string, ok bool) { return origin.Parse(sql) }

// OriginThreadID is origin.ThreadID.
const OriginThreadID = origin.ThreadID
