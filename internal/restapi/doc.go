// Package restapi is the HTTP side of the agents' REST API v2
// (docs/rest-api.md): a server with HTTP basic authentication, the Tungsten
// style JSON envelope, an open ping route, and the mapping of the agents'
// gRPC status codes to HTTP statuses.
//
// Invariants: every route but ping needs the configured user and password
// (compared in constant time); a Server is never built without them; a
// failed authentication is logged with the user and remote address, never
// the password. The package knows nothing of the agents: each registers
// its routes and calls its own in-process implementation. It imports only
// internal/config and internal/daemon of ours.
package restapi
