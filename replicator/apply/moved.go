package apply

import (
	"google.golang.org/protobuf/proto"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// An UPDATE that moves a row to another primary key. InnoDB does a
// REPLACE over a row that holds one of its unique values as an UPDATE
// where it can: the binlog has an UPDATE that moves the row to the new
// primary key (the next AUTO_INCREMENT value), holding the same unique
// value. Applications move keys too (UPDATE t SET id = …). Rows are
// known by their primary keys, and a row at another key is another row:
// under converge, conflict mode applies such an UPDATE as what REPLACE
// says it is, a DELETE of the old row and an INSERT of the new one, each
// checked and resolved on its own (the other policies promise no common
// end, and keep the UPDATE). Applied as an UPDATE of the old row, it lost where
// the other site's change came first (its row changed or gone) and stood
// where it came second, moved out of reach of the other site's change: a
// losing REPLACE over a row the winning site deleted stayed on the hosts
// that met it first only (TestConflictUniqueCrossingConverges). So the
// old row's part loses to a concurrent change of it, and the new row's
// stands unless its key or a unique value crosses the other site's rows
// (a losing REPLACE over a row the winner changed in place is kept out by
// its unique value, which the winner's row holds). The block path needs
// no other questions: where the old row holds its before-image and the
// other site did not change it concurrently (checked and asked about, as
// are the new row's key and the unique values it moves onto), the other
// site cannot have taken a unique value the old row kept. A table with
// foreign keys keeps the UPDATE: a DELETE there would cascade.

// movedParts returns, for a row of an UPDATE of t that moves it to
// another primary key (as the source marked it), a DELETE of its
// before-image and an INSERT of its after-image; nil for any other row,
// or a table with foreign keys.
func movedParts(t *table, rc *thlpb.RowChange, row *thlpb.Row) []*thlpb.RowChange {
	if rc.GetAction() != thlpb.RowChange_UPDATE || t.foreign || !rowMovesKey(rc, row) {
		return nil
	}
	part := func(action thlpb.RowChange_Action, r *thlpb.Row) *thlpb.RowChange {
		return &thlpb.RowChange{Schema: rc.GetSchema(), Table: rc.GetTable(), Action: action, Columns: rc.GetColumns(),
			NoForeignKeyChecks: rc.GetNoForeignKeyChecks(), Rows: []*thlpb.Row{r}}
	}
	return []*thlpb.RowChange{
		part(thlpb.RowChange_DELETE, &thlpb.Row{Before: row.GetBefore()}),
		part(thlpb.RowChange_INSERT, &thlpb.Row{After: row.GetAfter()}),
	}
}

// movesKey says whether an UPDATE changes the key of one of its rows.
func movesKey(rc *thlpb.RowChange) bool {
	for _, row := range rc.GetRows() {
		if rowMovesKey(rc, row) {
			return true
		}
	}
	return false
}

// rowMovesKey says whether a row of an UPDATE changes its key (the
// columns the source marked).
func rowMovesKey(rc *thlpb.RowChange, row *thlpb.Row) bool {
	before, after := row.GetBefore(), row.GetAfter()
	for i, c := range rc.GetColumns() {
		if c.GetKey() && (i >= len(before) || i >= len(after) || !proto.Equal(before[i], after[i])) {
			return true
		}
	}
	return false
}
