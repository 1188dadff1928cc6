package extract

import (
	"testing"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// TestAfterVector: every transaction a client commits carries how far
// each other service had been applied into the database when it
// committed: at first what the tracking rows say as the run starts,
// then what each applier's transaction (dropped itself) wrote into its
// tracking row. The service's own tracking row plays no part.
func TestAfterVector(t *testing.T) {
	t.Parallel()
	srv, db := startDB(t)
	for _, q := range []string{
		"CREATE DATABASE app",
		"CREATE TABLE app.t (id INT PRIMARY KEY)",
	} {
		testutil.Exec(t, db, q)
	}
	for _, svc := range []string{"east", "west", "north"} {
		testutil.Exec(t, db, "CREATE DATABASE tungsten_"+svc)
		testutil.Exec(t, db, "CREATE TABLE tungsten_"+svc+".trep_commit_seqno (task_id INT PRIMARY KEY, seqno BIGINT, fragno INT, last_frag CHAR(1), source_id VARCHAR(128), epoch_number BIGINT)")
		testutil.Exec(t, db, "INSERT INTO tungsten_"+svc+".trep_commit_seqno VALUES (0, -1, 0, '1', '', -1)")
	}
	testutil.Exec(t, db, "UPDATE tungsten_east.trep_commit_seqno SET seqno = 7, epoch_number = 3")
	x := newExtractor(t, srv, func(c *Config) { c.Service, c.SourceID = "west", "west1" })
	from := currentPosition(t, x)
	c := start(t, x, from)
	testutil.Exec(t, db, "INSERT INTO app.t VALUES (1)")
	got := c.wait(t, 1)
	same(t, got[0][0].GetAfter(), []*thlpb.After{{Service: "east", Seqno: 7, Epoch: 3}})

	// An applier of east commits seqno 9, then one of north seqno 4.
	a := conn(t, db, "BEGIN")
	execConn(t, a, "INSERT INTO app.t VALUES (100)")
	execConn(t, a, "UPDATE tungsten_east.trep_commit_seqno SET seqno = 9 WHERE task_id = 0")
	execConn(t, a, "COMMIT")
	testutil.Exec(t, db, "INSERT INTO app.t VALUES (2)")
	testutil.Exec(t, db, "UPDATE tungsten_north.trep_commit_seqno SET seqno = 4, epoch_number = 0")
	// west's own tracking row (a master records its position).
	testutil.Exec(t, db, "UPDATE tungsten_west.trep_commit_seqno SET seqno = 50, epoch_number = 0")
	testutil.Exec(t, db, "INSERT INTO app.t VALUES (3)")
	// An applier whose transaction is rolled back applied nothing.
	r := conn(t, db, "BEGIN")
	execConn(t, r, "UPDATE tungsten_east.trep_commit_seqno SET seqno = 99 WHERE task_id = 0")
	execConn(t, r, "ROLLBACK")
	testutil.Exec(t, db, "INSERT INTO app.t VALUES (4)")
	got = c.wait(t, 4)
	c.stop(t)
	same(t, got[1][0].GetAfter(), []*thlpb.After{{Service: "east", Seqno: 9, Epoch: 3}})
	same(t, got[2][0].GetAfter(), []*thlpb.After{{Service: "east", Seqno: 9, Epoch: 3}, {Service: "north", Seqno: 4}})
	same(t, got[3][0].GetAfter(), []*thlpb.After{{Service: "east", Seqno: 9, Epoch: 3}, {Service: "north", Seqno: 4}})
}

func same(t *testing.T, got, want []*thlpb.After) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = got[i].GetService() == want[i].GetService() && got[i].GetSeqno() == want[i].GetSeqno() && got[i].GetEpoch() == want[i].GetEpoch()
	}
	if !ok {
		t.Errorf("after %v, want %v", got, want)
	}
}
