package reason

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

func TestReasonCrossesStatus(t *testing.T) {
	for r := range managerpb.Reason_name {
		err := Status(codes.FailedPrecondition, managerpb.Reason(r), "refused in words")
		if got := Of(err); got != managerpb.Reason(r) {
			t.Errorf("Of(Status(%v)) = %v", managerpb.Reason(r), got)
		}
		if st, _ := status.FromError(err); st.Message() != "refused in words" || st.Code() != codes.FailedPrecondition {
			t.Errorf("status %v", st)
		}
		wrapped := fmt.Errorf("context: %w", &Error{Msg: "x", Reason: managerpb.Reason(r)})
		if got := Of(wrapped); got != managerpb.Reason(r) {
			t.Errorf("Of(wrapped %v) = %v", managerpb.Reason(r), got)
		}
	}
	// The words never decide.
	for _, err := range []error{
		errors.New("holds part of a tprovision copy"),
		status.Error(codes.FailedPrecondition, "holds part of a tprovision copy"),
		nil,
	} {
		if got := Of(err); got != managerpb.Reason_REASON_UNSPECIFIED {
			t.Errorf("Of(%v) = %v, want unspecified", err, got)
		}
	}
}
