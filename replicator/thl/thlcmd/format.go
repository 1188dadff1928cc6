package thlcmd

import (
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// eventType is what Tungsten prints as an event's TYPE.
const eventType = "com.continuent.tungsten.replicator.event.ReplDBMSEvent"

// javaTime formats t as Java's Timestamp.toString does, which is what
// Tungsten prints: "2025-01-02 15:31:31.0", "… 15:31:31.123456".
func javaTime(t time.Time) string {
	s := t.Format("2006-01-02 15:04:05")
	if t.Nanosecond() == 0 {
		return s + ".0"
	}
	return s + "." + strings.TrimRight(fmt.Sprintf("%09d", t.Nanosecond()), "0")
}

// writeEvent prints ev in Tungsten's thl list layout; with headersOnly,
// without its changes.
func writeEvent(w io.Writer, ev *thlpb.Event, file string, loc *time.Location, headersOnly bool) {
	fmt.Fprintf(w, "SEQ# = %d / FRAG# = %d", ev.GetSeqno(), ev.GetFragno())
	if ev.GetLastFrag() {
		fmt.Fprint(w, " (last frag)")
	}
	fmt.Fprintln(w)
	if file != "" {
		fmt.Fprintf(w, "- FILE = %s\n", file)
	}
	fmt.Fprintf(w, "- TIME = %s\n", javaTime(time.UnixMicro(ev.GetSourceCommitTimeUs()).In(loc)))
	fmt.Fprintf(w, "- EPOCH# = %d\n", ev.GetEpoch())
	fmt.Fprintf(w, "- EVENTID = %s\n", ev.GetEventId())
	fmt.Fprintf(w, "- SOURCEID = %s\n", ev.GetSourceId())
	var meta []string
	if ev.GetOriginService() != "" {
		meta = append(meta, "service="+ev.GetOriginService())
	}
	if ev.GetShard() != "" {
		meta = append(meta, "shard="+ev.GetShard())
	}
	if ev.GetHeartbeat() != "" {
		meta = append(meta, "heartbeat="+ev.GetHeartbeat())
	}
	for _, a := range ev.GetAfter() {
		// What its source had applied of another stream (causal order).
		meta = append(meta, fmt.Sprintf("after=%s:%d", a.GetService(), a.GetSeqno()))
	}
	fmt.Fprintf(w, "- METADATA = [%s]\n", strings.Join(meta, ";"))
	fmt.Fprintf(w, "- TYPE = %s\n", eventType)
	if headersOnly {
		return
	}
	for i, c := range ev.GetChanges() {
		switch {
		case c.GetStatement() != nil:
			writeStatement(w, i, c.GetStatement())
		case c.GetRows() != nil:
			writeRows(w, i, c.GetRows())
		default:
			fmt.Fprintf(w, "- SQL(%d) = (empty change)\n", i)
		}
	}
}

func writeStatement(w io.Writer, i int, st *thlpb.Statement) {
	if len(st.GetSession()) > 0 {
		keys := make([]string, 0, len(st.GetSession()))
		for k := range st.GetSession() {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		opts := make([]string, len(keys))
		for j, k := range keys {
			opts[j] = k + " = " + st.GetSession()[k]
		}
		fmt.Fprintf(w, "- OPTIONS = [%s]\n", strings.Join(opts, ", "))
	}
	fmt.Fprintf(w, "- SCHEMA = %s\n", st.GetSchema())
	fmt.Fprintf(w, "- SQL(%d) = %s\n", i, st.GetSql())
}

// writeRows prints a row change as Tungsten does: after images as COL,
// before images (the key of an UPDATE or DELETE) as KEY.
func writeRows(w io.Writer, i int, rc *thlpb.RowChange) {
	fmt.Fprintf(w, "- SQL(%d) =\n", i)
	action := rc.GetAction().String()
	if rc.GetAction() == thlpb.RowChange_ACTION_UNSPECIFIED {
		action = "UNKNOWN"
	}
	fmt.Fprintf(w, " - ACTION = %s\n", action)
	fmt.Fprintf(w, " - SCHEMA = %s\n", rc.GetSchema())
	fmt.Fprintf(w, " - TABLE = %s\n", rc.GetTable())
	cols := rc.GetColumns()
	name := func(j int) string {
		if j < len(cols) {
			return cols[j].GetName()
		}
		return ""
	}
	for r, row := range rc.GetRows() {
		fmt.Fprintf(w, " - ROW# = %d\n", r)
		for j, v := range row.GetAfter() {
			fmt.Fprintf(w, "  - COL(%d: %s) = %s\n", j+1, name(j), formatValue(v))
		}
		for j, v := range row.GetBefore() {
			fmt.Fprintf(w, "  - KEY(%d: %s) = %s\n", j+1, name(j), formatValue(v))
		}
	}
}

// formatValue prints a column value: NULL, numbers, text; bytes that are
// not valid UTF-8 as 0x hex.
func formatValue(v *thlpb.Value) string {
	switch x := v.GetValue().(type) {
	case nil, *thlpb.Value_Null:
		return "NULL"
	case *thlpb.Value_Int:
		return strconv.FormatInt(x.Int, 10)
	case *thlpb.Value_Uint:
		return strconv.FormatUint(x.Uint, 10)
	case *thlpb.Value_Double:
		return strconv.FormatFloat(x.Double, 'g', -1, 64)
	case *thlpb.Value_Float:
		return strconv.FormatFloat(float64(x.Float), 'g', -1, 32)
	case *thlpb.Value_Decimal:
		return x.Decimal
	case *thlpb.Value_Text:
		return x.Text
	case *thlpb.Value_Bytes:
		if utf8.Valid(x.Bytes) {
			return string(x.Bytes)
		}
		return "0x" + strings.ToUpper(hex.EncodeToString(x.Bytes))
	}
	return "?"
}
