package mysqld

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// rootTCPHost is the host part of the passwordless root account Start creates
// so that root can connect over TCP from any loopback address.
const rootTCPHost = "127.%"

// splitPrivileges splits "<privileges> ON <object> [WITH GRANT OPTION]" into
// the part before TO and the grant-option suffix.
func splitPrivileges(p string) (grant, suffix string, err error) {
	p = strings.TrimSpace(p)
	upper := strings.ToUpper(p)
	const opt = "WITH GRANT OPTION"
	if strings.HasSuffix(upper, opt) {
		p = strings.TrimSpace(p[:len(p)-len(opt)])
		upper = strings.ToUpper(p)
		suffix = " " + opt
	}
	if !strings.Contains(upper, " ON ") || strings.ContainsAny(p, ";") {
		return "", "", errors.New(`privileges must read "<privileges> ON <object> [WITH GRANT OPTION]", for example "SELECT, INSERT ON app.*"`)
	}
	return p, suffix, nil
}

// quote returns s as a single-quoted SQL string literal.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\x00", `\0`)
	return "'" + r.Replace(s) + "'"
}

func account(name, host string) string { return quote(name) + "@" + quote(host) }

// userStatements returns the statements that create or update the accounts
// of users (defaults applied), root@'127.%' first.
func userStatements(users []User) ([]string, error) {
	root := account("root", rootTCPHost)
	stmts := []string{
		"CREATE USER IF NOT EXISTS " + root,
		"GRANT ALL PRIVILEGES ON *.* TO " + root + " WITH GRANT OPTION",
	}
	for _, u := range users {
		grant, suffix, err := splitPrivileges(u.Privileges)
		if err != nil {
			return nil, fmt.Errorf("user %s: %w", u.Name, err)
		}
		acc := account(u.Name, u.Host)
		stmts = append(stmts,
			"CREATE USER IF NOT EXISTS "+acc+" IDENTIFIED BY "+quote(u.Password),
			"ALTER USER "+acc+" IDENTIFIED BY "+quote(u.Password),
			"GRANT "+grant+" TO "+acc+suffix,
		)
	}
	return stmts, nil
}

// createUsers runs userStatements on one connection with sql_log_bin=0.
func createUsers(ctx context.Context, db *sql.DB, users []User) error {
	stmts, err := userStatements(users)
	if err != nil {
		return err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET SESSION sql_log_bin=0"); err != nil {
		return err
	}
	for _, s := range stmts {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", redact(s), err)
		}
	}
	return nil
}

// redact removes the password from a CREATE/ALTER USER statement.
func redact(stmt string) string {
	if i := strings.Index(stmt, " IDENTIFIED BY "); i >= 0 {
		return stmt[:i] + " IDENTIFIED BY <redacted>"
	}
	return stmt
}
