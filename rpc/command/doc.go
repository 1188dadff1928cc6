// Package command builds the managers' typed commands (a
// managerpb.CommandRequest) from an operator's words, and renders a
// command as the words cctrl takes ("switch to east2") for logs and
// messages. Clients parse; the manager decides on the typed request and
// never reads words. It imports nothing of Carbide but managerpb.
package command
