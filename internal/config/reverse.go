package config

import (
	"fmt"
	"io"
	"strings"
)

// Mask replaces secrets in tpm reverse output.
const Mask = "*****"

// Reverse writes the configuration back as one ini file, sections and keys
// in the order they were read. With mask, every password is replaced by
// Mask.
func (c *Config) Reverse(w io.Writer, mask bool) error {
	var b strings.Builder
	for i, s := range c.Sections {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "[%s]\n", s.Name)
		for _, e := range s.Entries {
			v := e.Value
			if d, ok := lookupKey(e.Key); ok && d.secret && mask && s.Name != SectionHosts {
				v = Mask
			}
			if mask && e.Key == "property" {
				v = maskProperty(v)
			}
			fmt.Fprintf(&b, "%s=%s\n", e.Key, v)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// maskProperty masks the value of a property=name=value line whose name
// says it holds a password (property=replicator.datasource.global.password=…).
func maskProperty(v string) string {
	name, _, ok := strings.Cut(v, "=")
	if !ok || !strings.Contains(strings.ToLower(name), "password") {
		return v
	}
	return name + "=" + Mask
}

// IsSecret reports whether key holds a password.
func IsSecret(key string) bool {
	d, ok := lookupKey(key)
	return ok && d.secret
}
