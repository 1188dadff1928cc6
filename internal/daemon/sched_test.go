package daemon

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLeanEnv(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      []string
		godebug  string
		wantSize int
	}{
		{"no GODEBUG", []string{"PATH=/bin"}, "GODEBUG=" + schedtrace, 2},
		{"empty GODEBUG", []string{"GODEBUG=", "PATH=/bin"}, "GODEBUG=" + schedtrace, 2},
		{"other settings kept", []string{"GODEBUG=gctrace=1"}, "GODEBUG=gctrace=1," + schedtrace, 1},
		{"operator's schedtrace wins", []string{"GODEBUG=schedtrace=1000,gctrace=1"}, "GODEBUG=schedtrace=1000,gctrace=1", 1},
		{"spaces around a key", []string{"GODEBUG=gctrace=1, schedtrace=5"}, "GODEBUG=gctrace=1, schedtrace=5", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.env)
			got := leanEnv(in)
			if !slices.Equal(in, tc.env) {
				t.Errorf("leanEnv changed its argument: %q", in)
			}
			if len(got) != tc.wantSize {
				t.Errorf("leanEnv(%q) = %q: %d entries, want %d", tc.env, got, len(got), tc.wantSize)
			}
			if !slices.Contains(got, tc.godebug) {
				t.Errorf("leanEnv(%q) = %q, want it to hold %q", tc.env, got, tc.godebug)
			}
		})
	}
}

// runner is an agent that records the GOMAXPROCS it runs with.
type runner struct{ procs *int }

func (r runner) Run(context.Context) error {
	*r.procs = runtime.GOMAXPROCS(0)
	return nil
}

// TestLeanAgent runs a Lean agent through Main: in the foreground it has
// one P (unless GOMAXPROCS is set), and `start` hands the started process
// the GODEBUG setting (a shell that writes $GODEBUG and its pid file).
func TestLeanAgent(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("CARBIDE_HOME", dir)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	runtime.GOMAXPROCS(2)
	pidFile, got := filepath.Join(dir, "agent.pid"), filepath.Join(dir, "godebug")
	agent := func(lean bool, procs *int) Agent {
		return Agent{Program: "lean-test", Lean: lean, StopTimeout: 5 * time.Second,
			Spec: func(home string, out io.Writer) Spec {
				return Spec{Name: "lean test agent", PIDFile: pidFile, LogFile: filepath.Join(dir, "agent.log"), Out: out, Mark: dir,
					Args: []string{"/bin/sh", "-c", `echo "$GODEBUG" > ` + got + `; echo $$ > ` + pidFile + `; exec sleep 60`, dir},
					Ready: func(context.Context) error {
						_, err := os.Stat(pidFile)
						return err
					}}
			},
			New: func(string, *slog.Logger) (Runner, error) { return runner{procs}, nil }}
	}
	for _, tc := range []struct {
		name      string
		lean      bool
		env       string
		wantProcs int
	}{
		{"lean", true, "", 1},
		{"operator's GOMAXPROCS", true, "2", 2},
		{"not lean", false, "", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOMAXPROCS", tc.env)
			runtime.GOMAXPROCS(2)
			var procs int
			if code := Main(context.Background(), agent(tc.lean, &procs), []string{"run"}, io.Discard, io.Discard); code != 0 {
				t.Fatalf("run: exit %d", code)
			}
			if procs != tc.wantProcs {
				t.Errorf("the agent ran with GOMAXPROCS %d, want %d", procs, tc.wantProcs)
			}
		})
	}
	for _, tc := range []struct {
		name, godebug, want string
		lean                bool
	}{
		{"lean", "", schedtrace, true},
		{"lean, operator's GODEBUG kept", "gctrace=0", "gctrace=0," + schedtrace, true},
		{"not lean", "gctrace=0", "gctrace=0", false},
	} {
		t.Run("start "+tc.name, func(t *testing.T) {
			t.Setenv("GODEBUG", tc.godebug)
			os.Remove(pidFile)
			a := agent(tc.lean, new(int))
			var out strings.Builder
			if code := Main(context.Background(), a, []string{"start"}, &out, &out); code != 0 {
				t.Fatalf("start: exit %d: %s", code, out.String())
			}
			t.Cleanup(func() { Main(context.Background(), a, []string{"stop"}, io.Discard, io.Discard) })
			b, err := os.ReadFile(got)
			if err != nil {
				t.Fatal(err)
			}
			if s := strings.TrimSpace(string(b)); s != tc.want {
				t.Errorf("the started process had GODEBUG=%q, want %q", s, tc.want)
			}
		})
	}
}
