package reason

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

// Domain is the ErrorInfo domain of the managers' reasons.
const Domain = "manager.carbide"

const prefix = "REASON_"

// Status returns the gRPC status error of code and msg carrying r (none
// when r is unspecified).
func Status(c codes.Code, r managerpb.Reason, msg string) error {
	st := status.New(c, msg)
	if r == managerpb.Reason_REASON_UNSPECIFIED {
		return st.Err()
	}
	withInfo, err := st.WithDetails(&errdetails.ErrorInfo{Reason: strings.TrimPrefix(r.String(), prefix), Domain: Domain})
	if err != nil {
		return st.Err()
	}
	return withInfo.Err()
}

// Of returns the reason err carries: a gRPC status error's ErrorInfo of
// Domain, or an error wrapping one (errors.As on an Error), else
// unspecified.
func Of(err error) managerpb.Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	st, ok := status.FromError(err)
	if !ok {
		return managerpb.Reason_REASON_UNSPECIFIED
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == Domain {
			return managerpb.Reason(managerpb.Reason_value[prefix+info.GetReason()])
		}
	}
	return managerpb.Reason_REASON_UNSPECIFIED
}

// Error is an error worded for people that keeps the reason it was
// refused for.
type Error struct {
	Msg    string
	Reason managerpb.Reason
}

func (e *Error) Error() string { return e.Msg }

// Refuse is the refusal of a request, worded for people, of no reason a
// caller decides on.
func Refuse(format string, args ...any) error {
	return &Error{Msg: fmt.Sprintf(format, args...)}
}

// Refusef is the refusal of a request for reason r.
func Refusef(r managerpb.Reason, format string, args ...any) error {
	return &Error{Msg: fmt.Sprintf(format, args...), Reason: r}
}

// Refused reports whether err is (or wraps) a refusal: the request was
// wrong or came at the wrong time, not a failure of the one who refused.
func Refused(err error) bool {
	var e *Error
	return errors.As(err, &e)
}
