package signal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Message types of the original protocol. "updata" is the protocol's own
// spelling and is kept.
const (
	TypeLogin     = "login"
	TypeOffer     = "offer"
	TypeAnswer    = "answer"
	TypeCandidate = "candidate"
	TypeLeave     = "leave"
	TypeUserlist  = "userlist"
	TypeUpdata    = "updata"
	TypeError     = "error"
	// TypeLanft is lanft's own additive message: from the server, a fresh
	// LoginInfo in its "lanft" field (a refresh, or the reply to a call
	// request); from a lanft client, a CallRequest. Clients of the original
	// protocol ignore a type they do not know, and never send it.
	TypeLanft = "lanft"
)

// Actions carried by an updata message.
const (
	ActionLogin   = "login"
	ActionOffline = "offline"
)

// MaxMessageSize bounds one WebSocket frame in either direction. An SDP offer
// with all its candidates is a few KiB; 64 KiB leaves room for extensions.
const MaxMessageSize = 64 << 10

// MaxMetaSize bounds the opaque lanft extension object a client attaches at login.
const MaxMetaSize = 4 << 10

// Message is one protocol message. The fields are those of PROTOCOL.md; a
// field is omitted from the JSON when it is empty, so every message encodes
// exactly as the original text writes it.
//
// Additive lanft extensions, which an original client ignores:
//   - Meta on login (client -> server): an opaque JSON object, at most
//     MaxMetaSize bytes, that the server hands on to the others with updata
//     and userlist (lanft puts its share announcement there).
//   - Meta on offer and answer: relayed with them (lanft's identity proof).
//   - Peers on userlist: the same users as Users, each with its Meta.
//   - Message on a failed login reply: why it failed.
//   - Meta on an error and a failed login reply (server -> client): an
//     ErrorInfo with the refusal's code (see Refusal).
//   - Meta on a successful login reply (server -> client): a LoginInfo
//     with the ICE servers this host offers; refreshed by TypeLanft.
type Message struct {
	Type      string          `json:"type"`
	Name      string          `json:"name,omitempty"`
	OtherName string          `json:"othername,omitempty"`
	Success   *bool           `json:"success,omitempty"`
	Offer     json.RawMessage `json:"offer,omitempty"`
	Answer    json.RawMessage `json:"answer,omitempty"`
	Candidate json.RawMessage `json:"candidate,omitempty"`
	Users     []string        `json:"users,omitempty"`
	Action    string          `json:"action,omitempty"`
	Message   string          `json:"message,omitempty"`

	Meta  json.RawMessage `json:"lanft,omitempty"`
	Peers []PeerInfo      `json:"peers,omitempty"`
}

// LoginInfo is the additive "lanft" object of a successful login reply and
// of a TypeLanft message from the server.
type LoginInfo struct {
	ICEServers []ICEServer `json:"iceServers,omitempty"`
	// Calls (login reply): this host mints TURN credentials per call; ask
	// with a CallRequest before each connection attempt.
	Calls bool `json:"calls,omitempty"`
	// Call (reply to a CallRequest): the request's number; Message says
	// why the request got no relay, if it got none.
	Call    uint64 `json:"call,omitempty"`
	Message string `json:"message,omitempty"`
	// NoRelay (login reply): why this host relays nothing (a LAN
	// instance run with --no-relay), for peers that find no path.
	NoRelay string `json:"noRelay,omitempty"`
}

// ICEServer is one STUN or TURN server, in the shape of the browser's
// RTCIceServer: URLs such as "stun:host:3478" and
// "turn:host:3478?transport=tcp", with REST-style credentials for TURN
// (Username "EXPIRY:ID", Credential base64(HMAC-SHA1(secret, Username))).
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// PeerInfo is one entry of the additive userlist.peers field.
type PeerInfo struct {
	Name string          `json:"name"`
	Meta json.RawMessage `json:"lanft,omitempty"`
}

// Errors returned by Decode; callers branch on them with errors.Is.
var (
	ErrTooLarge  = errors.New("message too large")
	ErrMalformed = errors.New("malformed message")
)

// Decode parses one frame received from the network. It rejects frames over
// MaxMessageSize, anything that is not a single JSON object with a string
// "type", and invalid UTF-8.
func Decode(data []byte) (Message, error) {
	return decode(data, MaxMessageSize)
}

// decode is Decode with another size limit: a userlist from the server
// holds every user's meta and may exceed MaxMessageSize.
func decode(data []byte, limit int) (Message, error) {
	var m Message
	if len(data) > limit {
		return m, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), limit)
	}
	if !utf8.Valid(data) {
		return m, fmt.Errorf("%w: not UTF-8", ErrMalformed)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return m, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	// Unmarshal, unlike a Decoder, refuses anything after the object
	// (a Decoder's More misses a stray "}" or "]").
	if err := json.Unmarshal(trimmed, &m); err != nil {
		return Message{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if m.Type == "" {
		return Message{}, fmt.Errorf("%w: missing \"type\"", ErrMalformed)
	}
	return m, nil
}

// Encode marshals m for sending.
func Encode(m Message) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("signal: encode %s: %w", m.Type, err)
	}
	return b, nil
}

func boolPtr(b bool) *bool { return &b }

// isJSONObject reports whether raw holds a JSON object (the shape of offers,
// answers and candidates in the original protocol).
func isJSONObject(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) >= 2 && t[0] == '{'
}
