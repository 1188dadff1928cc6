// Package reason carries why a manager refused a command across gRPC, as
// a google.rpc.ErrorInfo in the status details, so that callers decide on
// a typed reason and never on the words of the refusal. It owns the
// encoding both ways; it must not import anything of Carbide but the
// generated managerpb.
package reason
