package extract

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestAccountStatementsHidePasswords: account statements a client types
// with plaintext passwords reach the THL with the authentication strings
// the server stored for them (so a replica sets the same password), and
// never with the passwords.
func TestAccountStatementsHidePasswords(t *testing.T) {
	t.Parallel()
	srv, db := startDB(t)
	ed25519 := true
	if _, err := db.Exec("INSTALL SONAME 'auth_ed25519'"); err != nil {
		t.Logf("no ed25519 plugin (%v): its statement is not tested", err)
		ed25519 = false
	}
	x := newExtractor(t, srv, nil)
	c := start(t, x, currentPosition(t, x))
	stmts := []string{
		"CREATE USER 'a'@'%' IDENTIFIED BY 'Pw-a1'",
		"GRANT SELECT ON *.* TO 'a'@'%' IDENTIFIED BY 'Pw-a2'",
		"SET PASSWORD FOR 'a'@'%' = PASSWORD('Pw-a3')",
		"CREATE USER 'n'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('Pw-n1')",
	}
	if ed25519 {
		stmts = append(stmts, "CREATE USER 'e'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('Pw-e1')")
	}
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	stored := map[string]string{}
	for _, u := range []string{"a", "n", "e"} {
		var priv string
		if err := db.QueryRow("SELECT Priv FROM mysql.global_priv WHERE User = ?", u).Scan(&priv); err != nil {
			continue
		}
		var p struct {
			Auth string `json:"authentication_string"`
		}
		if err := json.Unmarshal([]byte(priv), &p); err != nil {
			t.Fatal(err)
		}
		stored[u] = p.Auth
	}
	var got []string
	for _, tx := range c.wait(t, len(stmts)) {
		for _, ev := range tx {
			for _, ch := range ev.GetChanges() {
				if st := ch.GetStatement(); st != nil {
					got = append(got, st.GetSql())
				}
			}
		}
	}
	all := strings.Join(got, "\n")
	if strings.Contains(all, "Pw-") {
		t.Errorf("a password reached the THL:\n%s", all)
	}
	// The last statement of each account set what the server stored.
	for u, want := range map[string]string{"a": "SET PASSWORD FOR 'a'@'%'='" + stored["a"] + "'",
		"n": "USING '" + stored["n"] + "'", "e": "USING '" + stored["e"] + "'"} {
		if u == "e" && !ed25519 {
			continue
		}
		if stored[u] == "" || !strings.Contains(all, want) {
			t.Errorf("account %s: the THL does not set the stored %q:\n%s", u, stored[u], all)
		}
	}
	if want := "IDENTIFIED BY PASSWORD '" + nativeHash("Pw-a1") + "'"; !strings.Contains(got[0], want) {
		t.Errorf("CREATE USER: %q, want %q", got[0], want)
	}
}
