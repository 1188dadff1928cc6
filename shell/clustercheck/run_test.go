package clustercheck

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// fakeRep is one host's replicator: a master writes markers (check),
// every host answers its results (results) and what a stream's
// transactions touched (touched).
type fakeRep struct {
	API
	host    string
	role    string
	check   func(req *replicatorpb.CheckRequest, id uint64) []*replicatorpb.CheckProgress
	results func(id uint64) []*replicatorpb.CheckResult
	touched func(req *replicatorpb.TouchedRequest) *replicatorpb.TouchedReply
	checks  int
}

func (f *fakeRep) Status(_ context.Context, in *replicatorpb.StatusRequest, _ ...grpc.CallOption) (*replicatorpb.StatusReply, error) {
	return &replicatorpb.StatusReply{Status: &replicatorpb.ServiceStatus{Service: in.GetService(), Role: f.role, State: "ONLINE", StateKind: replicatorpb.ReplicatorState_REPLICATOR_STATE_ONLINE}}, nil
}

func (f *fakeRep) Check(_ context.Context, in *replicatorpb.CheckRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[replicatorpb.CheckProgress], error) {
	f.checks++
	return &stream{msgs: f.check(in, uint64(f.checks))}, nil
}

func (f *fakeRep) CheckResults(_ context.Context, in *replicatorpb.CheckResultsRequest, _ ...grpc.CallOption) (*replicatorpb.CheckResultsReply, error) {
	return &replicatorpb.CheckResultsReply{Results: f.results(in.GetCheckId())}, nil
}

func (f *fakeRep) Touched(_ context.Context, in *replicatorpb.TouchedRequest, _ ...grpc.CallOption) (*replicatorpb.TouchedReply, error) {
	return f.touched(in), nil
}

func (f *fakeRep) Locate(_ context.Context, in *replicatorpb.LocateRequest, _ ...grpc.CallOption) (*replicatorpb.LocateReply, error) {
	return &replicatorpb.LocateReply{Seqno: 100}, nil // where the master stood: east 100
}

type stream struct {
	grpc.ClientStream
	msgs []*replicatorpb.CheckProgress
}

func (s *stream) Recv() (*replicatorpb.CheckProgress, error) {
	if len(s.msgs) == 0 {
		return nil, io.EOF
	}
	m := s.msgs[0]
	s.msgs = s.msgs[1:]
	return m, nil
}

var chunk0 = &replicatorpb.CheckChunk{Chunk: 0, Schema: "app", Table: "k", Key: []string{"id"}, Hi: "100", HasHi: true, HiInt: 100, IntKey: true, TextKey: true, RowsQuery: "/* rows */ ..."}

// deployment is east1 (master of east) and west2 (applying east).
func deployment(west2 func(id uint64, rows bool) *replicatorpb.CheckResult, touched func(*replicatorpb.TouchedRequest) *replicatorpb.TouchedReply) (*Checker, *fakeRep) {
	var rowsMode bool
	master := &fakeRep{host: "east1", role: "master"}
	master.check = func(req *replicatorpb.CheckRequest, id uint64) []*replicatorpb.CheckProgress {
		ch := chunk0
		if len(req.GetChunks()) > 0 {
			ch = req.GetChunks()[0]
		}
		rowsMode = ch.GetRows()
		r := &replicatorpb.CheckResult{CheckId: id, Chunk: 0, Count: 3, Crc: "aa", BinlogPosition: "mysql-bin.000001:500", Vector: map[string]int64{"west": 50}}
		if rowsMode {
			r.Rows = map[string]string{"1": "h1", "2": "h2", "3": "h3"}
		}
		return []*replicatorpb.CheckProgress{{CheckId: id, Tables: 1}, {CheckId: id, Chunk: ch, Result: r}, {CheckId: id, Tables: 1, TablesDone: 1}}
	}
	master.results = func(uint64) []*replicatorpb.CheckResult { return nil }
	master.touched = touched
	replica := &fakeRep{host: "west2", role: "slave", touched: touched}
	replica.results = func(id uint64) []*replicatorpb.CheckResult {
		if r := west2(id, rowsMode); r != nil {
			r.CheckId = id
			return []*replicatorpb.CheckResult{r}
		}
		return nil
	}
	reps := map[string]*fakeRep{"a1": master, "b2": replica}
	c := &Checker{
		Streams: []Stream{
			{Service: "east", Replicators: []Replicator{{Host: "east1", Addr: "a1"}, {Host: "west2", Addr: "b2"}}},
			{Service: "west", Replicators: []Replicator{{Host: "west2", Addr: "b2"}}},
		},
		Dial: func(_ context.Context, addr string) (API, func(), error) { return reps[addr], func() {}, nil },
	}
	return c, replica
}

func run(t *testing.T, c *Checker) (*Report, string) {
	t.Helper()
	rep, err := c.Run(context.Background(), "east", Options{Wait: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	rep.WriteText(&b)
	return rep, b.String()
}

func untouched(*replicatorpb.TouchedRequest) *replicatorpb.TouchedReply {
	return &replicatorpb.TouchedReply{}
}

// TestCheckVerdicts: a host equal to the master; different with both at
// the same seqnos (the master's own stream placed by its binlog
// position), the row that differs then named from a listing; different with the other stream apart but untouched;
// changing each time and listed row by row, each differing row changed
// between the snapshots and equal in a later try (equal); a row that
// differs and no transaction changed (different, named); and a host with
// no result (missing).
func TestCheckVerdicts(t *testing.T) {
	at := func(crc string, west int64) *replicatorpb.CheckResult {
		return &replicatorpb.CheckResult{Chunk: 0, Count: 3, Crc: crc, Vector: map[string]int64{"east": 100, "west": west}}
	}
	for _, c := range []struct {
		name   string
		west2  func(id uint64, rows bool) *replicatorpb.CheckResult
		touch  func(*replicatorpb.TouchedRequest) *replicatorpb.TouchedReply
		equal  bool
		output string
	}{
		{"equal", func(uint64, bool) *replicatorpb.CheckResult { return at("aa", 70) }, nil, true, "app.k: equal on every host (3 rows, 1 chunks)"},
		{"different at the same point, rows named", func(_ uint64, rows bool) *replicatorpb.CheckResult {
			r := at("bb", 50)
			if rows {
				r.Rows = map[string]string{"1": "h1", "2": "zz", "3": "h3"}
			}
			return r
		}, nil, false, "west2 chunk 0 (id (start)..100): different: 1 row(s) differ from east1's: id=2 differs"},
		{"different, untouched between", func(uint64, bool) *replicatorpb.CheckResult { return at("bb", 60) }, untouched, false, "west2 chunk 0 (id (start)..100): different"},
		{"changing, then equal row by row", func(id uint64, rows bool) *replicatorpb.CheckResult {
			r := at("bb", 60)
			if rows {
				r.Rows = map[string]string{"1": "h1", "2": "x", "3": "h3"}
				if id == 3 {
					r.Rows = map[string]string{"1": "y", "2": "h2", "3": "h3"} // row 2 equal now
				}
			}
			return r
		}, func(r *replicatorpb.TouchedRequest) *replicatorpb.TouchedReply {
			return &replicatorpb.TouchedReply{Touched: true, Keys: []string{"1", "2"}}
		}, true, "app.k: equal on every host"},
		{"a row different and untouched", func(_ uint64, rows bool) *replicatorpb.CheckResult {
			r := at("bb", 60)
			if rows {
				r.Rows = map[string]string{"1": "h1", "2": "x", "3": "h3", "4": "h4"}
			}
			return r
		}, func(r *replicatorpb.TouchedRequest) *replicatorpb.TouchedReply {
			return &replicatorpb.TouchedReply{Touched: true, Keys: []string{"2"}}
		}, false, "different: 1 row(s) differ from east1's: id=4 there only (not on east1)"},
		{"missing", func(uint64, bool) *replicatorpb.CheckResult { return nil }, nil, false, "west2 chunk 0 (id (start)..100): missing: no result"},
	} {
		t.Run(c.name, func(t *testing.T) {
			touch := c.touch
			if touch == nil {
				touch = func(*replicatorpb.TouchedRequest) *replicatorpb.TouchedReply {
					t.Error("asked what transactions touched")
					return &replicatorpb.TouchedReply{All: true}
				}
			}
			checker, _ := deployment(c.west2, touch)
			rep, out := run(t, checker)
			if rep.Equal() != c.equal || !strings.Contains(out, c.output) {
				t.Errorf("equal %v, want %v; the report does not say %q:\n%s", rep.Equal(), c.equal, c.output, out)
			}
		})
	}
}

// TestCheckNeedsAnOnlineMaster: with no ONLINE master of the service, the
// check says so and starts nothing.
func TestCheckNeedsAnOnlineMaster(t *testing.T) {
	c, _ := deployment(func(uint64, bool) *replicatorpb.CheckResult { return nil }, untouched)
	c.Streams[0].Replicators = c.Streams[0].Replicators[1:]
	if _, err := c.Run(context.Background(), "east", Options{}); err == nil || !strings.Contains(err.Error(), "no replicator of east is an ONLINE master") {
		t.Errorf("Run without a master: %v", err)
	}
	if _, err := c.Run(context.Background(), "north", Options{}); err == nil || !strings.Contains(err.Error(), "no service north") {
		t.Errorf("Run of an unknown service: %v", err)
	}
}
