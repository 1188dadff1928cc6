package mysqld

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error the package returns is a sentence for an
// operator; errors.Is tells its kind.
var (
	// ErrInvalidConfig: Config.Validate refused the configuration.
	ErrInvalidConfig = errors.New("mysqld: invalid configuration")
	// ErrNotFound: a MariaDB program is not installed.
	ErrNotFound = errors.New("mysqld: program not found")
	// ErrAlreadyRunning: a mariadbd already runs in the instance directory.
	ErrAlreadyRunning = errors.New("mysqld: instance already running")
	// ErrExited: mariadbd exited before it answered on its socket.
	ErrExited = errors.New("mysqld: mariadbd exited during startup")
	// ErrAddressInUse: mariadbd could not bind its address and port.
	ErrAddressInUse = errors.New("mysqld: address already in use")
	// ErrStartTimeout: mariadbd did not answer within Config.StartTimeout.
	ErrStartTimeout = errors.New("mysqld: start timed out")
	// ErrStopTimeout: mariadbd did not exit after SIGTERM and had to be killed,
	// or did not exit even after SIGKILL.
	ErrStopTimeout = errors.New("mysqld: stop timed out")
)

// kindError is an operator sentence that also matches a sentinel (kind) and,
// when there is one, the underlying cause.
type kindError struct {
	kind error
	msg  string
	err  error // cause, may be nil
}

func (e *kindError) Error() string { return e.msg }

func (e *kindError) Unwrap() []error {
	if e.err == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.err}
}

// errorf formats an operator sentence of the given kind; a %w verb in format
// becomes the cause.
func errorf(kind error, format string, args ...any) error {
	wrapped := fmt.Errorf(format, args...)
	return &kindError{kind: kind, msg: wrapped.Error(), err: errors.Unwrap(wrapped)}
}
