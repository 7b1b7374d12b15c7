// Package deptest holds the test that keeps lanft's imports running the
// right way (in the manner of tailscale's tstest/deptest): the protocol
// packages import nothing of internal/, the peer client neither the page
// nor the host, and signal, rtc and transfer know nothing of each other.
// It has no code of its own.
package deptest
