package consistency

import (
	"strconv"
	"strings"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// Marker is a chunk a master asks every host to checksum.
type Marker struct {
	CheckID uint64
	Chunk   uint32
	Query   string
}

// Markers returns the markers an event inserts into the marker table of
// trackingSchema (the applying service's own); none for any other event.
func Markers(ev *thlpb.Event, trackingSchema string) []Marker {
	var ms []Marker
	for _, c := range ev.GetChanges() {
		rc := c.GetRows()
		if rc == nil || rc.GetAction() != thlpb.RowChange_INSERT || rc.GetSchema() != trackingSchema || rc.GetTable() != MarkerTable {
			continue
		}
		// Columns by name where the source sent names, else in the
		// order MarkerDDL made them.
		idx := map[string]int{"check_id": 0, "chunk": 1, "query": 5}
		for i, col := range rc.GetColumns() {
			if n := strings.ToLower(col.GetName()); n != "" {
				if _, ok := idx[n]; ok {
					idx[n] = i
				}
			}
		}
		for _, row := range rc.GetRows() {
			img := row.GetAfter()
			if len(img) <= max(idx["check_id"], idx["chunk"], idx["query"]) {
				continue
			}
			ms = append(ms, Marker{CheckID: uintOf(img[idx["check_id"]]), Chunk: uint32(uintOf(img[idx["chunk"]])), Query: textOf(img[idx["query"]])})
		}
	}
	return ms
}

func uintOf(v *thlpb.Value) uint64 {
	switch x := v.GetValue().(type) {
	case *thlpb.Value_Uint:
		return x.Uint
	case *thlpb.Value_Int:
		return uint64(x.Int)
	}
	return 0
}

func textOf(v *thlpb.Value) string {
	switch x := v.GetValue().(type) {
	case *thlpb.Value_Bytes:
		return string(x.Bytes)
	case *thlpb.Value_Text:
		return x.Text
	}
	return ""
}

// TouchedKeys returns the keys of ch's rows that ev changed, as a rows
// query lists them; all is true when ev may have changed any of them: a
// statement that names the table, or a row change whose key cannot be
// matched (a key not of integers and strings, a source that sent no
// column names). With one integer key column, only rows in the chunk's
// range count.
func TouchedKeys(ev *thlpb.Event, ch *Chunk) (all bool, keys []string) {
	for _, c := range ev.GetChanges() {
		if st := c.GetStatement(); st != nil {
			if strings.Contains(strings.ToLower(st.GetSql()), strings.ToLower(ch.Table)) {
				return true, nil
			}
			continue
		}
		rc := c.GetRows()
		if rc == nil || !strings.EqualFold(rc.GetSchema(), ch.Schema) || !strings.EqualFold(rc.GetTable(), ch.Table) {
			continue
		}
		if len(ch.Key) == 0 || !ch.TextKey && !ch.IntKey {
			return true, nil
		}
		cols := make([]int, len(ch.Key))
		for i, k := range ch.Key {
			cols[i] = -1
			for j, col := range rc.GetColumns() {
				if strings.EqualFold(col.GetName(), k) {
					cols[i] = j
				}
			}
			if cols[i] < 0 {
				return true, nil
			}
		}
		for _, row := range rc.GetRows() {
			for _, img := range [][]*thlpb.Value{row.GetBefore(), row.GetAfter()} {
				if len(img) == 0 {
					continue
				}
				if ch.IntKey && len(ch.Key) == 1 && cols[0] < len(img) && !ch.holds(img[cols[0]]) {
					continue
				}
				key, ok := renderKey(img, cols)
				if !ok {
					return true, nil
				}
				keys = append(keys, key)
			}
		}
	}
	return false, keys
}

// renderKey renders a row image's key as a rows query lists it (the
// columns' bytes joined by 0x1f); ok is false for a value it cannot.
func renderKey(img []*thlpb.Value, cols []int) (string, bool) {
	var b strings.Builder
	for i, c := range cols {
		if c >= len(img) {
			return "", false
		}
		if i > 0 {
			b.WriteByte(0x1f)
		}
		switch x := img[c].GetValue().(type) {
		case *thlpb.Value_Int:
			b.WriteString(strconv.FormatInt(x.Int, 10))
		case *thlpb.Value_Uint:
			b.WriteString(strconv.FormatUint(x.Uint, 10))
		case *thlpb.Value_Bytes:
			b.Write(x.Bytes)
		default:
			return "", false
		}
	}
	return b.String(), true
}

// holds says whether an integer key value falls in the chunk; a value it
// cannot read as an integer is taken to fall in it.
func (ch *Chunk) holds(v *thlpb.Value) bool {
	var n int64
	switch x := v.GetValue().(type) {
	case *thlpb.Value_Int:
		n = x.Int
	case *thlpb.Value_Uint:
		if x.Uint > 1<<63-1 {
			return !ch.HasHi
		}
		n = int64(x.Uint)
	case *thlpb.Value_Null:
		return false
	default:
		return true
	}
	return (!ch.HasLo || n > ch.LoInt) && (!ch.HasHi || n <= ch.HiInt)
}
