package thlcmd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protojson"
)

// list prints events: all, a range (-low, -high, inclusive) or one
// transaction (-seqno), in Tungsten's layout or as JSON lines.
func (r *runner) list(ctx context.Context, args []string) error {
	fs := r.flagSet("list")
	low := fs.Uint64("low", 0, "first seqno")
	high := fs.Uint64("high", 0, "last seqno")
	seqno := fs.Uint64("seqno", 0, "one seqno")
	asJSON := fs.Bool("json", false, "one JSON object per event")
	headers := fs.Bool("headers", false, "headers only")
	if err := parse(fs, args); err != nil {
		return err
	}
	lowSet, highSet, seqnoSet := isSet(fs, "low"), isSet(fs, "high"), isSet(fs, "seqno")
	switch {
	case seqnoSet && (lowSet || highSet):
		return usagef("list: give -seqno, or -low and -high, not both")
	case lowSet && highSet && *low > *high:
		return usagef("list: -low %d is above -high %d", *low, *high)
	case *asJSON && *headers:
		return usagef("list: -json prints whole events; -headers does not apply")
	}
	if seqnoSet {
		*low, *high, lowSet, highSet = *seqno, *seqno, true, true
	}
	s, err := r.open()
	if err != nil {
		return err
	}
	defer s.Close()
	min, ok := s.MinSeqno()
	if !ok {
		if seqnoSet {
			return fmt.Errorf("seqno %d is not in the log: the THL at %s is empty", *seqno, s.Dir())
		}
		return nil
	}
	if seqnoSet {
		max, hasMax := s.MaxSeqno()
		if *seqno < min || !hasMax || *seqno > max {
			return fmt.Errorf("seqno %d is not in the log, which holds seqno %d to %s", *seqno, min, maxString(max, hasMax))
		}
	}
	from := min
	if lowSet && *low > min {
		from = *low
	}
	rd, err := s.NewReader(from)
	if err != nil {
		return err
	}
	defer rd.Close()
	w := bufio.NewWriter(r.env.Out)
	defer w.Flush()
	for {
		ev, err := rd.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			w.Flush()
			return err
		}
		if highSet && ev.GetSeqno() > *high {
			return nil
		}
		if *asJSON {
			b, err := protojson.Marshal(ev)
			if err != nil {
				return err
			}
			w.Write(b)
			w.WriteByte('\n')
		} else {
			file, _ := rd.File()
			writeEvent(w, ev, file, r.env.Location, *headers)
		}
	}
}

func maxString(max uint64, ok bool) string {
	if !ok {
		return "(no complete transaction)"
	}
	return fmt.Sprint(max)
}
