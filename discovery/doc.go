// Package discovery finds the other lanft instances on the LAN over mDNS
// and elects, among all of them, the one whose signaling server everybody
// logs in to.
//
// Every instance runs its own signaling server; discovery only decides
// which one is used. The answer is a hint, never a credential: anyone on the
// LAN can send mDNS answers, and peers authenticate each other end to end
// (lanft's threat model: spoofed mDNS answers are expected).
//
// # Parts
//
// A Source moves packets: the default one (mDNS) runs, per interface, a
// responder (responder.go) that answers, with that interface's own
// addresses, only the queries that came in on that interface from its link,
// and sends a query on that interface every query interval (query.go). Both
// are our own, on miekg/dns. Tests inject an in-memory Source.
//
// mDNS stays on the interfaces discovery was given: the responder joins
// 224.0.0.251 (and ff02::fb) on its interface only and ignores what reaches
// port 5353 on any other (a unicast query over a VPN gets no answer), and
// the querier joins no group at all. Each query uses a fresh UDP socket bound to the
// interface's IPv4 address with a random port, sends with the multicast
// interface set to that interface (TTL 255, loopback on, so that two
// instances on one machine hear each other) and asks for a unicast answer
// (QU bit; a source port other than 5353 also makes it a "legacy unicast"
// query, RFC 6762 section 6.7). The responders answer by unicast to that
// socket. So
// discovery works where only the named interface can carry multicast, and
// an interface it was not given sees none of its packets. An interface
// without IPv4 is queried over IPv6 the same way (ff02::fb zoned to it,
// from [::]:0). The rest is pure logic,
// tested without sockets: the TXT record (record, parseTXT), the view of
// who answered recently (view) and the election rule (Elect).
//
//	instance A (querier)                        instance B (responder)
//	   |  PTR? _lanft._tcp.local.   -- multicast 224.0.0.251:5353 on A's interface -->|
//	   |<-- PTR B-ID-IFINDEX._lanft._tcp.local., SRV port + lanft-B-ID-IFINDEX.local.,|
//	   |    A/AAAA of B's interface, TXT v id name prio port host since  (unicast)    |
//	   |  ... again every query interval; no answer for ExpireAfter: B has left       |
//
// The responder never announces by itself and sends no goodbye, so a change
// of record (a new host claim) is seen on the others' next query, and a
// departure by the missing answers (or at once through Forget, when the app
// sees the host's WebSocket close).
//
// # Wire format
//
// Service "_lanft._tcp" in "local.". Instance name "ID-IFINDEX", host name
// "lanft-ID-IFINDEX.local.", unique per interface so that an answer leaked
// from another interface of the same machine stays apart; the querier keeps
// only answers sent from port 5353 by an address on the link, and in them
// only addresses on the interface's own subnets (and link-local IPv6, zoned
// to it). The SRV and TXT records carry the signaling server's port. TXT
// strings are "key=value"; the keys are documented on record (txt.go):
// v (protocol major version, 1), id, name, prio, port, host, since. An
// answer with another major version, or with any invalid field, is ignored.
//
// # Election
//
// Every instance applies Elect to its own view (itself plus every instance
// heard within ExpireAfter):
//
//   - If some instances claim to be host (host=1), the one with the oldest
//     claim (smallest since, then smallest id) is the host. Other claimants
//     step down. So a newcomer never deposes a working host, whatever its
//     priority, and after a healed partition the two hosts merge into the
//     older one: the clients of the newer one see its claim lose and move.
//   - If nobody claims, the candidate with the highest priority (then the
//     smallest id) starts claiming, with since = now in Unix milliseconds,
//     once it has run for the settle time (1.5 query intervals), so that a
//     new instance hears an existing host before it may claim. While nobody
//     claims, State.HasHost is false.
//
// The rule only compares values that everyone sees, so equal views give the
// same host; "oldest" is by each host's own clock, which may be skewed, but
// is the same number for everyone.
//
// # Timing
//
// Each instance queries every query interval Q, and every Q/4 while its view
// has no host (cold start, host gone), so that a new claim is heard soon.
// With the defaults (Q = 1 s, ExpireAfter E = 3 s, expiry checked every
// Q/4, settle S = 1.5 Q), plus network time:
//
//   - A new instance lists the others Q/4 after they are up; they list it
//     on their next query, <= Q. Measured on a 3-host namespace LAN: 0.3 s.
//   - On a cold start the candidate claims after S and the others, still
//     without a host, hear it within Q/4: <= S + Q/4 = 1.75 s. Measured:
//     1.6-1.8 s.
//   - When the host dies, each other instance drops it E to E + Q/4 after
//     its last answer; the new candidate claims then, and the others, now
//     without a host, hear the claim within Q/4: worst case E + Q/2 =
//     3.5 s. Measured: 3.25-3.5 s for a host killed right after an answer;
//     killed at a random point of the query cycle (BenchmarkLANTimes, 5
//     runs), 2.1-3.1 s, median 2.6 s. With HostExpireAfter (lanft sets
//     E + 3Q = 6 s, see below) the worst case is 6.5 s; lanft does not
//     wait for it (next points).
//   - With Forget, as lanft uses it, a dead host is gone from each view as
//     soon as that instance knows (its WebSocket to the host closed and the
//     host's port refuses a connection: internal/host), and a query goes
//     out at once; the candidate claims at once and the others hear the
//     claim on their next Q/4 query: about Q/4. A forgotten instance's
//     answers are ignored for Q/2 (one sent just before its death may still
//     be on its way). Measured with the real binary (BenchmarkLANFailover,
//     10 rounds): 5 hosts, median 255 ms (120-258 ms); 30 hosts, median
//     284 ms (259-346 ms).
//   - A host that only pauses (SIGSTOP, a stall) misses the queries of the
//     pause: after 2 s its last answer heard may be 3 s old, the expiry E,
//     and more on a loaded machine. So the elected host expires after
//     HostExpireAfter, when that is set longer (lanft: E + 3Q = 6 s), and a
//     2 s pause elects nobody. lanft probes the host's port as soon as one
//     of its answers is missing (internal/host): a host whose link is cut
//     (no reset comes back) is forgotten after the probe's misses, about
//     2.6 s after the cut in the namespace test.
//   - After a partition heals, each side hears the other on its next query
//     and agrees at once on the older host; the newer host's step-down is
//     seen one query later: <= 2 Q + Q/4. Measured: 1.0-1.25 s.
//   - An instance cut off from the LAN drops the others after E and, alone,
//     claims: E + Q/4 = 3.25 s.
//
// # Without multicast
//
// Where the network drops multicast, Config.Unicast adds a fallback beside
// the Source (unicast.go, which documents its wire format, GET
// /lanft/hello): the instances given by hand, those remembered from earlier
// runs and, while mDNS hears no instance on another machine, a sweep of
// each interface's own private IPv4 subnet (at most a /24, rate-limited,
// bound to the interface). Its answers are Sightings like mDNS's, so the
// view, expiry and election work the same over whatever found the peers.
//
// # Interfaces
//
// By default every interface that is up, has a carrier, is
// multicast-capable, is neither loopback nor point-to-point, and has an
// address (DefaultInterfaces, which also says why the others were skipped).
// Config.Interfaces names them instead, loopback included. The list is fixed
// when New runs; each interface's addresses are re-read before every query.
// ResolveInterfaces is that choice, and LocalAddrs those addresses with a
// signal of their changes: lanft's listeners and ICE follow them, so that
// what reaches a LAN instance is what discovery works on.
package discovery
