package apply

// marks are offsets in a block's SQL, kept as the SQL is sent in parts
// (fit, sendPart) or copied (parallel apply): cuts, after each BINLOG
// statement (execCut ends a query there), and rows, after each statement
// whose matched rows conflict detection counts.
type marks struct {
	cuts []int
	rows []rowMark
}

// rowMark is a statement's end and the rows it must match: 1 for a
// guarded UPDATE or DELETE (guard), the rows of an INSERT.
type rowMark struct {
	at, n int
	guard bool
}

func (m *marks) reset() { m.cuts, m.rows = m.cuts[:0], m.rows[:0] }

func (m marks) clone() marks {
	return marks{cuts: append([]int(nil), m.cuts...), rows: append([]rowMark(nil), m.rows...)}
}

// before keeps the marks of the SQL before offset end.
func (m marks) before(end int) marks {
	var out marks
	for _, c := range m.cuts {
		if c <= end {
			out.cuts = append(out.cuts, c)
		}
	}
	for _, r := range m.rows {
		if r.at <= end {
			out.rows = append(out.rows, r)
		}
	}
	return out
}

// after keeps the marks of the SQL from offset start on, shifted as that
// SQL moves to the front.
func (m marks) after(start int) marks {
	var out marks
	for _, c := range m.cuts {
		if c > start {
			out.cuts = append(out.cuts, c-start)
		}
	}
	for _, r := range m.rows {
		if r.at > start {
			r.at -= start
			out.rows = append(out.rows, r)
		}
	}
	return out
}

// hasCut reports whether sql[from:to] holds a BINLOG statement.
func (m marks) hasCut(from, to int) bool {
	for _, c := range m.cuts {
		if c > from && c <= to {
			return true
		}
	}
	return false
}

// expect is the rows the statements of sql[from:to] must match.
func (m marks) expect(from, to int) int {
	n := 0
	for _, r := range m.rows {
		if r.at > from && r.at <= to {
			n += r.n
		}
	}
	return n
}

// text is sql[from:to] with guard (if any) after each guarded statement.
func (m marks) text(sql []byte, from, to int, guard string) string {
	if guard == "" {
		return string(sql[from:to])
	}
	var b []byte
	at := from
	for _, r := range m.rows {
		if !r.guard || r.at <= from || r.at > to {
			continue
		}
		if b == nil {
			b = make([]byte, 0, to-from+len(m.rows)*len(guard))
		}
		b = append(b, sql[at:r.at]...)
		b = append(b, guard...)
		at = r.at
	}
	if b == nil {
		return string(sql[from:to])
	}
	return string(append(b, sql[at:to]...))
}
