package multitrepctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// table is what every printer prints: a header and rows of cells.
type table struct {
	header []string
	cells  [][]string
	names  []string // host:service of each row, for --output name
}

// buildTable picks fields out of rows.
func buildTable(fields []string, rows []*row) table {
	t := table{header: fields}
	for _, r := range rows {
		line := make([]string, len(fields))
		for i, f := range fields {
			line[i] = r.get(f)
		}
		t.cells = append(t.cells, line)
		t.names = append(t.names, r.host+":"+r.service)
	}
	return t
}

// printTable writes t in the output format.
func printTable(w io.Writer, format string, hideHeaders bool, t table) error {
	switch format {
	case "tab":
		return printTab(w, hideHeaders, t)
	case "list":
		return printList(w, t)
	case "json":
		return printJSON(w, t)
	case "name":
		for _, n := range t.names {
			if _, err := fmt.Fprintln(w, n); err != nil {
				return err
			}
		}
		return nil
	}
	return printInfo(w, hideHeaders, t)
}

// printInfo writes the guide's layout: "| " before every cell, columns
// padded to their widest value.
//
//	| host  | servicename | role   | state  | appliedlastseqno | appliedlatency |
//	| east1 | east        | master | ONLINE | 5                | 0.322          |
func printInfo(w io.Writer, hideHeaders bool, t table) error {
	widths := make([]int, len(t.header))
	lines := t.cells
	if !hideHeaders {
		lines = append([][]string{t.header}, t.cells...)
	}
	for _, l := range lines {
		for i, c := range l {
			widths[i] = max(widths[i], len(c))
		}
	}
	var b strings.Builder
	for _, l := range lines {
		for i, c := range l {
			fmt.Fprintf(&b, "| %-*s ", widths[i], c)
		}
		b.WriteString("|\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func printTab(w io.Writer, hideHeaders bool, t table) error {
	var b strings.Builder
	if !hideHeaders {
		b.WriteString(strings.Join(t.header, "\t") + "\n")
	}
	for _, l := range t.cells {
		b.WriteString(strings.Join(l, "\t") + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// printList writes a "name: value" block per row, blocks apart by a blank line.
func printList(w io.Writer, t table) error {
	var b strings.Builder
	for i, l := range t.cells {
		if i > 0 {
			b.WriteString("\n")
		}
		for j, c := range l {
			fmt.Fprintf(&b, "%s: %s\n", t.header[j], c)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// printJSON writes an array of objects, keys in column order.
func printJSON(w io.Writer, t table) error {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, l := range t.cells {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('{')
		for j, c := range l {
			if j > 0 {
				b.WriteByte(',')
			}
			k, _ := json.Marshal(t.header[j])
			v, _ := json.Marshal(c)
			b.Write(k)
			b.WriteByte(':')
			b.Write(v)
		}
		b.WriteByte('}')
	}
	b.WriteByte(']')
	var out bytes.Buffer
	if err := json.Indent(&out, b.Bytes(), "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err := w.Write(out.Bytes())
	return err
}
