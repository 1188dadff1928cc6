package certs

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. The errors Load and Generate return are sentences that
// name the file and the setting; errors.Is tells these kinds apart.
var (
	// ErrPassword: the password does not open the store (or the store
	// was changed after it was written).
	ErrPassword = errors.New("certs: wrong password")
	// ErrFormat: the file is not a keystore Carbide reads (JCEKS, PEM,
	// anything else).
	ErrFormat = errors.New("certs: unsupported keystore format")
	// ErrDamaged: the file is truncated or its structure is broken.
	ErrDamaged = errors.New("certs: keystore truncated or damaged")
	// ErrNoKey: the keystore holds no private key entry Carbide can use.
	ErrNoKey = errors.New("certs: no usable private key entry")
	// ErrNoTrusted: the truststore holds no certificate.
	ErrNoTrusted = errors.New("certs: no trusted certificate")
	// ErrExists: Generate found files it would overwrite.
	ErrExists = errors.New("certs: files exist")
)

// sentence is an operator-facing error that is also one of the sentinels.
type sentence struct {
	msg  string
	kind error
}

func (e *sentence) Error() string { return e.msg }
func (e *sentence) Unwrap() error { return e.kind }

func sentencef(kind error, format string, args ...any) error {
	return &sentence{msg: fmt.Sprintf(format, args...), kind: kind}
}

// ExistsError is Generate's refusal to overwrite: Files are the names in
// Dir that exist already.
type ExistsError struct {
	Dir   string
	Files []string
}

func (e *ExistsError) Error() string {
	return fmt.Sprintf("%s already holds %s; Generate replaces them only when forced (GenerateOptions.Force)", e.Dir, strings.Join(e.Files, ", "))
}

// Unwrap makes errors.Is(err, ErrExists) true.
func (e *ExistsError) Unwrap() error { return ErrExists }
