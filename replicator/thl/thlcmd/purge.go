package thlcmd

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/carbidedb/carbide/replicator/thl"
)

// forever is a time after every event's commit time.
var forever = time.Unix(1<<40, 0)

// purge deletes events from the start (-high M: whole files up to M) or
// the end (-low N: from N on) of the log, or all of it. It asks first
// unless -y, and is refused while a replicator holds the store.
func (r *runner) purge(args []string) error {
	fs := r.flagSet("purge")
	low := fs.Uint64("low", 0, "first seqno to delete")
	high := fs.Uint64("high", 0, "last seqno to delete")
	yes := fs.Bool("y", false, "do not ask")
	if err := parse(fs, args); err != nil {
		return err
	}
	lowSet, highSet := isSet(fs, "low"), isSet(fs, "high")
	if lowSet && highSet && *low > *high {
		return usagef("purge: -low %d is above -high %d", *low, *high)
	}
	dir, err := r.storeDir()
	if err != nil {
		return err
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("there is no THL store at %s", dir)
	}
	s, err := thl.Open(thl.Config{Dir: dir, Logger: r.logger()})
	if errors.Is(err, thl.ErrLocked) {
		return fmt.Errorf("the THL at %s is in use by a running replicator; stop it first (replicator stop), or use trepctl reset -thl while it runs", dir)
	}
	if err != nil {
		return err
	}
	defer s.Close()
	in := s.Info()
	if in.Empty || !in.HasMax {
		fmt.Fprintf(r.env.Out, "The THL at %s is empty; nothing to purge.\n", dir)
		return nil
	}
	fromStart := !lowSet || *low <= in.Min
	toEnd := !highSet || *high >= in.Max
	var what string
	var act func() error
	switch {
	case fromStart && toEnd:
		what = fmt.Sprintf("every event (seqno %d to %d, %d files)", in.Min, in.Max, len(in.Files))
		act = s.Reset
	case fromStart:
		n, last := 0, uint64(0)
		for _, f := range in.Files {
			if !f.Sealed || f.Last > *high {
				break
			}
			n, last = n+1, f.Last
		}
		if n == 0 {
			fmt.Fprintf(r.env.Out, "No whole log file holds only events up to seqno %d (the first runs to seqno %d); nothing to purge.\n", *high, in.Files[0].Last)
			return nil
		}
		what = fmt.Sprintf("seqno %d to %d (%d files, %s to %s)", in.Min, last, n, in.Files[0].Name, in.Files[n-1].Name)
		act = func() error {
			_, err := s.Purge(forever, *high+1)
			return err
		}
	case toEnd:
		what = fmt.Sprintf("seqno %d to %d", *low, in.Max)
		act = func() error { return s.Truncate(*low - 1) }
	default:
		return fmt.Errorf("purge deletes events from the start or from the end of the log, not from its middle (it holds seqno %d to %d)", in.Min, in.Max)
	}
	if !*yes {
		fmt.Fprintf(r.env.Out, "WARNING: this deletes %s from the THL at %s.\nDo you really want to delete these events [y/N]? ", what, dir)
		answer, _ := bufio.NewReader(r.env.In).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			fmt.Fprintln(r.env.Out, "Nothing deleted.")
			return errors.New("purge not confirmed")
		}
	}
	if err := act(); err != nil {
		return err
	}
	after := s.Info()
	if after.Empty || !after.HasMax {
		fmt.Fprintf(r.env.Out, "Deleted %s; the THL is now empty.\n", what)
	} else {
		fmt.Fprintf(r.env.Out, "Deleted %s; the THL now holds seqno %d to %d.\n", what, after.Min, after.Max)
	}
	return nil
}
