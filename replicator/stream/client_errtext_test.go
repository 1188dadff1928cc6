package stream

import (
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestErrText(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("plain"), "plain"},
		{status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: the THL server at 127.0.0.1:2112 does not use TLS"`), "the THL server at 127.0.0.1:2112 does not use TLS"},
		{status.Error(codes.FailedPrecondition, "this THL port takes TLS only"), "this THL port takes TLS only"},
	} {
		if got := errText(c.err); got != c.want {
			t.Errorf("errText(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
