package router

import "encoding/binary"

// MySQL error codes the connector answers with.
const (
	// ErrConnectorOffline: `router H offline` refuses new connections.
	ErrConnectorOffline uint16 = 1040
	// ErrNoPrimary: no datasource to route to within the hold timeout.
	ErrNoPrimary uint16 = 2003
)

// errorPacket is a MySQL ERR packet sent in place of the server's
// handshake (sequence id 0): clients print "ERROR code (state): msg".
func errorPacket(code uint16, state, msg string) []byte {
	if len(state) != 5 {
		state = "HY000"
	}
	payload := make([]byte, 0, 9+len(msg))
	payload = append(payload, 0xff)
	payload = binary.LittleEndian.AppendUint16(payload, code)
	payload = append(payload, '#')
	payload = append(payload, state...)
	payload = append(payload, msg...)
	if len(payload) > 0xffffff {
		payload = payload[:0xffffff]
	}
	n := len(payload)
	pkt := []byte{byte(n), byte(n >> 8), byte(n >> 16), 0}
	return append(pkt, payload...)
}
