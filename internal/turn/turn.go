// Package turn is the STUN and TURN server inside `lanft signal` (Pion's
// TURN library) and the short-lived credentials its signaling host hands
// to the clients of each room: one per call (a connection attempt, see
// signal.CallICEProvider), none at login.
//
// Credentials follow the TURN REST scheme that coturn's "use-auth-secret"
// also speaks: username "EXPIRY:ID" (EXPIRY in Unix seconds), password
// base64(HMAC-SHA1(secret, username)). lanft's ID is "TAG.NONCE", TAG
// naming the signaling room without revealing it (the username crosses the
// network in clear). The secret is random per host unless configured, so
// the credentials of one host are useless at another.
//
// The relay is no open proxy. An allocation may send only to
//   - the address a client logged in to the same room of this host connects
//     from, as the signaling server's own socket sees it, or another
//     cluster node's relay address (Directory.RoomPeerAddrs),
//   - an address the signaling server was only told (X-Forwarded-For
//     behind a trusted proxy, a user of another cluster node) if it is
//     public, or if a client of that room holds an allocation here from it:
//     a private address (RFC 1918, ULA, CGNAT) is opened by no header, or
//   - a relay address this server allocated to a client of that room,
//
// never to the host's loopback, unspecified, multicast or link-local
// addresses nor to any other address of the host itself. Each credential
// holds at most MaxAllocations allocations and relays at most Rate bytes a
// second each way (past it datagrams wait, as at a link of that speed with
// a queue; only a full queue drops).
//
// An expired credential cannot allocate, but refreshes, permissions and
// channel bindings of an allocation made in time still succeed (with a
// valid signature): expiry does not cut a running relayed transfer.
package turn

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // RFC 5766 / TURN REST mandate HMAC-SHA1
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Realm is the TURN realm of lanft's relay.
const Realm = "lanft"

// Credential is one TURN REST credential.
type Credential struct {
	Username string
	Password string
	Expires  time.Time
}

// NewSecret returns a random secret for a host that was given none.
func NewSecret() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return b
}

// Issue makes a credential for a client of room, valid for ttl.
func Issue(secret []byte, room string, ttl time.Duration, now time.Time) Credential {
	var nonce [9]byte
	_, _ = rand.Read(nonce[:])
	exp := now.Add(ttl).Truncate(time.Second)
	user := strconv.FormatInt(exp.Unix(), 10) + ":" + RoomTag(secret, room) + "." +
		base64.RawURLEncoding.EncodeToString(nonce[:])
	return Credential{Username: user, Password: Password(secret, user), Expires: exp}
}

// Password is base64(HMAC-SHA1(secret, username)).
func Password(secret []byte, username string) string {
	mac := hmac.New(sha1.New, secret)
	mac.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// RoomTag names room inside a username: a keyed hash, so that who sees the
// username learns nothing of the room's name.
func RoomTag(secret []byte, room string) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("lanft room\x00" + room))
	return hex.EncodeToString(mac.Sum(nil)[:8])
}

// Errors of parse.
var (
	errBadUsername = errors.New("turn: username is not EXPIRY:ID")
)

// parseUsername splits "EXPIRY:TAG.NONCE".
func parseUsername(user string) (expires time.Time, tag string, err error) {
	exp, id, ok := strings.Cut(user, ":")
	if !ok {
		return time.Time{}, "", errBadUsername
	}
	sec, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || sec <= 0 {
		return time.Time{}, "", errBadUsername
	}
	tag, _, _ = strings.Cut(id, ".")
	return time.Unix(sec, 0), tag, nil
}

// External hands out credentials for a TURN server run apart (coturn with
// use-auth-secret and the same static-auth-secret). It cannot know who is
// logged in where: that server's own configuration must keep it from being
// an open proxy (coturn: denied-peer-ip, no-loopback-peers).
type External struct {
	URLs   []string // "turn:turn.example.org:3478?transport=udp", ...
	Secret []byte
	TTL    time.Duration // 0: DefaultTTL
}

// DefaultTTL is how long a credential lets its holder allocate: one call's
// ICE gathering, which starts as the credential arrives. The allocations
// themselves live on while refreshed (see the package doc).
const DefaultTTL = 5 * time.Minute

// DefaultMaxAllocations is the allocations one credential (one call) may
// hold: a UDP and a TCP relay for each of a few local networks (a browser
// allocates per network).
const DefaultMaxAllocations = 8

// Credentials issues a credential for room at now.
func (e External) Credentials(room string, now time.Time) Credential {
	ttl := e.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	return Issue(e.Secret, room, ttl, now)
}

func hostPort(host string, port int) string {
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]"
	}
	return fmt.Sprintf("%s:%d", host, port)
}
