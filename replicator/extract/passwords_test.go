package extract

import "testing"

func TestHidePasswords(t *testing.T) {
	// The server's PASSWORD('password').
	if h := nativeHash("password"); h != "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19" {
		t.Fatalf("nativeHash(password) = %q", h)
	}
	secret := nativeHash("s3cr3t")
	for _, c := range []struct{ in, want string }{
		{"ALTER USER 'app'@'%' IDENTIFIED BY 's3cr3t'", "ALTER USER 'app'@'%' IDENTIFIED BY PASSWORD '" + secret + "'"},
		{"create user app@localhost identified by \"s3cr3t\" , b identified by 's3cr3t'",
			"create user app@localhost identified by PASSWORD '" + secret + "' , b identified by PASSWORD '" + secret + "'"},
		{"CREATE OR REPLACE USER `a`@`%` IDENTIFIED BY 's3cr3t' PASSWORD EXPIRE", "CREATE OR REPLACE USER `a`@`%` IDENTIFIED BY PASSWORD '" + secret + "' PASSWORD EXPIRE"},
		{"GRANT SELECT ON *.* TO a IDENTIFIED BY 's3cr3t'", "GRANT SELECT ON *.* TO a IDENTIFIED BY PASSWORD '" + secret + "'"},
		// The server logs SET PASSWORD with the hash of the account's plugin.
		{"SET PASSWORD FOR 'a'@'%'='" + secret + "'", "SET PASSWORD FOR 'a'@'%'='" + secret + "'"},
		{"SET PASSWORD FOR 'a'@'%' = PASSWORD('s3cr3t')", "SET PASSWORD FOR 'a'@'%' = PASSWORD('s3cr3t')"},
		{"ALTER USER a IDENTIFIED VIA ed25519 USING PASSWORD('s3cr3t') OR unix_socket",
			"ALTER USER a IDENTIFIED VIA ed25519 USING '" + ed25519Hash("s3cr3t") + "' OR unix_socket"},
		{"ALTER USER a IDENTIFIED VIA mysql_native_password USING PASSWORD('s3cr3t')", "ALTER USER a IDENTIFIED VIA mysql_native_password USING '" + secret + "'"},
		{"/* by an operator */ ALTER USER a IDENTIFIED BY 's3cr3t'", "/* by an operator */ ALTER USER a IDENTIFIED BY PASSWORD '" + secret + "'"},
		// Escapes are the password's: 'it''s' and 'it\'s' are "it's".
		{"ALTER USER a IDENTIFIED BY 'it''s'", "ALTER USER a IDENTIFIED BY PASSWORD '" + nativeHash("it's") + "'"},
		{`ALTER USER a IDENTIFIED BY 'it\'s'`, "ALTER USER a IDENTIFIED BY PASSWORD '" + nativeHash("it's") + "'"},
		{"ALTER USER a IDENTIFIED BY ''", "ALTER USER a IDENTIFIED BY PASSWORD ''"},
		// Already hashed, another plugin, not an account statement: as is.
		{"ALTER USER a IDENTIFIED BY PASSWORD '" + secret + "'", "ALTER USER a IDENTIFIED BY PASSWORD '" + secret + "'"},
		{"ALTER USER a IDENTIFIED VIA parsec USING PASSWORD('s3cr3t')", "ALTER USER a IDENTIFIED VIA parsec USING PASSWORD('s3cr3t')"},
		{"CREATE TABLE t (password VARCHAR(10) DEFAULT 'identified by')", "CREATE TABLE t (password VARCHAR(10) DEFAULT 'identified by')"},
		{"DROP USER a", "DROP USER a"},
	} {
		if got := hidePasswords(c.in); got != c.want {
			t.Errorf("hidePasswords(%q)\n = %q\nwant %q", c.in, got, c.want)
		}
	}
}

// FuzzHidePasswords: any input, no panic; a statement that is not an
// account statement comes back unchanged.
func FuzzHidePasswords(f *testing.F) {
	for _, s := range []string{"ALTER USER a IDENTIFIED BY 'x", "SET PASSWORD = PASSWORD(", "GRANT ALL ON *.* TO a IDENTIFIED BY 'it\\", "/*", "`", "CREATE TABLE t (a INT)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		got := hidePasswords(q)
		if !accountStatement(sqlTokens(q)) && got != q {
			t.Fatalf("%q changed to %q", q, got)
		}
	})
}
