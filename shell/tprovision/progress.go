package tprovision

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress shows a copy's bytes, rate and ETA: a bar redrawn in place on
// a terminal, a line every reportEvery otherwise (logs, pipes).
type progress struct {
	w        io.Writer
	terminal bool
	what     string
	total    int64 // estimate; 0 when unknown
	done     int64
	begin    time.Time
	last     time.Time
	now      func() time.Time
}

const reportEvery = 10 * time.Second

func newProgress(w io.Writer, terminal bool, what string, total int64, now func() time.Time) *progress {
	t := now()
	return &progress{w: w, terminal: terminal, what: what, total: total, begin: t, last: t, now: now}
}

// add counts n more bytes.
func (p *progress) add(n int) {
	p.done += int64(n)
	t := p.now()
	every := reportEvery
	if p.terminal {
		every = 200 * time.Millisecond
	}
	if t.Sub(p.last) < every {
		return
	}
	p.last = t
	if p.terminal {
		fmt.Fprintf(p.w, "\r  %s %s", p.what, p.line(t))
	} else {
		fmt.Fprintf(p.w, "  %s %s\n", p.what, p.line(t))
	}
}

// finish prints the total.
func (p *progress) finish() {
	t := p.now()
	d := t.Sub(p.begin)
	rate := ""
	if d > 0 {
		rate = fmt.Sprintf(", %s/s", human(int64(float64(p.done)/d.Seconds())))
	}
	if p.terminal {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintf(p.w, "  %s %s in %.1f s%s\n", p.what, human(p.done), d.Seconds(), rate)
}

// line is "[=====>    ] 512.0 MiB / 1.0 GiB  48%  85.3 MiB/s  ETA 6s".
func (p *progress) line(t time.Time) string {
	d := t.Sub(p.begin).Seconds()
	rate := 0.0
	if d > 0 {
		rate = float64(p.done) / d
	}
	if p.total <= 0 {
		return fmt.Sprintf("%s  %s/s", human(p.done), human(int64(rate)))
	}
	frac := min(float64(p.done)/float64(p.total), 0.99) // an estimate: never claims done
	const width = 20
	fill := int(frac * width)
	bar := "[" + strings.Repeat("=", fill) + ">" + strings.Repeat(" ", width-fill) + "]"
	eta := "?"
	if rate > 0 {
		eta = time.Duration(float64(max(p.total-p.done, 0)) / rate * float64(time.Second)).Round(time.Second).String()
	}
	return fmt.Sprintf("%s %s / %s %3.0f%%  %s/s  ETA %s", bar, human(p.done), human(p.total), frac*100, human(int64(rate)), eta)
}

// human formats n as B, KiB, MiB or GiB.
func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
