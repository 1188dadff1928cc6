package apply

import (
	"context"
	"fmt"
)

// parentGone resolves a change whose row references a parent row this
// database does not hold (err, the server's 1452): another site deleted
// the parent concurrently (each stream is applied after what its source
// had applied, so the parent was there at the source). No policy can make
// the row here. Where the parent's DELETE came second instead, ON DELETE
// CASCADE deleted the row: so, where every foreign key of the table
// cascades, the change is not applied and the conflict recorded (kept),
// and every host ends without the row. Where one does not (RESTRICT, NO
// ACTION, SET NULL: the other order keeps the row, or keeps it with a
// NULL, or refuses the DELETE), err stands and the service stops, saying
// why: no rule here gives every host the same rows. stop stops.
func (w *rowWork) parentGone(ctx context.Context, err error) error {
	cascades, qerr := w.a.allCascade(ctx, w.t)
	if qerr != nil {
		return fmt.Errorf("%w (reading the table's foreign keys: %v)", err, qerr)
	}
	if !cascades {
		return err
	}
	w.c.Kind = KindParent
	if _, err := w.decide(); err != nil {
		return err
	}
	w.c.Decision = DecisionKept
	return nil
}

// allCascade reports whether every foreign key of t deletes its rows with
// their parent (ON DELETE CASCADE).
func (a *Applier) allCascade(ctx context.Context, t *table) (bool, error) {
	var n, cascade int
	err := a.conn.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(SUM(DELETE_RULE = 'CASCADE'), 0) FROM information_schema.REFERENTIAL_CONSTRAINTS "+
		"WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?", t.schema, t.name).Scan(&n, &cascade)
	return n > 0 && n == cascade, err
}
