package cctrl

import (
	"regexp"
	"strings"

	"github.com/fatih/color"
)

// BoxWidth is the width of ls's boxes, borders included, as in the guide.
const BoxWidth = 83

var boxRule = "+" + strings.Repeat("-", BoxWidth-2) + "+"

// boxLine pads text to the box's inside width between two bars. Text wider
// than the box is wrapped onto further lines, indented like the first.
func boxLine(text string) []string {
	inside := BoxWidth - 2
	var out []string
	indent := len(text) - len(strings.TrimLeft(text, " "))
	for len(text) > inside {
		// Cut at the last space after the indentation, else mid-word.
		cut := strings.LastIndexByte(text[:inside], ' ')
		if cut <= indent {
			cut = inside
		}
		out = append(out, "|"+text[:cut]+strings.Repeat(" ", inside-cut)+"|")
		if len(out) == 1 {
			indent = min(indent+2, inside/2)
		}
		text = strings.Repeat(" ", indent) + strings.TrimLeft(text[cut:], " ")
	}
	return append(out, "|"+text+strings.Repeat(" ", inside-len(text))+"|")
}

// box draws lines in a box.
func box(lines []string, sections ...[]string) []string {
	out := []string{boxRule}
	for _, l := range lines {
		out = append(out, boxLine(l)...)
	}
	for _, sec := range sections {
		out = append(out, boxRule)
		for _, l := range sec {
			out = append(out, boxLine(l)...)
		}
	}
	return append(out, boxRule)
}

// Colours of states. Each is enabled explicitly: whether to colour is the
// session's decision (a terminal and no NO_COLOR), not fatih/color's.
var (
	stateWords = regexp.MustCompile(`\[(OK|DIMINISHED|CRITICAL|SSL)\]|\b(ONLINE|OFFLINE(:[A-Z-]+)?|SHUNNED|FAILED|STOPPED|UNKNOWN|NOT RUNNING|MAINTENANCE|AUTOMATIC)\b`)
)

func newColor(a ...color.Attribute) *color.Color {
	c := color.New(a...)
	c.EnableColor()
	return c
}

// colorize colours the state words of one rendered line. It changes no
// visible character, so boxes stay aligned.
func colorize(line string) string {
	green, yellow, red, cyan := newColor(color.FgGreen), newColor(color.FgYellow), newColor(color.FgRed, color.Bold), newColor(color.FgCyan)
	return stateWords.ReplaceAllStringFunc(line, func(w string) string {
		switch {
		case w == "ONLINE" || w == "[OK]" || w == "AUTOMATIC":
			return green.Sprint(w)
		case w == "FAILED" || w == "STOPPED" || w == "[CRITICAL]" || w == "NOT RUNNING" || w == "OFFLINE:ERROR":
			return red.Sprint(w)
		case w == "[SSL]":
			return cyan.Sprint(w)
		}
		return yellow.Sprint(w)
	})
}
