package restapi

import (
	"errors"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrNoCredentials is returned by New when no user or password is
// configured: the API is never served unauthenticated.
var ErrNoCredentials = errors.New("restapi: rest-api-admin-user and rest-api-admin-password are not both set")

// httpStatus maps an error from an agent's handler to an HTTP status, in
// one place: gRPC codes as the agents' RPC handlers return them.
func httpStatus(err error) int {
	var he *httpError
	if errors.As(err, &he) {
		return he.code
	}
	switch status.Code(err) {
	case codes.InvalidArgument:
		return http.StatusBadRequest
	case codes.NotFound:
		return http.StatusNotFound
	case codes.FailedPrecondition:
		return http.StatusConflict
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	case codes.Unimplemented:
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}

// message is the sentence an error's JSON body carries: a gRPC status's
// message without the "rpc error: code = …" prefix.
func message(err error) string {
	var he *httpError
	if errors.As(err, &he) {
		return he.msg
	}
	if s, ok := status.FromError(err); ok {
		return s.Message()
	}
	return err.Error()
}

// httpError is an error with its HTTP status, for refusals the REST layer
// makes itself (a bad body, an unknown service).
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

// Error returns an error answered with the given HTTP status and msg, a
// sentence for the operator.
func Error(code int, msg string) error { return &httpError{code: code, msg: msg} }
