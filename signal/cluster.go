package signal

import (
	"context"

	"github.com/lanft/lanft/internal/cluster"
)

// Cluster is what a server needs from the other nodes of its service;
// *cluster.Cluster is one. The server hands its cluster.Handler
// (ClusterHandler) to the cluster's Run.
type Cluster interface {
	// Claim takes p's folded name in p.Room for this node (atomically
	// across nodes) and announces the login; *cluster.TakenError if held.
	Claim(ctx context.Context, p cluster.Presence) (rev uint64, err error)
	// Release frees the name of a local user who left, and announces it.
	Release(ctx context.Context, p cluster.Presence)
	// Relay hands an encoded message to the node of user to in room.
	Relay(room, to string, msg []byte) error
	// Lookup asks the shared state who holds key in room.
	Lookup(ctx context.Context, room, key string) (cluster.Presence, bool)
}
