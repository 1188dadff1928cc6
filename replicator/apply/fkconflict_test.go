package apply

import (
	"fmt"
	"strings"
	"testing"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// One site deletes a parent row while the other inserts a child of it.
// With ON DELETE CASCADE every host ends without both, whichever comes
// first and whichever site wins: where the child comes second it is not
// applied (recorded once, "parent gone"), where it comes first the
// parent's DELETE cascades. With RESTRICT no rule gives every host the same
// rows (the parent's DELETE is refused where the child came first): the
// service stops, saying why.
func TestConflictParentGone(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	pc, cc := cols("id", "v"), cols("id", "pid")
	delP := func(seqno uint64) *thlpb.Event {
		return from("east", rowsEvent(seqno, thlpb.RowChange_DELETE, "p", pc, &thlpb.Row{Before: row(vInt(1), vBytes("orig"))}))
	}
	insC := func(seqno uint64) *thlpb.Event {
		return from("west", rowsEvent(seqno, thlpb.RowChange_INSERT, "c", cc, &thlpb.Row{After: row(vInt(10), vInt(1))}))
	}
	for _, tc := range []struct {
		rule        string
		order       []string
		childFirst  bool
		want, stops string
	}{
		{"ON DELETE CASCADE", []string{"east", "west"}, false, "[1 INSERT id=10 parent gone kept (west, converge)]", ""},
		{"ON DELETE CASCADE", []string{"west", "east"}, false, "[1 INSERT id=10 parent gone kept (west, converge)]", ""},
		{"ON DELETE CASCADE", []string{"east", "west"}, true, "[]", ""},
		{"", []string{"east", "west"}, false, "", "foreign key constraint fails"},
	} {
		t.Run(fmt.Sprintf("%q %v child first %v", tc.rule, tc.order, tc.childFirst), func(t *testing.T) {
			freshApp(t, db, "CREATE TABLE app.p (id INT PRIMARY KEY, v VARCHAR(10))",
				"CREATE TABLE app.c (id INT PRIMARY KEY, pid INT, FOREIGN KEY (pid) REFERENCES app.p (id) "+tc.rule+")",
				"INSERT INTO app.p VALUES (1, 'orig')")
			a := newConflictApplier(t, srv.Addr(), 1, PolicyConverge, tc.order...)
			evs := []*thlpb.Event{delP(0), insC(1)}
			if tc.childFirst {
				evs = []*thlpb.Event{insC(0), delP(1)}
			}
			// One block each, as on a host where they arrive apart (a
			// block of one transaction failing otherwise stops).
			var err error
			for _, ev := range evs {
				if err = runUntil(t, a, ev.GetSeqno(), ev); err != nil {
					break
				}
			}
			if tc.stops != "" {
				if err == nil || !strings.Contains(err.Error(), tc.stops) {
					t.Fatalf("err %v, want the service stopped with %q", err, tc.stops)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := testutil.QueryString(t, db, "SELECT CONCAT((SELECT COUNT(*) FROM app.p), ' ', (SELECT COUNT(*) FROM app.c))"); got != "0 0" {
				t.Errorf("parents and children: %s, want 0 0", got)
			}
			if got := fmt.Sprint(conflictRows(t, db)); got != tc.want {
				t.Errorf("conflicts = %s, want %s", got, tc.want)
			}
		})
	}
}
