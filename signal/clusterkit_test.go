package signal_test

import (
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/lanft/lanft/internal/cluster"
	"github.com/lanft/lanft/signal"
)

// The in-package cluster tests run internal/cluster, the real thing,
// through signal.TestClusterKit: internal/cluster imports signal, so only
// this external test package may import it.
func init() {
	signal.TestClusterKit = signal.ClusterKit{
		Embedded: func(t testing.TB) func(name string) (*nats.Conn, error) {
			t.Helper()
			ns, err := cluster.StartEmbedded(cluster.EmbeddedConfig{StoreDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ns.Close() })
			return func(name string) (*nats.Conn, error) { return ns.Connect(name) }
		},
		Connect: cluster.Connect,
		Node: func(o signal.NodeOptions) (signal.TestNode, error) {
			cl, err := cluster.New(cluster.Config{Conn: o.Conn, Heartbeat: o.Heartbeat, LeaseTTL: o.LeaseTTL,
				DeadAfter: o.DeadAfter, Replicas: o.Replicas, RelayIP: o.RelayIP})
			if err != nil {
				return nil, err
			}
			return cl, nil
		},
	}
}
