package mysqld

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func validConfig() Config {
	return Config{Dir: "/tmp/x", Address: "127.0.1.1", ServerID: 1}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string // substring of the error; "" means valid
	}{
		{"valid", func(*Config) {}, ""},
		{"non-loopback address", func(c *Config) { c.Address = "10.0.0.1" }, `Address "10.0.0.1" is not a 127.x.y.z address; use a loopback address such as 127.0.1.1`},
		{"host name", func(c *Config) { c.Address = "localhost" }, `Address "localhost" is not a 127.x.y.z address`},
		{"ipv6 loopback", func(c *Config) { c.Address = "::1" }, `Address "::1" is not a 127.x.y.z address`},
		{"empty address", func(c *Config) { c.Address = "" }, "Address is empty"},
		{"zero server id", func(c *Config) { c.ServerID = 0 }, "ServerID is 0; set it to a number above 0"},
		{"empty dir", func(c *Config) { c.Dir = "" }, "Dir is empty"},
		{"bad port", func(c *Config) { c.Port = 70000 }, "Port 70000 is out of range"},
		{"bad increment", func(c *Config) { c.AutoIncrementIncrement = -1 }, "AutoIncrementIncrement -1 is out of range"},
		{"nameless user", func(c *Config) { c.Users = []User{{Password: "x"}} }, "Users[0] has an empty Name"},
		{"bad privileges", func(c *Config) { c.Users = []User{{Name: "u", Privileges: "ALL"}} }, "privileges must read"},
		{"multi-line option", func(c *Config) { c.Options = []string{"a=1\nb=2"} }, "is not one my.cnf line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.change(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tc.want)
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("Validate error %v is not ErrInvalidConfig", err)
			}
			if strings.Count(err.Error(), "\n") != 0 {
				t.Errorf("Validate error %q is not one line", err)
			}
		})
	}
}

func TestCnf(t *testing.T) {
	c := validConfig()
	c.ServerID = 42
	c.AutoIncrementIncrement, c.AutoIncrementOffset = 3, 2
	c.Options = []string{"binlog_row_image=MINIMAL"}
	c = c.WithDefaults()
	cnf := string(c.cnf())
	for _, want := range []string{
		"[mariadbd]\n",
		"datadir=/tmp/x/data\n",
		"socket=/tmp/x/mysqld.sock\n",
		"pid-file=/tmp/x/mysqld.pid\n",
		"log-error=/tmp/x/error.log\n",
		"bind-address=127.0.1.1\n",
		"port=13306\n",
		"server-id=42\n",
		"auto-increment-increment=3\n",
		"auto-increment-offset=2\n",
		"log-bin=mysql-bin\n",
		"binlog-format=ROW\n",
		"binlog_row_metadata=FULL\n",
		"sync_binlog=1\n",
		"innodb_flush_log_at_trx_commit=1\n",
		"skip-name-resolve\n",
		"character-set-server=utf8mb4\n",
		"performance_schema=OFF\n",
	} {
		if !strings.Contains(cnf, want) {
			t.Errorf("my.cnf lacks %q:\n%s", want, cnf)
		}
	}
	// Options come after the generated lines, so they win.
	if strings.Index(cnf, "binlog_row_image=MINIMAL") < strings.Index(cnf, "binlog_row_image=FULL") {
		t.Errorf("Options precede the generated lines:\n%s", cnf)
	}
}

func TestSocketPathFallback(t *testing.T) {
	short := Config{Dir: "/tmp/a"}
	if got := short.SocketPath(); got != "/tmp/a/mysqld.sock" {
		t.Errorf("SocketPath = %q, want /tmp/a/mysqld.sock", got)
	}
	long := Config{Dir: "/tmp/" + strings.Repeat("d", 120)}
	got := long.SocketPath()
	if len(got) >= maxSocketPath || !strings.HasPrefix(got, "/tmp/carbide-mysqld-") {
		t.Errorf("SocketPath for a long Dir = %q, want a short path under /tmp", got)
	}
	if again := long.SocketPath(); again != got {
		t.Errorf("SocketPath is not stable: %q then %q", got, again)
	}
}

func TestUserStatements(t *testing.T) {
	users := Config{Users: []User{
		{Name: "tungsten", Password: "it's"},
		{Name: "ro", Password: "p", Host: "127.%", Privileges: "SELECT ON app.*"},
	}}.WithDefaults().Users
	stmts, err := userStatements(users)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(stmts, "\n")
	want := strings.Join([]string{
		"CREATE USER IF NOT EXISTS 'root'@'127.%'",
		"GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.%' WITH GRANT OPTION",
		`CREATE USER IF NOT EXISTS 'tungsten'@'%' IDENTIFIED BY 'it\'s'`,
		`ALTER USER 'tungsten'@'%' IDENTIFIED BY 'it\'s'`,
		"GRANT ALL PRIVILEGES ON *.* TO 'tungsten'@'%' WITH GRANT OPTION",
		"CREATE USER IF NOT EXISTS 'ro'@'127.%' IDENTIFIED BY 'p'",
		"ALTER USER 'ro'@'127.%' IDENTIFIED BY 'p'",
		"GRANT SELECT ON app.* TO 'ro'@'127.%'",
	}, "\n")
	if got != want {
		t.Errorf("userStatements:\n%s\nwant:\n%s", got, want)
	}
	if r := redact(stmts[2]); strings.Contains(r, `'it\'s'`) {
		t.Errorf("redact left the password in %q", r)
	}
}

func TestCopyFileSparse(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	data := make([]byte, 1<<20+123)
	copy(data[200<<10:], "hello")
	copy(data[len(data)-3:], "end")
	if err := os.WriteFile(src, data, 0o640); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "dst")
	if err := copyFileSparse(src, dst, 0o640, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(data) {
		t.Fatalf("copy differs from the source (len %d, want %d)", len(got), len(data))
	}
	// A file that ends in zeros keeps its length.
	zeros := filepath.Join(dir, "zeros")
	if err := os.WriteFile(zeros, make([]byte, 300<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := copyFileSparse(zeros, dst+"2", 0o600, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dst + "2"); err != nil || fi.Size() != 300<<10 {
		t.Fatalf("copy of a zero file: %v, %v", fi, err)
	}
}

func TestLookPath(t *testing.T) {
	b, err := LookPath()
	if err != nil {
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "run scripts/install-deps.sh") {
			t.Fatalf("LookPath error %q does not say what to do", err)
		}
		if os.Getenv("CARBIDE_REQUIRE_DB") != "" {
			t.Fatal(err)
		}
		t.Skipf("mariadbd not found (set CARBIDE_REQUIRE_DB=1 to fail instead): %v", err)
	}
	for _, p := range []string{b.Mariadbd, b.InstallDB, b.Client} {
		if !filepath.IsAbs(p) {
			t.Errorf("LookPath returned a relative path %q", p)
		}
	}
}
