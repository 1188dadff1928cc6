package apply

// marks are offsets in a block's SQL, kept as the SQL is sent in parts
// (fit, sendPart) or copied (parallel apply): cuts, after each BINLOG
// statement (execCut ends a query there); guards, after each statement
// that must match exactly one row and that nothing else checks (a table
// without a key, or one whose rows are matched in the WHERE: match.go);
// and checks, the rows a locking read verifies before the SQL is sent
// (verify.go).
type marks struct {
	cuts   []int
	guards []int
	checks []check
}

func (m *marks) reset() {
	clear(m.checks) // their row images
	m.cuts, m.guards, m.checks = m.cuts[:0], m.guards[:0], m.checks[:0]
}

func (m marks) clone() marks {
	return marks{cuts: append([]int(nil), m.cuts...), guards: append([]int(nil), m.guards...), checks: append([]check(nil), m.checks...)}
}

// before keeps the marks of the SQL before offset end.
func (m marks) before(end int) marks {
	var out marks
	for _, c := range m.cuts {
		if c <= end {
			out.cuts = append(out.cuts, c)
		}
	}
	for _, g := range m.guards {
		if g <= end {
			out.guards = append(out.guards, g)
		}
	}
	for _, c := range m.checks {
		if c.at <= end {
			out.checks = append(out.checks, c)
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
	for _, g := range m.guards {
		if g > start {
			out.guards = append(out.guards, g-start)
		}
	}
	for _, c := range m.checks {
		if c.at > start {
			c.at -= start
			out.checks = append(out.checks, c)
		}
	}
	return out
}

// checksIn returns the checks of the statements of sql[from:to].
func (m marks) checksIn(from, to int) []check {
	var out []check
	for _, c := range m.checks {
		if c.at > from && c.at <= to {
			out = append(out, c)
		}
	}
	return out
}

// text is sql[from:to] with guard (if any) after each guarded statement.
func (m marks) text(sql []byte, from, to int, guard string) string {
	if guard == "" {
		return string(sql[from:to])
	}
	var b []byte
	at := from
	for _, g := range m.guards {
		if g <= from || g > to {
			continue
		}
		if b == nil {
			b = make([]byte, 0, to-from+len(m.guards)*len(guard))
		}
		b = append(b, sql[at:g]...)
		b = append(b, guard...)
		at = g
	}
	if b == nil {
		return string(sql[from:to])
	}
	return string(append(b, sql[at:to]...))
}
