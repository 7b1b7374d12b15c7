// Package signal is lanft's signaling: a WebSocket server that lets users
// on a LAN find each other and relays the WebRTC offers, answers and ICE
// candidates that connect them, a client that logs in to it, and the
// messages both speak.
//
// # Wire format
//
// The protocol is that of the original WebRTC-FileTransferTool, kept
// byte-compatible so that a client written from its README works
// unchanged: one JSON object per WebSocket text frame, each with a string
// "type". "updata" is the original's spelling and is kept. Server at Path.
//
//	alice                       host                        bob (online)
//	  |                          |                            |
//	  |-- login ---------------->|  {"type":"login","name":"alice","lanft":{..}}
//	  |<--------------- login ---|  {"type":"login","success":true}
//	  |<------------ userlist ---|  {"type":"userlist","users":["bob","alice"],
//	  |                          |   "peers":[{"name":"bob"},{"name":"alice","lanft":{..}}]}
//	  |                          |-- updata ----------------->|
//	  |                          |  {"type":"updata","action":"login","name":"alice","lanft":{..}}
//	  |                          |                            |
//	  |-- offer ---------------->|  {"type":"offer","name":"alice","othername":"bob","offer":{SDP}}
//	  |                          |-- offer ------------------>|
//	  |                          |  {"type":"offer","name":"alice","offer":{SDP}}
//	  |                          |<----------------- answer --|
//	  |                          |  {"type":"answer","name":"bob","othername":"alice","answer":{SDP}}
//	  |<-------------- answer ---|  {"type":"answer","name":"bob","answer":{SDP}}
//	  |-- candidate ------------>|-- candidate -------------->|  both ways, as gathered:
//	  |<------------ candidate --|<-------------- candidate --|  {"type":"candidate","name":..,"candidate":{..}}
//	  |                          |                            |
//	  |-- leave ---------------->|-- leave ------------------>|
//	  |  {"type":"leave","name":"alice","othername":"bob"}    {"type":"leave","name":"alice"}
//	  |                          |                            |
//	  X disconnects              |-- updata ----------------->|
//	                             |  {"type":"updata","action":"offline","name":"alice"}
//
// Errors never close the connection:
//
//	client                      host
//	  |-- bad frame ------------>|  malformed JSON, no "type", unknown type, no "othername",
//	  |                          |  no offer/answer/candidate object, unknown "othername",
//	  |                          |  anything but login before login, a second login
//	  |<--------------- error ---|  {"type":"error","message":"cannot send \"offer\": no user \"carol\" is online",
//	  |                          |   "lanft":{"code":"no_user"}}
//	  |-- login (taken name) --->|
//	  |<--------------- login ---|  {"type":"login","success":false,"message":"name \"bob\" is taken",
//	  |                          |   "lanft":{"code":"name_taken"}}
//	  |<--------------- error ---|  {"type":"error","message":"login failed: name \"bob\" is taken",
//	  |                          |   "lanft":{"code":"name_taken"}}
//
// # Extensions
//
// lanft's additions are optional fields an original client ignores; the
// fields of the original are never changed:
//
//   - "lanft" on login (client to server) and on updata login (server to
//     client): an opaque JSON object of at most MaxMetaSize bytes that the
//     server hands on unchanged.
//   - "lanft" on offer, answer and leave: an object of at most MaxMetaSize
//     bytes relayed with them (lanft's identity proof; on a leave, a
//     refusal signed by the device key, so the host cannot forge one).
//   - "peers" on userlist: the same users as "users", in the same order,
//     each as {"name":..,"lanft":{..}}.
//   - "message" on a failed login reply: why it failed.
//   - "lanft" on every error message and failed login reply: {"code":..},
//     why, for a program (the "message" is for people and stays as it
//     was). The codes are the Code constants: name_taken (the name, or
//     one too close to it, is online), name_invalid, rate_limited,
//     too_large, bad_message (not the protocol, or not now), no_user
//     (othername is not online), receiver_busy, address_limit (your
//     address holds its share), room_full, server_full, unavailable (the
//     service behind this node cannot be reached: try again) and
//     shutting_down (log in again, elsewhere). A refused WebSocket
//     upgrade carries its code in the Lanft-Code header (CodeHeader).
//     Client returns a refusal as a *ServerError; Message.Refusal reads
//     one from an error message.
//   - "lanft" on a successful login reply (server to client), when the
//     host offers STUN/TURN: LoginInfo, in the shape of the browser's
//     RTCIceServer. A host that mints TURN credentials per call (lanft
//     signal's own relay or --external-turn) sends STUN alone and
//     "calls":true: {"iceServers":[{"urls":["stun:h:3478"]}],"calls":true}.
//     Other hosts' credentials are sent again, fresh, in a message of the
//     new type "lanft" (TypeLanft) before they expire.
//   - A "lanft" message from a client (a lanft client of a "calls" host,
//     before each connection attempt): {"type":"lanft","lanft":{"call":N}}
//     asks for one call's ICE servers; the reply is a "lanft" message
//     {"call":N,"iceServers":[{"urls":["stun:h:3478"]},
//     {"urls":["turn:h:3478?transport=udp","turn:h:3478?transport=tcp"],
//     "username":"EXPIRY:ID","credential":".."}]}, a short-lived
//     credential with a small allocation quota. Requests are rate-limited
//     per connection (Config.CallBurst, CallRate); past it the reply holds
//     the login's servers and a "message" saying why. See call.go.
//   - {"type":"lanft","lanft":{"relay":{"peer":NAME}}} asks for a TCP
//     relay to NAME; two users who ask for each other get the two halves
//     of a one-time token pair (Config.Relay), a refusal a "message". See
//     relay.go. A login reply's "noRelay" says why a host relays nothing.
//   - Rooms: the endpoint at Path+"/ROOM" (RoomFromPath) is a host of its
//     own for each ROOM: its own user list and names; nothing is relayed
//     between rooms. Path itself is the default room.
//
// # Rules the original leaves open
//
// The server stamps every relayed offer, answer, candidate and leave with
// the sender's logged-in name and ignores the "name" the sender claims.
// Names are refused at login when empty, not NFC, over MaxNameLength, or
// holding control, format (bidi, zero-width) or leading/trailing space
// characters, and when they fold (case, compatibility forms) to the name
// of a user online. A frame is at most MaxMessageSize; a message for a
// user who is not online is answered with an error. Each connection is
// rate-limited and has a bounded outbound queue; a reader too slow to
// drain it is disconnected. A sender whose relayed messages already fill
// its share (an eighth) of a receiver's queue is refused instead, so that
// one sender's burst costs the receiver nothing:
//
//	{"type":"error","message":"cannot send \"offer\" to \"bob\" now: \"bob\" is busy reading what you sent before; try again in a moment","lanft":{"code":"receiver_busy"}}
//
// One address (IPv4, or a remote IPv6 /64) may hold Config.MaxConnsPerAddr
// connections and Config.MaxUsersPerAddr users of a room, and a room's user
// list is bounded (Config.MaxRoomBytes); past half of either bound the
// address holding the most is refused first, past three quarters every
// address but those with a few (admission.go). A refused connection is
// answered with HTTP 429 and the reason; a refused login as any:
//
//	{"type":"login","success":false,"message":"this room has 256 users from your address (192.0.2.7), the most one address may have: log out one of them first","lanft":{"code":"address_limit"}}
//	{"type":"error","message":"login failed: this room has 256 users from your address (192.0.2.7), the most one address may have: log out one of them first","lanft":{"code":"address_limit"}}
//
// A connection must log in within
// Config.LoginTimeout. The upgrade is refused for a Host that is not an IP
// address, localhost, a .local name or Config.AllowedHosts (DNS
// rebinding), and for a browser Origin other than the host itself or
// Config.AllowedOrigins.
package signal
