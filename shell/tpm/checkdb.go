package tpm

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/carbidedb/carbide/internal/config"
)

// Finding levels.
const (
	LevelError = "ERROR"
	LevelWarn  = "WARNING"
)

// Names of the database checks, as skip-validation-check takes them.
const (
	CheckConnect       = "MySQLConnectCheck"
	CheckLogBin        = "MySQLBinaryLogsEnabledCheck"
	CheckBinlogFormat  = "MySQLBinlogFormatCheck"
	CheckRowImage      = "MySQLRowImageCheck"
	CheckRowMetadata   = "MySQLRowMetadataCheck"
	CheckServerID      = "MySQLServerIDCheck"
	CheckAutoIncrement = "MySQLAutoIncrementCheck"
	CheckPermissions   = "MySQLPermissionsCheck"
	CheckTriggers      = "MySQLTriggersCheck"
	CheckFencing       = "MySQLReadOnlyBypassCheck"
	CheckDurability    = "MySQLDurabilityCheck"
	CheckMaxPacket     = "MySQLMaxAllowedPacketCheck"
	CheckEngine        = "MySQLDefaultEngineCheck"
)

// Finding is one result of CheckDatabases.
type Finding struct {
	Level string
	Host  string // "" for findings about several hosts
	Check string
	Text  string
}

func (f Finding) String() string {
	if f.Host == "" {
		return fmt.Sprintf("%s: %s", f.Level, f.Text)
	}
	return fmt.Sprintf("%s: %s: %s", f.Level, f.Host, f.Text)
}

// dbFacts is what we read from one database.
type dbFacts struct {
	host     string
	site     string
	vars     map[string]string
	grants   []string
	triggers []string
	// privileges are every account's global privileges, by account.
	privileges map[string][]string
	err        error
}

// databaseHosts are the hosts with a database: the members of every site.
func databaseHosts(cfg *config.Config) []*config.HostPlan {
	var out []*config.HostPlan
	for _, h := range cfg.Plan().Hosts {
		if h.Cluster != nil && h.Cluster.Replicator {
			out = append(out, h)
		}
	}
	return out
}

// CheckDatabases connects to every host's database as the replication user
// and checks what active/active replication needs (the guide's Prepare
// section). Checks named in skip-validation-check are skipped.
func CheckDatabases(ctx context.Context, cfg *config.Config, timeout time.Duration) []Finding {
	hosts := databaseHosts(cfg)
	facts := make([]dbFacts, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			facts[i] = readFacts(ctx, h, timeout)
		}()
	}
	wg.Wait()

	skip := map[string]bool{}
	for _, s := range cfg.Clustered() {
		for _, c := range cfg.ClusterSettings(s.Name).SkipValidationChecks {
			skip[c] = true
		}
	}
	var out []Finding
	add := func(level, host, check, format string, args ...any) {
		if !skip[check] {
			out = append(out, Finding{Level: level, Host: host, Check: check, Text: fmt.Sprintf(format, args...)})
		}
	}
	nsites := len(cfg.Clustered())
	serverIDs := map[string][]string{}
	offsets := map[string]map[string]bool{} // offset -> sites
	for _, f := range facts {
		if f.err != nil {
			out = append(out, Finding{Level: LevelError, Host: f.host, Check: CheckConnect, Text: f.err.Error()})
			continue
		}
		v := f.vars
		if !isOn(v["log_bin"]) {
			add(LevelError, f.host, CheckLogBin, "binary logging is off; set log-bin in the [mysqld] section of my.cnf and restart the database")
		}
		if !strings.EqualFold(v["binlog_format"], "ROW") {
			add(LevelError, f.host, CheckBinlogFormat, "binlog_format is %s; set binlog-format=ROW in my.cnf and restart the database", v["binlog_format"])
		}
		if !strings.EqualFold(v["binlog_row_image"], "FULL") {
			add(LevelError, f.host, CheckRowImage, "binlog_row_image is %s; set binlog-row-image=FULL in my.cnf", orNone(v["binlog_row_image"]))
		}
		if !strings.EqualFold(v["binlog_row_metadata"], "FULL") {
			add(LevelWarn, f.host, CheckRowMetadata, "binlog_row_metadata is %s; set binlog-row-metadata=FULL so the replicator reads column names from the binlog", orNone(v["binlog_row_metadata"]))
		}
		if v["server_id"] == "0" || v["server_id"] == "" {
			add(LevelError, f.host, CheckServerID, "server_id is 0; give every database its own server-id in my.cnf")
		} else {
			serverIDs[v["server_id"]] = append(serverIDs[v["server_id"]], f.host)
		}
		inc, _ := strconv.Atoi(v["auto_increment_increment"])
		if inc < nsites {
			add(LevelError, f.host, CheckAutoIncrement, "auto_increment_increment is %d but %d sites take writes; set auto-increment-increment to %d or more in my.cnf", inc, nsites, nsites)
		}
		off := v["auto_increment_offset"]
		if o, _ := strconv.Atoi(off); inc > 0 && o > inc {
			add(LevelError, f.host, CheckAutoIncrement, "auto_increment_offset %d is larger than auto_increment_increment %d, so the server ignores it; set auto-increment-offset from 1 to %d in my.cnf", o, inc, inc)
		}
		if offsets[off] == nil {
			offsets[off] = map[string]bool{}
		}
		offsets[off][f.site] = true
		if !hasReplicationGrants(f.grants) {
			add(LevelError, f.host, CheckPermissions, "the replication user lacks privileges (has: %s); GRANT ALL PRIVILEGES ON *.* TO it WITH GRANT OPTION", strings.Join(f.grants, "; "))
		}
		if len(f.triggers) > 0 && !canReplayBinlog(f.grants) {
			add(LevelError, f.host, CheckTriggers, "tables with triggers (%s) are applied with BINLOG statements, which the replication user may not run; GRANT BINLOG REPLAY ON *.* TO it", strings.Join(f.triggers, ", "))
		}
		for _, acc := range bypassesReadOnly(f, cfg.ClusterSettings(f.site)) {
			add(LevelError, f.host, CheckFencing, "%s can write on a read-only database (%s), so a demoted primary keeps taking its writes after a switch or failover; REVOKE %s ON *.* FROM %s", acc.name, acc.privilege, acc.privilege, acc.name)
		}
		if v["sync_binlog"] != "1" {
			add(LevelWarn, f.host, CheckDurability, "sync_binlog is %s; a crash of the host can lose transactions its clients saw committed; set sync-binlog=1 in my.cnf", orNone(v["sync_binlog"]))
		}
		if v["innodb_flush_log_at_trx_commit"] != "1" {
			add(LevelWarn, f.host, CheckDurability, "innodb_flush_log_at_trx_commit is %s; a crash can lose transactions its clients saw committed; set innodb-flush-log-at-trx-commit=1 in my.cnf", orNone(v["innodb_flush_log_at_trx_commit"]))
		}
	}
	// A row reaches every host: one written where max_allowed_packet is
	// larger than here stops this host's appliers before it.
	var maxHost string
	var maxPacket int64
	for _, f := range facts {
		if n, _ := strconv.ParseInt(f.vars["max_allowed_packet"], 10, 64); f.err == nil && n > maxPacket {
			maxHost, maxPacket = f.host, n
		}
	}
	for _, f := range facts {
		if n, err := strconv.ParseInt(f.vars["max_allowed_packet"], 10, 64); f.err == nil && err == nil && n < maxPacket {
			add(LevelWarn, f.host, CheckMaxPacket, "max_allowed_packet is %d, %d on %s: a row larger than %d bytes written there cannot be applied here (the replicators stop before it); set max-allowed-packet=1G in my.cnf on every host", n, maxPacket, maxHost, n)
		}
	}
	// A CREATE TABLE without ENGINE takes each host's own default: the
	// binlog does not carry the session's default_storage_engine.
	engines := map[string][]string{}
	for _, f := range facts {
		if e := f.vars["default_storage_engine"]; f.err == nil && e != "" {
			engines[e] = append(engines[e], f.host)
		}
	}
	if len(engines) > 1 {
		var parts []string
		for e, hs := range engines {
			parts = append(parts, fmt.Sprintf("%s on %s", e, strings.Join(hs, ", ")))
		}
		sort.Strings(parts)
		add(LevelWarn, "", CheckEngine, "default_storage_engine differs (%s): a CREATE TABLE without ENGINE makes tables of different engines on different hosts; set the same default-storage-engine in my.cnf everywhere", strings.Join(parts, "; "))
	}
	for id, hs := range serverIDs {
		if len(hs) > 1 {
			add(LevelError, "", CheckServerID, "hosts %s share server_id %s; give every database its own server-id", strings.Join(hs, ", "), id)
		}
	}
	for off, sites := range offsets {
		if len(sites) > 1 {
			names := make([]string, 0, len(sites))
			for s := range sites {
				names = append(names, s)
			}
			sort.Strings(names)
			add(LevelError, "", CheckAutoIncrement, "sites %s share auto_increment_offset %s; give each site that takes writes its own auto-increment-offset", strings.Join(names, " and "), off)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Level == LevelError && out[j].Level != LevelError })
	return out
}

func isOn(v string) bool { return strings.EqualFold(v, "ON") || v == "1" }

func orNone(v string) string {
	if v == "" {
		return "not supported by this server"
	}
	return v
}

func hasReplicationGrants(grants []string) bool {
	for _, g := range grants {
		u := strings.ToUpper(g)
		if strings.Contains(u, "GRANT ALL PRIVILEGES ON *.*") {
			return true
		}
	}
	var all string
	for _, g := range grants {
		if strings.Contains(g, " ON *.* ") {
			all += strings.ToUpper(g)
		}
	}
	for _, need := range []string{"REPLICATION SLAVE", "SELECT", "INSERT", "UPDATE", "DELETE", "CREATE"} {
		if !strings.Contains(all, need) {
			return false
		}
	}
	return strings.Contains(all, "REPLICATION CLIENT") || strings.Contains(all, "BINLOG MONITOR")
}

// canReplayBinlog reports whether grants allow the BINLOG statement.
func canReplayBinlog(grants []string) bool {
	for _, g := range grants {
		u := strings.ToUpper(g)
		if strings.Contains(u, " ON *.* ") && (strings.Contains(u, "ALL PRIVILEGES") || strings.Contains(u, "BINLOG REPLAY") || strings.Contains(u, "SUPER")) {
			return true
		}
	}
	return false
}

// readOnlyBypass is an account that read_only does not stop.
type readOnlyBypass struct{ name, privilege string }

// bypassesReadOnly lists the accounts that can write (or are the ini's
// application user) and hold what lets them write on a read-only server:
// READ_ONLY ADMIN, or SUPER before MariaDB 10.11. The replication user
// (which must) and root are not listed.
func bypassesReadOnly(f dbFacts, s config.Settings) []readOnlyBypass {
	version := f.vars["version"]
	superBypasses := !strings.Contains(strings.ToLower(version), "mariadb") || versionBefore(version, 10, 11)
	var out []readOnlyBypass
	for acc, privs := range f.privileges {
		user, _, _ := strings.Cut(strings.TrimPrefix(acc, "'"), "'@")
		if user == s.ReplicationUser || user == "root" || user == "mariadb.sys" {
			continue
		}
		has := map[string]bool{}
		for _, p := range privs {
			has[strings.ToUpper(p)] = true
		}
		if !(user == s.ApplicationUser || has["INSERT"] || has["UPDATE"] || has["DELETE"]) {
			continue
		}
		switch {
		case has["READ_ONLY ADMIN"]:
			out = append(out, readOnlyBypass{acc, "READ_ONLY ADMIN"})
		case has["SUPER"] && superBypasses:
			out = append(out, readOnlyBypass{acc, "SUPER"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// versionBefore reports whether a server version string ("10.6.18-MariaDB…")
// is before major.minor.
func versionBefore(version string, major, minor int) bool {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return ma < major || ma == major && mi < minor
}

func readFacts(ctx context.Context, h *config.HostPlan, timeout time.Duration) dbFacts {
	s := h.Cluster.Settings
	f := dbFacts{host: h.Name, site: h.Site}
	addr := net.JoinHostPort(h.Address, strconv.Itoa(s.ReplicationPort))
	mc := mysql.NewConfig()
	mc.User, mc.Passwd, mc.Net, mc.Addr = s.ReplicationUser, s.ReplicationPassword, "tcp", addr
	mc.Timeout, mc.ReadTimeout, mc.WriteTimeout = timeout, timeout, timeout
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		f.err = fmt.Errorf("cannot connect to the database at %s: %v", addr, err)
		return f
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*timeout)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		f.err = fmt.Errorf("cannot connect to the database at %s as %s: %v; check replication-user, replication-password and replication-port", addr, s.ReplicationUser, err)
		return f
	}
	f.vars = map[string]string{}
	rows, err := db.QueryContext(ctx, "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('log_bin','binlog_format','binlog_row_image','binlog_row_metadata','server_id','auto_increment_increment','auto_increment_offset','sync_binlog','innodb_flush_log_at_trx_commit','version','max_allowed_packet','default_storage_engine')")
	if err != nil {
		f.err = fmt.Errorf("read variables at %s: %v", addr, err)
		return f
	}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err == nil {
			f.vars[strings.ToLower(k)] = v
		}
	}
	rows.Close()
	f.grants = queryStrings(ctx, db, "SHOW GRANTS")
	f.triggers = queryStrings(ctx, db, "SELECT CONCAT(trigger_schema, '.', trigger_name) FROM information_schema.triggers WHERE trigger_schema NOT IN ('mysql','sys','information_schema','performance_schema') ORDER BY 1 LIMIT 20")
	f.triggers = slices.DeleteFunc(f.triggers, func(s string) bool { return s == "" })
	f.privileges = map[string][]string{}
	if rows, err := db.QueryContext(ctx, "SELECT GRANTEE, PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES"); err == nil {
		for rows.Next() {
			var acc, priv string
			if rows.Scan(&acc, &priv) == nil {
				f.privileges[acc] = append(f.privileges[acc], priv)
			}
		}
		rows.Close()
	}
	return f
}

func queryStrings(ctx context.Context, db *sql.DB, q string) []string {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s sql.NullString
		if rows.Scan(&s) == nil {
			out = append(out, s.String)
		}
	}
	return out
}
