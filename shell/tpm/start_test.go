package tpm

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/grpc"

	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// startLines are the lines of out that say tpm started an agent, or found
// it running.
func startLines(out string) []string {
	var got []string
	for _, l := range lines(out) {
		if strings.Contains(l, " start: ") || strings.Contains(l, ": already running") {
			got = append(got, l)
		}
	}
	return got
}

// TestInstallStartsAgents: with start=true (the default) tpm install
// starts the agents that do not run through their wrappers, replicators
// first, then the manager, then the connector, also when the units went
// into the install directory; an agent that runs is left alone; a start
// that fails is one sentence and exit 1, the other agents start. tpm
// update starts nothing, nor does start=false, nor a sandbox.
func TestInstallStartsAgents(t *testing.T) {
	f, _, cluster := realFixture(t, true, false)
	xsite := f.xsiteHome(t)
	r := f.mustRun("install", "--ini", f.ini, "--no-profile")
	want := []string{
		"east1: " + cluster + "/bin/replicator start: replicator " + cluster + " start",
		"east1: " + xsite + "/bin/mm_replicator start: replicator " + xsite + " start",
		"east1: " + cluster + "/bin/manager start: manager " + cluster + " start",
		"east1: " + cluster + "/bin/connector start: connector " + cluster + " start",
	}
	if got := lines(r.out); len(got) < len(want) || !slices.Equal(got[len(got)-len(want):], want) {
		t.Errorf("install's output does not end with the starts\n%s\n%s", strings.Join(want, "\n"), r)
	}
	if got := startLines(f.mustRun("update", "--ini", f.ini, "--no-profile", "--no-restart").out); len(got) != 0 {
		t.Errorf("tpm update started agents: %q", got)
	}

	// A connector that runs (a process with the install's mark in its pid file).
	agent := exec.Command("sh", "-c", "sleep 60; :", "sh", "--home="+cluster)
	agent.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-agent.Process.Pid, syscall.SIGKILL); agent.Wait() })
	os.WriteFile(install.PIDFile(cluster, "connector"), []byte(strconv.Itoa(agent.Process.Pid)+"\n"), 0o644)
	failing(t, f.staging, "manager", "start")
	r = f.run("install", "--ini", f.ini, "--no-profile", "--only", "cluster")
	wantErr := "tpm install: east1: " + cluster + "/bin/manager start failed (exit status 1: manager start: Tungsten Service (pid 4242) did not start); the install is written: once that is fixed, run " + cluster + "/bin/manager start\n"
	want = []string{
		"east1: " + cluster + "/bin/replicator start: replicator " + cluster + " start",
		"east1: " + cluster + "/bin/connector: already running (PID:" + strconv.Itoa(agent.Process.Pid) + ")",
	}
	if got := startLines(r.out); r.code != ExitProblems || r.err != wantErr || !slices.Equal(got, want) {
		t.Errorf("got %s\nwant exit 1, %swith the lines\n%s", r, wantErr, strings.Join(want, "\n"))
	}

	f.editINI("[defaults]\n", "[defaults]\nstart=false\n")
	if got := startLines(f.mustRun("install", "--ini", f.ini, "--no-profile").out); len(got) != 0 {
		t.Errorf("with start=false tpm install started agents: %q", got)
	}

	sb := newFixture(t)
	if got := startLines(sb.mustRun("install", "--ini", sb.ini, "--host", "east1").out); len(got) != 0 {
		t.Errorf("tpm install started a sandbox's agents: %q", got)
	}
}

// fakeReplicator is a replicator's control API that answers Services.
type fakeReplicator struct {
	replicatorpb.UnimplementedReplicatorServer
	services []*replicatorpb.ServiceStatus
}

func (f *fakeReplicator) Services(context.Context, *replicatorpb.ServicesRequest) (*replicatorpb.ServicesReply, error) {
	return &replicatorpb.ServicesReply{Services: f.services}, nil
}

// TestInstallStartAndReport: start-and-report=true starts the agents
// (start=false does not stop it) and then prints, for each, its status:
// the replicator's services from its control API, the manager's and the
// connector's wrapper status.
func TestInstallStartAndReport(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	replicatorpb.RegisterReplicatorServer(srv, &fakeReplicator{services: []*replicatorpb.ServiceStatus{
		{Service: "east", Role: "master", State: "ONLINE", StateKind: replicatorpb.ReplicatorState_REPLICATOR_STATE_ONLINE, AppliedLastSeqno: 12},
		{Service: "west_east", Role: "slave", State: "OFFLINE:ERROR", StateKind: replicatorpb.ReplicatorState_REPLICATOR_STATE_OFFLINE_ERROR, AppliedLastSeqno: -1, PendingError: "cannot connect"},
	}})
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)

	f, _, cluster := realFixture(t, false, false)
	f.editINI("[defaults]\n", "[defaults]\nstart=false\nstart-and-report=true\nrmi-port="+port+"\n")
	f.editINI("[east]\n", "[hosts]\neast1=127.0.0.1\n\n[east]\n")
	r := f.mustRun("install", "--ini", f.ini, "--no-profile", "--only", "cluster")
	bin := filepath.Join(cluster, "bin")
	want := []string{
		"east1: " + bin + "/replicator start: replicator " + cluster + " start",
		"east1: " + bin + "/manager start: manager " + cluster + " start",
		"east1: " + bin + "/connector start: connector " + cluster + " start",
		"east1: " + bin + "/replicator services: east ONLINE (master, applied seqno 12); west_east OFFLINE:ERROR (slave, nothing applied yet, error: cannot connect)",
		"east1: " + bin + "/manager status: manager " + cluster + " status",
		"east1: " + bin + "/connector status: connector " + cluster + " status",
	}
	if got := lines(r.out); len(got) < len(want) || !slices.Equal(got[len(got)-len(want):], want) {
		t.Errorf("install's output does not end with\n%s\n%s", strings.Join(want, "\n"), r)
	}
}
