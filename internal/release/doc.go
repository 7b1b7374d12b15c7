// Package release tests the release build: goreleaser.yaml at the top of
// the repository must pass `goreleaser check`, and a snapshot build must
// give a static binary that reports its version and commit. It holds no
// code; the tests need goreleaser (.ci/install-goreleaser installs it).
package release
