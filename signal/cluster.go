package signal

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
)

// Cluster is what a server needs from the other nodes of its service
// (internal/cluster implements it over NATS). The server hands its
// ClusterHandler to the cluster, which tells it what the other nodes do.
// The server cancels the ctx of Claim and Lookup when the connection that
// asked closes or the server drains; Release's ends with Close.
type Cluster interface {
	// Claim takes p's folded name in p.Room for this node (atomically
	// across nodes) and announces the login; a *TakenError if held.
	Claim(ctx context.Context, p Presence) (rev uint64, err error)
	// Release frees the name of a local user who left, and announces it.
	Release(ctx context.Context, p Presence)
	// Relay hands an encoded message to the node of user to in room.
	Relay(room, to string, msg []byte) error
	// Lookup asks the shared state who holds key in room.
	Lookup(ctx context.Context, room, key string) (Presence, bool)
}

// ClusterHandler receives what the other nodes of the service do, from the
// cluster: one call at a time, in the order the events happened.
type ClusterHandler interface {
	// Online: p logged in on another node (or was found online at a resync).
	Online(p Presence)
	// Offline: p (matched by Room, Key and Rev) left, or its node died.
	Offline(p Presence)
	// Deliver: msg, encoded, for the local user named to in room.
	Deliver(room, to string, msg []byte)
	// Reset: this node lost the service or reads it anew: close the local
	// clients (they log in again elsewhere) and forget every remote user.
	Reset()
}

// Presence is one logged-in user as the cluster knows it.
type Presence struct {
	Room string          // room name ("" is the default room)
	Key  string          // the folded name (names.Key): unique per room
	Name string          // the name as the user logged in
	Node string          // the node holding the connection
	Rev  uint64          // the claim's revision: a total order of logins
	Meta json.RawMessage // the additive "lanft" object of the login
	Addr netip.Addr      // where the client connects from (TURN permissions)
	// Relay is the public address of the TURN relay of the user's node:
	// relays of two nodes may send to each other for users of one room.
	Relay netip.Addr
}

// TakenError is what Cluster.Claim returns when the name's key is held:
// Holder is the name that holds it (the same name, or one too close to it).
type TakenError struct{ Holder string }

func (e *TakenError) Error() string { return fmt.Sprintf("signal: name held by %q", e.Holder) }
