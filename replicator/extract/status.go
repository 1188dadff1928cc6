package extract

import (
	"encoding/binary"
	"strconv"
	"strings"
)

// Query event status variable codes (MySQL log_event.h, MariaDB
// log_event.h). Each has a fixed or self-described length; parsing stops
// at the first code it does not know.
const (
	qFlags2                 = 0
	qSQLMode                = 1
	qCatalog                = 2
	qAutoIncrement          = 3
	qCharset                = 4
	qTimeZone               = 5
	qCatalogNZ              = 6
	qLCTimeNames            = 7
	qCharsetDatabase        = 8
	qTableMapForUpdate      = 9
	qMasterDataWritten      = 10
	qInvoker                = 11
	qUpdatedDBNames         = 12
	qMicroseconds           = 13
	qCommitTS               = 14
	qCommitTS2              = 15
	qExplicitDefaultsForTS  = 16
	qDDLLoggedWithXID       = 17
	qDefaultCollationUTF8MB = 18
	qSQLRequirePrimaryKey   = 19
	qDefaultTableEncryption = 20
	qHRNow                  = 128 // MariaDB
	qXID                    = 129 // MariaDB
	qGTIDFlags3             = 130 // MariaDB
)

// Q_FLAGS2 bits (OPTION_* in sql_priv.h).
const (
	optionAutoIsNull          = 1 << 14
	optionNoForeignKeyChecks  = 1 << 26
	optionRelaxedUniqueChecks = 1 << 27
)

// sqlModeNames names the sql_mode bits, lowest first. The two flavors
// agree on bits 0-31 (MySQL leaves 4 and 28 unused); they differ above.
var sqlModeNames = [...]string{
	"REAL_AS_FLOAT", "PIPES_AS_CONCAT", "ANSI_QUOTES", "IGNORE_SPACE",
	"IGNORE_BAD_TABLE_OPTIONS", "ONLY_FULL_GROUP_BY", "NO_UNSIGNED_SUBTRACTION", "NO_DIR_IN_CREATE",
	"POSTGRESQL", "ORACLE", "MSSQL", "DB2",
	"MAXDB", "NO_KEY_OPTIONS", "NO_TABLE_OPTIONS", "NO_FIELD_OPTIONS",
	"MYSQL323", "MYSQL40", "ANSI", "NO_AUTO_VALUE_ON_ZERO",
	"NO_BACKSLASH_ESCAPES", "STRICT_TRANS_TABLES", "STRICT_ALL_TABLES", "NO_ZERO_IN_DATE",
	"NO_ZERO_DATE", "ALLOW_INVALID_DATES", "ERROR_FOR_DIVISION_BY_ZERO", "TRADITIONAL",
	"NO_AUTO_CREATE_USER", "HIGH_NOT_PRECEDENCE", "NO_ENGINE_SUBSTITUTION", "PAD_CHAR_TO_FULL_LENGTH",
}

var (
	mariadbHighModes = []string{"EMPTY_STRING_IS_NULL", "SIMULTANEOUS_ASSIGNMENT", "TIME_ROUND_FRACTIONAL"}
	mysqlHighModes   = []string{"TIME_TRUNCATE_FRACTIONAL"}
)

// sqlModeString renders a sql_mode bitmask as the comma-separated names
// SET SESSION sql_mode accepts, or as the number when a bit has no name.
func sqlModeString(mode uint64, flavor string) string {
	high := mariadbHighModes
	if flavor == FlavorMySQL {
		high = mysqlHighModes
	}
	var b strings.Builder
	for i := 0; i < 64; i++ {
		if mode&(1<<i) == 0 {
			continue
		}
		var name string
		switch {
		case i < 32 && !(flavor == FlavorMySQL && (i == 4 || i == 28)):
			name = sqlModeNames[i]
		case i >= 32 && i-32 < len(high):
			name = high[i-32]
		default:
			return strconv.FormatUint(mode, 10)
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(name)
	}
	return b.String()
}

// collations maps collation ids to names (information_schema.COLLATIONS).
type collations map[uint64]collation

type collation struct{ name, charset string }

// collationName names collation id, or returns the id as a number, which
// SET accepts too.
func (c collations) collationName(id uint64) string {
	if x, ok := c[id]; ok && x.name != "" {
		return x.name
	}
	return strconv.FormatUint(id, 10)
}

func (c collations) charsetName(id uint64) string {
	if x, ok := c[id]; ok && x.charset != "" {
		return x.charset
	}
	return strconv.FormatUint(id, 10)
}

// sessionVars decodes a query event's status variables into the session
// variables the statement ran with, named as SET SESSION names them.
// Unknown codes end the decoding: what was decoded before is kept.
func sessionVars(status []byte, flavor string, coll collations) map[string]string {
	m := make(map[string]string, 8)
	p := status
	need := func(n int) bool { return len(p) >= n }
	for len(p) > 0 {
		code := p[0]
		p = p[1:]
		switch code {
		case qFlags2:
			if !need(4) {
				return m
			}
			f := binary.LittleEndian.Uint32(p)
			m["foreign_key_checks"] = boolVar(f&optionNoForeignKeyChecks == 0)
			m["unique_checks"] = boolVar(f&optionRelaxedUniqueChecks == 0)
			m["sql_auto_is_null"] = boolVar(f&optionAutoIsNull != 0)
			p = p[4:]
		case qSQLMode:
			if !need(8) {
				return m
			}
			m["sql_mode"] = sqlModeString(binary.LittleEndian.Uint64(p), flavor)
			p = p[8:]
		case qCatalog:
			if !need(1) || !need(2+int(p[0])) {
				return m
			}
			p = p[2+int(p[0]):]
		case qAutoIncrement:
			if !need(4) {
				return m
			}
			m["auto_increment_increment"] = strconv.Itoa(int(binary.LittleEndian.Uint16(p)))
			m["auto_increment_offset"] = strconv.Itoa(int(binary.LittleEndian.Uint16(p[2:])))
			p = p[4:]
		case qCharset:
			if !need(6) {
				return m
			}
			m["character_set_client"] = coll.charsetName(uint64(binary.LittleEndian.Uint16(p)))
			m["collation_connection"] = coll.collationName(uint64(binary.LittleEndian.Uint16(p[2:])))
			m["collation_server"] = coll.collationName(uint64(binary.LittleEndian.Uint16(p[4:])))
			p = p[6:]
		case qTimeZone:
			if !need(1) || !need(1+int(p[0])) {
				return m
			}
			m["time_zone"] = string(p[1 : 1+int(p[0])])
			p = p[1+int(p[0]):]
		case qCatalogNZ:
			if !need(1) || !need(1+int(p[0])) {
				return m
			}
			p = p[1+int(p[0]):]
		case qLCTimeNames:
			if !need(2) {
				return m
			}
			if v := binary.LittleEndian.Uint16(p); v != 0 {
				m["lc_time_names"] = strconv.Itoa(int(v))
			}
			p = p[2:]
		case qCharsetDatabase:
			if !need(2) {
				return m
			}
			if v := binary.LittleEndian.Uint16(p); v != 0 {
				m["collation_database"] = coll.collationName(uint64(v))
			}
			p = p[2:]
		case qTableMapForUpdate, qDDLLoggedWithXID, qXID:
			if !need(8) {
				return m
			}
			p = p[8:]
		case qMasterDataWritten:
			if !need(4) {
				return m
			}
			p = p[4:]
		case qInvoker:
			for range 2 { // user, host
				if !need(1) || !need(1+int(p[0])) {
					return m
				}
				p = p[1+int(p[0]):]
			}
		case qUpdatedDBNames:
			if !need(1) {
				return m
			}
			n := int(p[0])
			p = p[1:]
			if n == 254 { // OVER_MAX_DBS_IN_EVENT_MTS: no names follow
				break
			}
			for range n {
				i := 0
				for i < len(p) && p[i] != 0 {
					i++
				}
				if i == len(p) {
					return m
				}
				p = p[i+1:]
			}
		case qMicroseconds, qHRNow:
			if !need(3) {
				return m
			}
			p = p[3:]
		case qExplicitDefaultsForTS:
			if !need(1) {
				return m
			}
			m["explicit_defaults_for_timestamp"] = boolVar(p[0] != 0)
			p = p[1:]
		case qDefaultCollationUTF8MB:
			if !need(2) {
				return m
			}
			m["default_collation_for_utf8mb4"] = coll.collationName(uint64(binary.LittleEndian.Uint16(p)))
			p = p[2:]
		case qSQLRequirePrimaryKey, qDefaultTableEncryption, qGTIDFlags3:
			if !need(1) {
				return m
			}
			p = p[1:]
		default:
			return m
		}
	}
	return m
}

func boolVar(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
