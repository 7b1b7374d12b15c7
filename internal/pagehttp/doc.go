// Package pagehttp serves a browser page the bytes of a transfer over plain
// HTTP on the LAN, so that a page and a lanft CLI move files at the speed of
// the network rather than of a data channel.
//
// A capability is minted only after the page and the CLI verified each other
// over WebRTC (package node does that and hands the base URL to the page). It
// is a URL with a 32-byte random token, bound to one purpose, one client
// address, one Origin and one listener address:
//
//	http://10.0.0.2:41234/c/TOKEN/hello          both: 204, the probe
//	                             /manifest       download: the MANIFEST JSON of transfer
//	                             /f/<index>      download: one file (Range, If-Range, ETag)
//	                             /zip            download: every entry as one streamed ZIP
//	                             /up?off=N       upload: POST the page's stream bytes from N
//	                             /down?off=N     upload: GET the CLI's stream bytes from N
//
// Every request is checked before any byte of content: the Host header is
// the listener's literal ip:port (against DNS rebinding), an Origin header
// when present is the bound one (POST and GET down require it), the client
// address is the bound peer, the token is known, unexpired and of the right
// purpose. Every refusal is the same empty 404, so nothing is listed and a
// guessed token learns nothing. CORS headers name the bound origin only.
//
// # Upload: the transfer protocol over requests
//
// For an upload the page is the transfer's sender and the CLI runs
// transfer.Receive over a Stream. The page's bytes arrive in POSTs, each
// carrying the stream from offset N; bytes the CLI already has are skipped,
// so a POST cut mid-body is simply sent again from the last offset the page
// saw acknowledged (X-Lanft-Have). The CLI's bytes (PLAN, OK, ERROR: small)
// are kept and served to a GET down?off=N as they are written.
//
//	page                                    CLI (Stream under transfer.Receive)
//	 |-- GET down?off=0 ------------------->|  held open, flushed as written
//	 |-- POST up?off=0   MANIFEST ... ----->|  200 X-Lanft-Have: 1234
//	 |<-------------------------- PLAN -----|
//	 |-- POST up?off=1234 FILE DATA... -X   |  cut: 70000 bytes kept
//	 |-- POST up?off=1234 FILE DATA... ---->|  first 70000 skipped; 200 X-Lanft-Have
//	 |-- POST up?off=... END ---------->    |
//	 |<---------------------------- OK -----|
//
// # Several POSTs in flight
//
// A page may keep several POSTs in flight (httppath.js keeps four of up to
// 6 MiB), since a browser uploads one request body at a time far slower
// than the LAN. A POST that starts past what the CLI has is held, not
// refused, while it is within the window: it starts at most 32 MiB past
// what the CLI has, at most 32 MiB are held in all, and at most 8 such
// POSTs run at once. Its bytes are kept aside and join the stream, in
// order, once the bytes before them arrived (from the POSTs before it, or
// their retries); it answers 200 only then, with X-Lanft-Have saying all
// the CLI has (so possibly past its own end). A POST past the window, one
// more than 8, or one held while the stream does not grow for Config.Hold
// (30 s) is a 409 with X-Lanft-Have, as a gap always was; a held POST that
// fails leaves nothing behind. The page sends again, from the last offset
// acknowledged, whatever was not acknowledged. This is additive: a page
// that sends one POST at a time never starts past what the CLI has.
//
//	|-- POST up?off=0        (6 MiB) ----->|  appended as it arrives
//	|-- POST up?off=6291456  (6 MiB) ----->|  held ahead: kept aside
//	|-- POST up?off=12582912 (6 MiB) ----->|  held ahead: kept aside
//	|<----- 200 X-Lanft-Have: 6291456 -----|  the first is in
//	|<----- 200 X-Lanft-Have: 18874368 ----|  the held ones joined, in order
//	|<----- 200 X-Lanft-Have: 18874368 ----|
package pagehttp
