package security

import (
	"context"
	"crypto/subtle"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// tokenKey is the metadata key of the control token.
const tokenKey = "carbide-token"

// errNotMember is what a call without the cluster's token gets.
var errNotMember = status.Error(codes.Unauthenticated,
	"refused: the request does not carry this cluster's secret (is the client's tungsten.ini replication-password the cluster's?)")

// tokenCreds puts the token on every call.
type tokenCreds string

func (t tokenCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{tokenKey: string(t)}, nil
}

func (t tokenCreds) RequireTransportSecurity() bool { return false }

// Token is the value a client sends (tests that build their own calls).
func (c *Cluster) Token() (key, value string) { return tokenKey, c.token }

func (c *Cluster) authorized(ctx context.Context) bool {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return false
	}
	for _, v := range md.Get(tokenKey) {
		if subtle.ConstantTimeCompare([]byte(v), []byte(c.token)) == 1 {
			return true
		}
	}
	return false
}

func (c *Cluster) unaryAuth(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if !c.authorized(ctx) {
		return nil, errNotMember
	}
	return h(ctx, req)
}

func (c *Cluster) streamAuth(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if !c.authorized(ss.Context()) {
		return errNotMember
	}
	return h(srv, ss)
}
