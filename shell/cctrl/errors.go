package cctrl

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/carbidedb/carbide/internal/textutil"
)

// Sentinel errors. What an operator reads is the error's own sentence; the
// sentinels let callers and tests tell the kinds apart.
var (
	// ErrUsage marks a command that did not parse, or names something the
	// configuration does not have: nothing was sent anywhere.
	ErrUsage = errors.New("cctrl: usage")
	// ErrNoService is returned by a command that needs a service at the
	// root (after `cd ..`).
	ErrNoService = errors.New("cctrl: no service selected")
	// ErrUnreachable is returned when no manager or replicator answered.
	ErrUnreachable = errors.New("cctrl: unreachable")
	// ErrCancelled is returned when the operator said no to a confirmation.
	ErrCancelled = errors.New("cctrl: cancelled")
	// ErrUnconfirmed is returned by a command the site's state took but
	// that some running connector or live manager did not confirm applying
	// within manager-command-wait: its WARNING lines name them, and a
	// script stops there (what follows may count on the change).
	ErrUnconfirmed = errors.New("cctrl: not confirmed everywhere")

	// errExit ends a session: exit, quit, or the end of the input.
	errExit = errors.New("cctrl: exit")
)

// sentence is an error whose message is one operator sentence and which
// matches a sentinel with errors.Is.
type sentence struct {
	msg  string
	kind error
}

func (e *sentence) Error() string        { return e.msg }
func (e *sentence) Is(target error) bool { return target == e.kind }

// usagef returns an ErrUsage sentence.
func usagef(format string, args ...any) error {
	return &sentence{msg: fmt.Sprintf(format, args...), kind: ErrUsage}
}

func errorf(kind error, format string, args ...any) error {
	return &sentence{msg: fmt.Sprintf(format, args...), kind: kind}
}

// rpcMessage is the operator sentence of an RPC error: a manager's or a
// replicator's refusal is already one (status.Convert(err).Message()); a
// transport failure gets the address and what to do.
func rpcMessage(err error, what, addr, start string) string {
	st, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	msg := textutil.FirstLine(st.Message())
	switch st.Code() {
	case codes.Unavailable:
		if isTransport(msg) {
			return fmt.Sprintf("%s at %s does not answer (is it running? %s): %s", what, addr, start, msg)
		}
	case codes.DeadlineExceeded:
		if msg == "context deadline exceeded" || msg == "" {
			return fmt.Sprintf("%s at %s did not answer in time", what, addr)
		}
	case codes.Canceled:
		return "interrupted; the command may or may not have been carried out (ls shows the state)"
	}
	return msg
}

// transportProblem says briefly why an agent gave no answer: "connection
// refused", "no answer in time".
func transportProblem(err error) string {
	st := status.Convert(err)
	msg := strings.Trim(textutil.FirstLine(st.Message()), `"`)
	if st.Code() == codes.DeadlineExceeded {
		return "no answer in time"
	}
	if i := strings.LastIndex(msg, "connect: "); i >= 0 {
		return strings.Trim(msg[i+len("connect: "):], `"`)
	}
	if i := strings.LastIndex(msg, "dial tcp "); i >= 0 {
		return strings.Trim(msg[i:], `"`)
	}
	return msg
}

// isTransport says whether an Unavailable message comes from gRPC's
// transport (no connection) rather than from the server (e.g. "no
// coordinator: …", which is also Unavailable).
func isTransport(msg string) bool {
	for _, p := range []string{"connection error", "dial tcp", "connect: ", "transport", "name resolver", "produced zero addresses", "error reading server preface"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
