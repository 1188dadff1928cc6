package e2e

import (
	"bufio"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// mtrBase is where Debian's mariadb-test-data puts MariaDB's regression
// tests (and mariadb-test's --basedir).
const mtrBase = "/usr/share/mysql/mysql-test"

// conformanceSuites are the suites of MariaDB's regression tests the
// conformance suite draws its files from (issue 18).
var conformanceSuites = []string{"binlog", "json", "gcol", "vcol", "sql_sequence", "period", "versioning", "parts", "funcs_1", "rpl"}

// A mtrFile is one regression test file with everything it sources.
type mtrFile struct {
	name    string // suite/x/t/y.test, relative to mtrBase
	suite   string
	text    string   // the file and its sourced files, lower-cased, comments dropped
	sources []string // every file read, relative to mtrBase
}

// A skipRule keeps files away that cannot run on one connection against a
// running sandbox server, or that would change the server for the files
// after them. The reason is what docs/conformance.md says.
type skipRule struct {
	name, reason string
	match        func(f *mtrFile) string // what matched, "" if nothing
}

// pattern matches f's text (with its sourced files) against re.
func pattern(re string) func(*mtrFile) string {
	r := regexp.MustCompile(re)
	return func(f *mtrFile) string { return strings.TrimSpace(r.FindString(f.text)) }
}

var skipRules = []skipRule{
	{"disabled", "listed in the suite's disabled.def: MariaDB does not run it either", func(f *mtrFile) string {
		if disabled(f.suite)[strings.TrimSuffix(filepath.Base(f.name), ".test")] {
			return "disabled.def"
		}
		return ""
	}},
	{"two-servers", "needs a second server (a master/slave or multi-server setup)", pattern(`master-slave\.inc|rpl_init\.inc|rpl_end\.inc|have_multi_source|connection\s+slave|connection\s+server_\d|\$slave_myport|\$server_myport_[2-9]|rpl_connect\.inc|rpl_change_topology`)},
	{"restart", "restarts, stops or kills the server", pattern(`restart_mysqld|kill_mysqld|shutdown_mysqld|start_mysqld|crash_mysqld|kill_and_restart|wait_until_disconnected|shutdown_server|restart_abort|\bshutdown\b`)},
	{"options", "needs server options (an .opt or .cnf file of the test or of a suite file it sources): mtr would start a server with them", func(f *mtrFile) string {
		for _, src := range f.sources {
			if strings.HasPrefix(src, "include/") {
				continue // mtr's own (have_innodb.opt, have_log_bin-master.opt): what the sandbox servers run with
			}
			stem := strings.TrimSuffix(strings.TrimSuffix(src, ".test"), ".inc")
			for _, ext := range []string{".opt", "-master.opt", "-slave.opt", ".cnf"} {
				if b, err := os.ReadFile(filepath.Join(mtrBase, stem+ext)); err == nil && !onlyLoose(string(b)) {
					return filepath.Base(stem + ext)
				}
			}
		}
		return ""
	}},
	{"debug", "needs a debug build of the server (debug_sync, debug_dbug)", pattern(`have_debug|debug_sync|debug_dbug|\bdbug\b|have_debug_sync`)},
	{"connections", "opens more connections (mariadb-test's connect reaches the server through its local socket; the suite runs on one connection)", pattern(`(^|\n)\s*(--)?\s*connect\s*\(|(^|\n)\s*--connect\b|(^|\n)\s*connect\s+\w|(^|\n)\s*(--)?\s*change_user\b`)},
	{"server-files", "works on the server's own files (its datadir, binlog files or error log, SELECT … INTO OUTFILE, which leaves files in the datadir)", pattern(`search_pattern_in_file\.inc|assert_grep\.inc|into\s+(outfile|dumpfile)|\$mysqld_datadir|@@datadir|\$mysqld_master_datadir|load_file\s*\(|\$mysql_binlog`)},
	{"programs", "runs programs beside the test (exec, system): client programs reach the server through its local socket", pattern(`(^|\n)\s*(--)?\s*(exec|exec_in_background|system)\b`)},
	{"global-settings", "changes global server settings, which would outlive the file and change the server for the others", pattern(`set\s+(session\s+)?global\b|set\s+@@global\.|,\s*global\s+\w+\s*=|set\s+default\s+role|install\s+(plugin|soname)|uninstall\s+(plugin|soname)`)},
	{"binlog-off", "writes with sql_log_bin=0: the primary diverges from its replicas by design", pattern(`sql_log_bin\s*=\s*(0|off|false)`)},
	{"binlog-format", "switches binlog_format: Carbide's extractor reads row events (the servers run ROW)", pattern(`binlog_format\s*=|have_binlog_format_statement|have_binlog_format_mixed`)},
	{"binlog-admin", "resets, purges or injects the binlog under the extractor", pattern(`reset\s+master|purge\s+(binary|master)\s+logs|(^|\n|;)\s*binlog\s+'`)},
	{"server-replication", "configures the server's own replication (CHANGE MASTER, START/STOP SLAVE, waits for a master position)", pattern(`change\s+master|(start|stop|reset)\s+(all\s+)?(slave|replica)|master_pos_wait|master_gtid_wait|sync_slave_with_master|save_master_pos|sync_with_master`)},
	{"table-directories", "puts tables in their own directories (DATA DIRECTORY, INDEX DIRECTORY): the sandbox's hosts share one filesystem, so every host would write the same files (hosts of their own each have theirs)", pattern(`(data|index)\s+directory\s*=?\s*['"$]`)},
	{"kill", "kills connections or queries", pattern(`(^|\n|;)\s*kill\s+(query|connection|hard|soft|\d|\$|@)`)},
}

// skipReason returns the rule that keeps f away and what matched, or
// "" for a file the suite runs.
func skipReason(f *mtrFile) (rule *skipRule, matched string) {
	for i := range skipRules {
		if m := skipRules[i].match(f); m != "" {
			return &skipRules[i], m
		}
	}
	return nil, ""
}

// onlyLoose says whether an option file only adds plugins or --loose-
// options: without them the file still runs on a sandbox server (what
// needs the plugin fails inside the file, not in replication).
func onlyLoose(opts string) bool {
	for _, o := range strings.Fields(opts) {
		if !strings.HasPrefix(o, "--plugin-load-add=") && !strings.HasPrefix(o, "--loose-") && !strings.HasPrefix(o, "--loose_") {
			return false
		}
	}
	return true
}

var disabledCache = map[string]map[string]bool{}

// disabled reads a suite's disabled.def: "name : reason" lines.
func disabled(suite string) map[string]bool {
	if d, ok := disabledCache[suite]; ok {
		return d
	}
	d := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(mtrBase, "suite", suite, "disabled.def")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			l = strings.TrimSpace(l)
			if l == "" || strings.HasPrefix(l, "#") {
				continue
			}
			name, _, _ := strings.Cut(l, ":")
			d[strings.TrimSpace(name)] = true
		}
	}
	disabledCache[suite] = d
	return d
}

// sourceLine is an mtr "source" command: --source x, source x;
var sourceLine = regexp.MustCompile(`^\s*(?:--\s*)?source\s+([^\s;]+)`)

var harmlessNoBinlog = regexp.MustCompile(`set\s+statement\s+sql_log_bin\s*=\s*0\s+for\s+call\s+mtr\.add_suppression`)

// readMTR reads a test file and, recursively, the files it sources.
func readMTR(name, suite string) (*mtrFile, error) {
	f := &mtrFile{name: name, suite: suite}
	var text strings.Builder
	seen := map[string]bool{}
	var read func(rel string, depth int) error
	read = func(rel string, depth int) error {
		if seen[rel] || depth > 12 {
			return nil
		}
		seen[rel] = true
		lines, err := mtrLines(rel)
		if err != nil {
			return err
		}
		f.sources = append(f.sources, rel)
		for _, l := range lines {
			text.WriteString(strings.ToLower(l))
			text.WriteByte('\n')
			if m := sourceLine.FindStringSubmatch(l); m != nil && !strings.Contains(m[1], "$") {
				if inc := resolveSource(m[1], rel); inc != "" {
					if err := read(inc, depth+1); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	if err := read(name, 0); err != nil {
		return nil, err
	}
	// mtr's include/have_innodb.inc adds a log suppression that stays out of the binlog: no data.
	f.text = harmlessNoBinlog.ReplaceAllString(text.String(), "")
	return f, nil
}

var mtrCache = map[string][]string{}

// mtrLines are a file's lines without comments, read once: hundreds of
// files source the same includes.
func mtrLines(rel string) ([]string, error) {
	if l, ok := mtrCache[rel]; ok {
		return l, nil
	}
	fh, err := os.Open(filepath.Join(mtrBase, rel))
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	var lines []string
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	mtrCache[rel] = lines
	return lines, sc.Err()
}

// resolveSource finds a sourced path the way mariadb-test does: from the
// base directory, else beside the sourcing file.
func resolveSource(p, from string) string {
	for _, c := range []string{p, filepath.Join(filepath.Dir(from), p), filepath.Join(filepath.Dir(filepath.Dir(from)), p)} {
		c = filepath.Clean(c)
		if st, err := os.Stat(filepath.Join(mtrBase, c)); err == nil && !st.IsDir() {
			return c
		}
	}
	return ""
}

// mtrSelection is every file of the suites with the rule that skips it,
// if any.
type mtrChoice struct {
	file    *mtrFile
	rule    *skipRule
	matched string
}

func mtrSelection(t testing.TB) []mtrChoice {
	t.Helper()
	var out []mtrChoice
	for _, suite := range conformanceSuites {
		var names []string
		for _, glob := range []string{"suite/" + suite + "/t/*.test", "suite/" + suite + "/*.test"} {
			m, _ := filepath.Glob(filepath.Join(mtrBase, glob))
			for _, p := range m {
				rel, _ := filepath.Rel(mtrBase, p)
				names = append(names, rel)
			}
		}
		sort.Strings(names)
		for _, n := range names {
			f, err := readMTR(n, suite)
			if err != nil {
				t.Fatalf("read MariaDB regression test %s: %v", n, err)
			}
			rule, matched := skipReason(f)
			out = append(out, mtrChoice{file: f, rule: rule, matched: matched})
		}
	}
	if len(out) == 0 {
		t.Skipf("no MariaDB regression tests under %s: install mariadb-test-data (make deps)", mtrBase)
	}
	return out
}

// TestConformanceSelection checks the skip rules on files whose fate is
// known, so a rule that stops matching is seen here and not as a
// replication failure.
func TestConformanceSelection(t *testing.T) {
	if _, err := os.Stat(filepath.Join(mtrBase, "suite", "json")); err != nil {
		t.Skipf("no MariaDB regression tests under %s: install mariadb-test-data (make deps)", mtrBase)
	}
	// Only the files named here and in the Go lists: the whole selection
	// is slow under the race detector (TestConformanceDoc reads it all).
	pins := map[string]string{
		"suite/rpl/t/rpl_alter.test":                "two-servers",
		"suite/binlog/t/binlog_admin_cmd_kill.test": "debug",
		"suite/binlog/t/binlog_drop_if_exists.test": "binlog-admin",
		"suite/binlog/t/binlog_bug23533.test":       "connections",
		"suite/json/t/json_no_table.test":           "",
		"suite/gcol/t/gcol_select_innodb.test":      "",
		"suite/versioning/t/simple.test":            "",
	}
	names := slices.Concat(slices.Collect(maps.Keys(pins)), shortConformance, slices.Collect(maps.Keys(pendingFixes)))
	byName := map[string]mtrChoice{}
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(mtrBase, n)); err != nil {
			continue // another MariaDB release
		}
		f, err := readMTR(n, strings.Split(n, "/")[1])
		if err != nil {
			t.Fatal(err)
		}
		rule, matched := skipReason(f)
		byName[n] = mtrChoice{file: f, rule: rule, matched: matched}
	}
	for name, want := range pins {
		c, ok := byName[name]
		if !ok {
			continue // another MariaDB release
		}
		got := ""
		if c.rule != nil {
			got = c.rule.name
		}
		if got != want {
			t.Errorf("%s: rule %q (matched %q), want %q", name, got, c.matched, want)
		}
	}
	for name := range pendingFixes {
		if c, ok := byName[name]; ok && c.rule != nil {
			t.Errorf("%s is in pendingFixes but rule %s skips it (matched %q)", name, c.rule.name, c.matched)
		}
		if slices.Contains(shortConformance, name) {
			t.Errorf("%s is both in shortConformance and in pendingFixes", name)
		}
	}
	for _, name := range shortConformance {
		if c, ok := byName[name]; ok && c.rule != nil {
			t.Errorf("%s is in the short form but rule %s skips it (matched %q)", name, c.rule.name, c.matched)
		}
	}
}

// conformanceDoc renders docs/conformance.md's generated part.
func conformanceDoc(sel []mtrChoice) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| rule | why the file is skipped | files |\n|---|---|---|\n")
	n := map[string]int{}
	for _, c := range sel {
		if c.rule != nil {
			n[c.rule.name]++
		}
	}
	for _, r := range skipRules {
		fmt.Fprintf(&b, "| `%s` | %s | %d |\n", r.name, r.reason, n[r.name])
	}
	b.WriteString("\n### Files skipped, by rule\n\n")
	for _, r := range skipRules {
		var names []string
		for _, c := range sel {
			if c.rule == &skipRules[indexOfRule(r.name)] {
				names = append(names, "`"+strings.TrimPrefix(c.file.name, "suite/")+"` ("+c.matched+")")
			}
		}
		if len(names) == 0 {
			continue
		}
		fmt.Fprintf(&b, "- **%s**: %s\n", r.name, strings.Join(names, ", "))
	}
	var run []string
	for _, c := range sel {
		if c.rule == nil {
			run = append(run, "`"+strings.TrimPrefix(c.file.name, "suite/")+"`")
		}
	}
	fmt.Fprintf(&b, "\n### Files the long form runs (%d)\n\n%s\n", len(run), strings.Join(run, ", "))
	return b.String()
}

func indexOfRule(name string) int {
	for i, r := range skipRules {
		if r.name == name {
			return i
		}
	}
	return -1
}

// docMarker starts the part of docs/conformance.md that
// TestConformanceDoc writes.
const docMarker = "<!-- generated by TestConformanceDoc: CONFORMANCE_UPDATE_DOC=1 go test -run TestConformanceDoc ./internal/e2e/ -->\n"

// TestConformanceDoc keeps docs/conformance.md's list of skipped files
// true: every rule is in its table, and with CONFORMANCE_UPDATE_DOC=1 it
// rewrites the table and the lists from the installed regression tests.
func TestConformanceDoc(t *testing.T) {
	const path = "../../docs/conformance.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	head, _, ok := strings.Cut(string(b), docMarker)
	if !ok {
		t.Fatalf("%s lacks the line %q", path, docMarker)
	}
	if os.Getenv("CONFORMANCE_UPDATE_DOC") != "" {
		if _, err := os.Stat(filepath.Join(mtrBase, "suite")); err != nil {
			t.Skipf("no MariaDB regression tests under %s", mtrBase)
		}
		sel := mtrSelection(t)
		if err := os.WriteFile(path, []byte(head+docMarker+conformanceDoc(sel)), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	for _, r := range skipRules {
		if !strings.Contains(string(b), fmt.Sprintf("| `%s` | %s |", r.name, r.reason)) {
			t.Errorf("%s does not list rule %s with its reason; run CONFORMANCE_UPDATE_DOC=1 go test -run TestConformanceDoc ./internal/e2e/", path, r.name)
		}
	}
}
