// Package rpc holds the protobuf definitions (rpc/proto) of the agents'
// control and streaming APIs, the generated code, and small client helpers
// (dialing, TLS, authentication). It imports nothing of ours but internal.
package rpc
