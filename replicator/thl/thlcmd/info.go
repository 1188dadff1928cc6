package thlcmd

import (
	"fmt"
	"text/tabwriter"
)

// info prints what the log holds, as Tungsten's thl info does.
func (r *runner) info(args []string) error {
	fs := r.flagSet("info")
	if err := parse(fs, args); err != nil {
		return err
	}
	s, err := r.open()
	if err != nil {
		return err
	}
	defer s.Close()
	in := s.Info()
	w := r.env.Out
	fmt.Fprintf(w, "log directory = %s\n", in.Dir)
	fmt.Fprintf(w, "log files = %d\n", len(in.Files))
	fmt.Fprintf(w, "logs size = %.2f MB (%d bytes)\n", float64(in.Size)/(1<<20), in.Size)
	if in.Empty || !in.HasMax {
		fmt.Fprintln(w, "min seq# = -1\nmax seq# = -1\nevents = 0")
	} else {
		fmt.Fprintf(w, "min seq# = %d\nmax seq# = %d\nevents = %d\n", in.Min, in.Max, in.Max-in.Min+1)
		fmt.Fprintf(w, "oldest event = %d (%s)\n", in.Min, javaTime(in.FirstTime.In(r.env.Location)))
		fmt.Fprintf(w, "newest event = %d (%s)\n", in.Max, javaTime(in.LastTime.In(r.env.Location)))
	}
	for _, rp := range in.Repairs {
		fmt.Fprintf(w, "note = %s\n", rp)
	}
	return nil
}

// index prints one line per log file.
func (r *runner) index(args []string) error {
	fs := r.flagSet("index")
	if err := parse(fs, args); err != nil {
		return err
	}
	s, err := r.open()
	if err != nil {
		return err
	}
	defer s.Close()
	tw := tabwriter.NewWriter(r.env.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FILE\tSEQNO\tBYTES\tINDEX ENTRIES\tSTATE\tLAST EVENT TIME")
	for _, f := range s.Info().Files {
		seqnos, last := "(none)", "-"
		switch {
		case f.HasLast:
			seqnos = fmt.Sprintf("%d..%d", f.First, f.Last)
			last = javaTime(f.LastTime.In(r.env.Location))
		case f.HasRecords:
			seqnos = fmt.Sprintf("%d..(incomplete)", f.First)
		}
		state := "sealed"
		if !f.Sealed {
			state = "active"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", f.Name, seqnos, f.Size, f.IndexEntries, state, last)
	}
	return tw.Flush()
}
