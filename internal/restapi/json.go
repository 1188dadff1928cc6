package restapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Envelope is every successful answer, as Tungsten's APIv2 sends it.
type Envelope struct {
	PayloadType    string `json:"payloadType"`
	PayloadVersion string `json:"payloadVersion"`
	Payload        any    `json:"payload"`
}

// ErrorBody is every error answer.
type ErrorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, ErrorBody{Error: msg})
}

// maxBody bounds a request body.
const maxBody = 64 << 10

// DecodeBody reads the request's JSON body into v: an empty body leaves v
// as it is; unknown fields and malformed JSON are a 400.
func DecodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return Error(http.StatusBadRequest, fmt.Sprintf("the request body is not the JSON %s %s takes: %v", r.Method, r.URL.Path, err))
	}
	return nil
}

// typed is a payload with its own payloadType.
type typed struct {
	payloadType string
	payload     any
}

// Typed returns payload sent with payloadType instead of the route's (a
// route whose answer's kind depends on the request).
func Typed(payloadType string, payload any) any { return typed{payloadType, payload} }
