package config

import (
	"fmt"
	"os"
	"strings"

	"gopkg.in/ini.v1"
)

// DefaultPath is the ini file tpm reads when given none.
const DefaultPath = "/etc/tungsten/tungsten.ini"

// Source is one ini file's name and contents.
type Source struct {
	Name string
	Data []byte
}

// Entry is one key=value line of a section, as written.
type Entry struct {
	Key   string
	Value string
	File  string
}

// Section is one [name] of the merged files, entries in file order.
type Section struct {
	Name    string
	Entries []Entry
}

// Values returns every value of key (after aliases) in order.
func (s *Section) Values(key string) []string {
	if s == nil {
		return nil
	}
	var out []string
	for _, e := range s.Entries {
		if canonical(e.Key) == key {
			out = append(out, e.Value)
		}
	}
	return out
}

// Value returns the last value of key, or "".
func (s *Section) Value(key string) string {
	v := s.Values(key)
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

func canonical(key string) string {
	if c, ok := aliases[key]; ok {
		return c
	}
	return key
}

// maxFileSize bounds what we read: a tungsten.ini is a few kilobytes.
const maxFileSize = 1 << 20

// Load reads and validates the ini files at paths (DefaultPath when none).
// A path may itself be a comma-separated list, as tpm's --ini takes it.
func Load(paths ...string) (*Config, error) {
	var files []string
	for _, p := range paths {
		files = append(files, splitList(p)...)
	}
	if len(files) == 0 {
		files = []string{DefaultPath}
	}
	var srcs []Source
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			if os.IsNotExist(err) {
				return nil, problem("%s does not exist; pass the ini file with --ini FILE", f)
			}
			return nil, problem("cannot read %s: %v", f, err)
		}
		if st.IsDir() {
			return nil, problem("%s is a directory, not an ini file; pass the ini file with --ini FILE", f)
		}
		if st.Size() > maxFileSize {
			return nil, problem("%s is %d bytes, too large for a tungsten.ini (1 MiB at most)", f, st.Size())
		}
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, problem("cannot read %s: %v", f, err)
		}
		srcs = append(srcs, Source{Name: f, Data: data})
	}
	return Parse(srcs...)
}

// Parse reads and validates ini sources, merging them in order: a section
// in a later file adds its keys to the same section of an earlier one, and
// its values override the earlier values.
func Parse(srcs ...Source) (cfg *Config, err error) {
	var sections []*Section
	byName := map[string]*Section{}
	var probs Problems
	for _, src := range srcs {
		secs, p := parseOne(src)
		for _, msg := range p {
			probs.addf("%s", msg)
		}
		for _, s := range secs {
			if have, ok := byName[s.Name]; ok {
				have.Entries = append(have.Entries, s.Entries...)
				continue
			}
			byName[s.Name] = s
			sections = append(sections, s)
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return build(fileNames(srcs), sections)
}

func fileNames(srcs []Source) []string {
	out := make([]string, len(srcs))
	for i, s := range srcs {
		out[i] = s.Name
	}
	return out
}

// parseOne turns one file into sections. Syntax problems come back as
// sentences naming the file.
func parseOne(src Source) (secs []*Section, probs Problems) {
	defer func() {
		// The ini library is third-party code fed operator input: a panic
		// in it must become an error, never a crash of tpm or an agent.
		if r := recover(); r != nil {
			secs = nil
			probs = problem("%s: cannot parse the file (%s); check its syntax", src.Name, strings.TrimSpace(fmt.Sprint(r)))
		}
	}()
	if strings.IndexByte(string(src.Data), 0) >= 0 {
		return nil, problem("%s is not a text file (it holds NUL bytes)", src.Name)
	}
	f, err := ini.LoadSources(ini.LoadOptions{
		AllowShadows:               true,
		AllowDuplicateShadowValues: true,
		AllowNonUniqueSections:     true,
		KeyValueDelimiters:         "=",
		IgnoreInlineComment:        true,
		AllowBooleanKeys:           true,
		IgnoreContinuation:         true,
		SkipUnrecognizableLines:    false,
	}, src.Data)
	if err != nil {
		return nil, problem("%s: cannot parse the file (%s); check its syntax", src.Name, strings.TrimSpace(err.Error()))
	}
	seen := map[string]bool{}
	for _, s := range f.Sections() {
		name := strings.TrimSpace(s.Name())
		keys := s.Keys()
		if name == ini.DefaultSection {
			for _, k := range keys {
				probs.addf("%s: key %s is outside any section; put it under [defaults]", src.Name, k.Name())
			}
			continue
		}
		if name == "" {
			probs.addf("%s: a section has an empty name; name it, like [defaults] or [east]", src.Name)
			continue
		}
		if seen[name] {
			probs.addf("%s: section [%s] appears twice; merge the two into one", src.Name, name)
			continue
		}
		seen[name] = true
		sec := &Section{Name: name}
		for _, k := range keys {
			for _, v := range k.ValueWithShadows() {
				sec.Entries = append(sec.Entries, Entry{Key: strings.TrimSpace(k.Name()), Value: strings.TrimSpace(v), File: src.Name})
			}
		}
		secs = append(secs, sec)
	}
	return secs, probs
}
