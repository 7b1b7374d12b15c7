package node

// Path says how a connection's bytes move between two peers. It is the one
// vocabulary for the progress line and the --json "path" field, whichever
// part of lanft chose the path (the direct TCP path on a LAN, ICE's
// candidate pair through NATs or a TURN relay).
type Path string

// The paths, fastest first.
const (
	// PathTCP: a direct TCP connection with TLS 1.3, bound to the
	// identities verified on the data channel (both ends lanft, a route
	// between them).
	PathTCP Path = "tcp"
	// PathDataChannel: the WebRTC data channel over host candidates (the
	// same LAN, no NAT in between).
	PathDataChannel Path = "datachannel"
	// PathNAT: the data channel through one or more NATs
	// (server-reflexive or peer-reflexive candidates).
	PathNAT Path = "datachannel-nat"
	// PathRelay: the data channel relayed by a TURN server.
	PathRelay Path = "relay"
)

// Describe is the path in words for the human output.
func (p Path) Describe() string {
	switch p {
	case PathTCP:
		return "direct TCP with TLS 1.3"
	case PathDataChannel:
		return "WebRTC data channel on the LAN"
	case PathNAT:
		return "WebRTC data channel through NAT"
	case PathRelay:
		return "relayed through TURN"
	}
	return string(p)
}
