package apply

import (
	"sort"
	"strconv"
	"strings"

	"github.com/carbidedb/carbide/replicator/origin"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// statement appends a statement with its default schema, the session
// its source ran it in, and the origin comment; the caller has made sure
// it runs outside a transaction (a DDL) or inside the block's (DML the
// source logged as a statement). The session: the source's timestamp
// (NOW(), a DEFAULT CURRENT_TIMESTAMP filled by ALTER), sql_mode,
// foreign key and unique checks, auto-increment step and offset, character
// sets and collations, time zone, and what the source logged for the
// statement alone (INSERT_ID, LAST_INSERT_ID, RAND seeds, user
// variables). Everything goes back to the applier's own afterwards.
func (b *builder) statement(st *thlpb.Statement) {
	b.flushBinlog()
	if s := st.GetSchema(); s != "" {
		b.buf = append(b.buf, "USE "...)
		b.buf = quoteIdent(b.buf, s)
		b.buf = append(b.buf, ';')
	}
	sess := st.GetSession()
	if ts := st.GetTimestamp(); ts > 0 {
		b.buf = append(b.buf, "SET TIMESTAMP="...)
		b.buf = strconv.AppendInt(b.buf, ts, 10)
		b.buf = append(b.buf, ';')
	}
	if m, ok := sess["sql_mode"]; ok && safeSessionValue(m) {
		b.buf = append(b.buf, "SET SESSION sql_mode='"...)
		b.buf = append(b.buf, m...)
		b.buf = append(b.buf, "';"...)
	}
	// Statements check foreign keys only where the source did and said
	// so; by default they run without (a DDL's order need not satisfy
	// them here).
	fk := "0"
	if sess["foreign_key_checks"] == "1" {
		fk = "1"
	}
	b.buf = append(b.buf, "SET SESSION foreign_key_checks="...)
	b.buf = append(b.buf, fk...)
	for _, k := range statementSession {
		v, ok := sess[k.name]
		if !ok || !k.valid(v) {
			continue
		}
		b.buf = append(b.buf, ',')
		b.buf = append(b.buf, k.set...)
		b.buf = append(b.buf, '=')
		if k.quote {
			b.buf = quoteString(b.buf, []byte(v))
		} else {
			b.buf = append(b.buf, v...)
		}
	}
	b.buf = append(b.buf, ';')
	var users []string
	for k := range sess {
		if strings.HasPrefix(k, "@") && isIdentName(k[1:]) {
			users = append(users, k)
		}
	}
	sort.Strings(users)
	for _, k := range users {
		b.buf = append(b.buf, "SET @"...)
		b.buf = quoteIdent(b.buf, k[1:])
		b.buf = append(b.buf, ":="...)
		b.buf = append(b.buf, sess[k]...)
		b.buf = append(b.buf, ';')
	}
	b.buf = append(b.buf, origin.Comment(b.service)...)
	b.buf = append(b.buf, strings.TrimRight(strings.TrimSpace(st.GetSql()), ";")...)
	b.buf = append(b.buf, ';')
	b.buf = append(b.buf, statementReset...)
}

// statementReset puts an applier session back after a statement. SET
// NAMES comes first: the statement may have left collation_connection at
// a character set such as utf32 in which the literals that follow
// ('+00:00', the sql_mode) mean something else.
const statementReset = "SET NAMES binary;SET TIMESTAMP=DEFAULT;SET SESSION sql_mode='" + sessionSQLMode + "',foreign_key_checks=1,unique_checks=1,sql_auto_is_null=0," +
	"auto_increment_increment=DEFAULT,auto_increment_offset=DEFAULT," +
	"time_zone='+00:00',lc_time_names=DEFAULT,collation_server=DEFAULT,default_storage_engine=DEFAULT;"

// sessionKey is a session variable a statement's source set, and how to
// set it here.
type sessionKey struct {
	name, set string
	quote     bool
	valid     func(string) bool
}

var statementSession = []sessionKey{
	{name: "unique_checks", set: "unique_checks", valid: isBoolVar},
	{name: "sql_auto_is_null", set: "sql_auto_is_null", valid: isBoolVar},
	{name: "auto_increment_increment", set: "auto_increment_increment", valid: isNumber},
	{name: "auto_increment_offset", set: "auto_increment_offset", valid: isNumber},
	{name: "character_set_client", set: "character_set_client", valid: safeSessionValue},
	{name: "collation_connection", set: "collation_connection", valid: safeSessionValue},
	{name: "collation_server", set: "collation_server", valid: safeSessionValue},
	{name: "time_zone", set: "time_zone", quote: true, valid: func(string) bool { return true }},
	{name: "lc_time_names", set: "lc_time_names", valid: isNumber},
	{name: "default_storage_engine", set: "default_storage_engine", valid: safeSessionValue},
	{name: "#insert_id", set: "insert_id", valid: isNumber},
	{name: "#last_insert_id", set: "last_insert_id", valid: isNumber},
	{name: "#rand_seed1", set: "rand_seed1", valid: isNumber},
	{name: "#rand_seed2", set: "rand_seed2", valid: isNumber},
}

func isBoolVar(v string) bool { return v == "0" || v == "1" }

func isNumber(v string) bool {
	_, err := strconv.ParseUint(v, 10, 64)
	return err == nil
}

// isIdentName reports whether a user variable name is plain enough to
// quote (no NUL; quoteIdent doubles backquotes).
func isIdentName(v string) bool { return v != "" && !strings.ContainsRune(v, 0) }

func safeSessionValue(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c == ',' || c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
