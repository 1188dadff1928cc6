package position

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrSyntax is wrapped by every Parse error.
var ErrSyntax = errors.New("position: malformed event id")

// Position is the end of a transaction in a binary log: the file, the
// offset just past its last event, and its GTID where the source has one.
type Position struct {
	File   string
	Offset uint64
	GTID   string // MariaDB domain-server-seq, or MySQL uuid:n; may be empty
}

// String formats p as an event id: "mysql-bin.000003:0000000000001234",
// with ";<gtid>" appended when p has a GTID. The offset is zero-padded so
// event ids of one file sort as text.
func (p Position) String() string {
	s := fmt.Sprintf("%s:%016d", p.File, p.Offset)
	if p.GTID != "" {
		s += ";" + p.GTID
	}
	return s
}

// IsZero reports whether p names no position.
func (p Position) IsZero() bool { return p.File == "" }

// Parse reads an event id written by String.
func Parse(s string) (Position, error) {
	var p Position
	rest, gtid, _ := strings.Cut(s, ";")
	i := strings.LastIndexByte(rest, ':')
	if i <= 0 || i == len(rest)-1 {
		return p, fmt.Errorf("%w: %q has no file:offset", ErrSyntax, s)
	}
	off, err := strconv.ParseUint(rest[i+1:], 10, 64)
	if err != nil {
		return p, fmt.Errorf("%w: %q: offset %q is not a number", ErrSyntax, s, rest[i+1:])
	}
	p.File, p.Offset, p.GTID = rest[:i], off, gtid
	if p.GTID == "-1" { // Tungsten writes ";-1" for "no session"
		p.GTID = ""
	}
	return p, nil
}

// fileNumber is the numeric suffix of a binlog file name (mysql-bin.000003 → 3).
func fileNumber(name string) (int64, bool) {
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(name[i+1:], 10, 64)
	return n, err == nil
}

// Compare orders positions of one server's binary log: by file sequence
// number, then offset. It returns -1, 0 or +1.
func (p Position) Compare(q Position) int {
	pn, pok := fileNumber(p.File)
	qn, qok := fileNumber(q.File)
	switch {
	case pok && qok && pn != qn:
		return cmp(pn, qn)
	case !(pok && qok) && p.File != q.File:
		return strings.Compare(p.File, q.File)
	}
	return cmp(p.Offset, q.Offset)
}

func cmp[T int64 | uint64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
