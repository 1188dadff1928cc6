package extract

import (
	"context"
	"strings"
	"time"
)

// SessionEngine is the Statement.Session key of the storage engine a
// CREATE TABLE without ENGINE made its table with on the source.
const SessionEngine = "default_storage_engine"

// createdTable returns the table a CREATE TABLE statement creates when it
// names no engine and copies none (LIKE): the table takes the session's
// default_storage_engine, which the binlog does not carry. schema is ""
// when the statement does not name one.
func createdTable(sql string) (schema, table string, ok bool) {
	toks := sqlTokens(sql)
	i := 0
	next := func(words ...string) bool {
		for _, w := range words {
			if i < len(toks) && toks[i].word(w) {
				i++
				return true
			}
		}
		return false
	}
	if !next("CREATE") {
		return "", "", false
	}
	if next("OR") && !next("REPLACE") {
		return "", "", false
	}
	if next("TEMPORARY") || !next("TABLE") {
		return "", "", false
	}
	if next("IF") && !(next("NOT") && next("EXISTS")) {
		return "", "", false
	}
	if i >= len(toks) || toks[i].kind != tokWord {
		return "", "", false
	}
	table = identName(toks[i].text)
	i++
	if i+1 < len(toks) && toks[i].punct(".") && toks[i+1].kind == tokWord {
		schema, table = table, identName(toks[i+1].text)
		i += 2
	}
	for _, t := range toks[i:] {
		if t.word("ENGINE") || t.word("TYPE") || t.word("LIKE") {
			return "", "", false
		}
	}
	return schema, table, table != ""
}

// identName is a word token as a name: a backquoted identifier unquoted.
func identName(w string) string {
	if len(w) >= 2 && w[0] == '`' && w[len(w)-1] == '`' {
		return strings.ReplaceAll(w[1:len(w)-1], "``", "`")
	}
	return w
}

// engineOf returns the engine of table on the source now ("" when it is
// gone or the source does not answer in time): what a CREATE TABLE
// without ENGINE made it with, unless an ALTER changed it since, which
// replicates after the CREATE and ends in the same engine.
func (x *Extractor) engineOf(schema, table string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var engine string
	if err := x.db.QueryRowContext(ctx, "SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", schema, table).Scan(&engine); err != nil {
		return ""
	}
	if !safeEngineName(engine) {
		return ""
	}
	return engine
}

func safeEngineName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}
