package signal

import (
	"encoding/json"
	"net/http"
)

// Codes say, for a program, why the server refused something: the code is
// in the additive "lanft" object of every error message and failed login
// reply it sends, beside the seed's "message" text, which stays:
//
//	{"type":"error","message":"login failed: name \"bob\" is taken","lanft":{"code":"name_taken"}}
//
// A refused WebSocket upgrade carries it in the CodeHeader. Client returns
// it as a *ServerError; a server that sends none gives Code "".
const (
	CodeNameTaken    = "name_taken"    // the name, or one too close to it, is online
	CodeNameInvalid  = "name_invalid"  // not a name lanft takes (CheckName)
	CodeRateLimited  = "rate_limited"  // too many messages: this one was dropped
	CodeTooLarge     = "too_large"     // a message or its "lanft" object is over its limit
	CodeBadMessage   = "bad_message"   // not a message of the protocol, or not now
	CodeNoUser       = "no_user"       // othername is not online
	CodeReceiverBusy = "receiver_busy" // othername's queue holds enough of the sender's: try again
	CodeAddressLimit = "address_limit" // the sender's address holds its share of a limit
	CodeRoomFull     = "room_full"     // the room's user list is full
	CodeServerFull   = "server_full"   // the server holds all the connections it takes
	CodeUnavailable  = "unavailable"   // the service (the cluster) cannot be reached: try again
	CodeShuttingDown = "shutting_down" // this node stops: log in again, elsewhere
)

// CodeHeader is the HTTP header of a refused WebSocket upgrade that holds
// its code (CodeServerFull, CodeAddressLimit).
const CodeHeader = "Lanft-Code"

// ErrorInfo is the additive "lanft" object of an error message and of a
// failed login reply.
type ErrorInfo struct {
	Code string `json:"code"`
}

// ServerError is a refusal from the server: its code (one of the Code
// constants, "" from a server that sends none) and its words. A failed
// Dial wraps one; Message.Refusal reads one from a message.
type ServerError struct {
	Code    string
	Message string
}

func (e *ServerError) Error() string { return e.Message }

// Refusal returns the refusal m carries, an error message's or a failed
// login reply's, or nil for any other message.
func (m Message) Refusal() *ServerError {
	failedLogin := m.Type == TypeLogin && m.Success != nil && !*m.Success
	if m.Type != TypeError && !failedLogin {
		return nil
	}
	var info ErrorInfo
	if len(m.Meta) > 0 {
		_ = json.Unmarshal(m.Meta, &info) // a meta of another shape carries no code
	}
	return &ServerError{Code: info.Code, Message: m.Message}
}

// errorMeta is the "lanft" object carrying code.
func errorMeta(code string) json.RawMessage {
	b, err := json.Marshal(ErrorInfo{Code: code})
	if err != nil {
		return nil
	}
	return b
}

// refuseHTTP answers a refused upgrade with status, e's words and its code.
func refuseHTTP(w http.ResponseWriter, status int, e *ServerError) {
	w.Header().Set(CodeHeader, e.Code)
	http.Error(w, e.Message, status)
}
