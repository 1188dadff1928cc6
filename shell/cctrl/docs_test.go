package cctrl

import (
	"os"
	"regexp"
	"slices"
	"testing"
)

// Every command of the registry has a section in docs/cctrl.md, and every
// section there is a command (STYLE.md 18).
func TestDocsMatchTheRegistry(t *testing.T) {
	doc, err := os.ReadFile("../../docs/cctrl.md")
	if err != nil {
		t.Fatal(err)
	}
	var sections []string
	for _, m := range regexp.MustCompile(`(?m)^### (\S+)$`).FindAllStringSubmatch(string(doc), -1) {
		sections = append(sections, m[1])
	}
	var registered []string
	for _, sp := range commands() {
		registered = append(registered, sp.name)
		if !slices.Contains(sections, sp.name) {
			t.Errorf("command %s has no section in docs/cctrl.md", sp.name)
		}
	}
	for _, s := range sections {
		if !slices.Contains(registered, s) {
			t.Errorf("docs/cctrl.md documents %s, which is no command", s)
		}
	}
}
