// Package transfer moves files and folders over any reliable, ordered byte
// stream (an io.ReadWriter), verifies them with SHA-256, resumes interrupted
// transfers, and receives them without letting a hostile sender write outside
// the target folder. It knows nothing of WebRTC or signaling.
//
// A sender builds a Source once (walking and hashing the files) and calls
// Source.Serve for each receiver; a receiver calls Receive.
//
// # Wire format
//
// Everything is a frame:
//
//	+---------+----------------------+------------------+
//	| type u8 | length u32 (big end) | payload (length) |
//	+---------+----------------------+------------------+
//
// Each length is checked against its type's bound before any payload byte is
// read or allocated: MANIFEST and PLAN at most 16 MiB, DATA 1 to 256 KiB,
// ERROR at most 64 KiB, FILE exactly 12 bytes, TRAILER exactly 40, END and OK
// empty. A larger
// control payload is buffered as it arrives, never allocated up front.
//
//	type  name      direction   payload
//	'M'   MANIFEST  S -> R      JSON {"version":1,"entries":[{"path","kind","size","sha256"}...]}
//	'P'   PLAN      R -> S      JSON {"files":[{"index","offset","sha256"}...]}
//	'F'   FILE      S -> R      entry index u32, start offset u64 (big endian)
//	'D'   DATA      S -> R      the next bytes of the current file
//	'E'   END       S -> R      -
//	'K'   OK        R -> S      -
//	'X'   ERROR     both        JSON {"code","message"}
//	'T'   TRAILER   S -> R      a stream's size u64 + SHA-256 (32 bytes), after its DATA
//
// A transfer runs in one pass, with no round trip per file:
//
//	sender (Serve)                              receiver (Receive)
//	    |--- MANIFEST (all entries, hashes) ------->|  validate every name first,
//	    |                                           |  Accept(manifest), look at Dir:
//	    |                                           |  identical files are skipped,
//	    |                                           |  NAME.part prefixes hashed,
//	    |                                           |  free space checked, folders made
//	    |<-- PLAN (files wanted; per file the ------|
//	    |    offset and SHA-256 of its .part)       |
//	 check each prefix hash against the             |
//	 local file; a mismatch restarts at 0           |
//	    |--- FILE(i, offset) DATA DATA ... -------->|  write NAME.part, hash as written
//	    |--- FILE(j, 0) DATA ... ------------------>|  previous file: exact size and
//	    |--- FILE(k, 0) (empty file) -------------->|  SHA-256, then rename to NAME
//	    |--- END ---------------------------------->|
//	    |<-- OK ------------------------------------|  (or ERROR{code, message})
//
// The receiver may send ERROR at any point (declined, unsafe name, corrupted
// file, no space, ...); the sender reads concurrently with writing, so it
// stops at once. A sender that fails sends ERROR too, and the receiver answers
// with ERROR "aborted" so both sides end. Codes: rejected, unsafe_name,
// integrity, no_space, protocol, conflict, source_changed, aborted, failed.
// Messages are plain text written for people, escaped before display, and
// never carry local paths.
//
// Indexes in PLAN and FILE are positions in the manifest's entry list.
// Files are listed in the PLAN and sent in manifest order; a file the PLAN
// omits is already complete at the receiver. A FILE offset is either the
// offset the PLAN asked for (the receiver's .part prefix matched) or 0. A
// file is checked when the next FILE or END frame arrives, so a sender that
// sends too few or too many bytes is caught before anything is renamed.
//
// A "stream" entry (KindStream: standard input) has no size or SHA-256 in
// the manifest; its TRAILER brings them after its bytes (stream.go).
//
// The MANIFEST is one frame, so a transfer lists at most what fits in
// 16 MiB of JSON: about 100,000 entries with typical names.
//
// # Receiving safely
//
// ValidateManifest rejects the whole transfer, on both sides, before anything
// is written if any path is absolute, escapes the folder, uses backslashes
// or UNC prefixes, contains control, bidi or zero-width characters, is too
// long, or collides with another entry after Unicode normalisation and case
// folding. Those names are unsafe everywhere.
//
// Names that only some systems cannot hold pass: a ':' or any of <>"|?*, a
// trailing dot or space, a Windows device name (CON, NUL, COM1, ...). A
// receiver whose system cannot hold one (ReceiveOptions.Names, by default
// the system it runs on: Windows) saves it under a safe name: each reserved
// character becomes '_', trailing dots and spaces become '_', and a device
// name gets a '_' after its stem ("Meeting: notes?.txt" ->
// "Meeting_ notes_.txt", "CON.txt" -> "CON_.txt"). A safe name that another
// entry of the manifest has, or that an earlier entry took, gets a number
// ("a_b (1).txt"); a renamed folder keeps its contents. The safe name depends
// only on the manifest, so a resumed transfer finds the .part again. Such
// files are listed in Result.Renamed, with RenameReason saying why.
//
// Writes go through an os.Root on the target folder and never follow
// symbolic links; a file is written as NAME.part and renamed only after its
// size and SHA-256 check, and never replaces an existing file (a different
// file gets "NAME (1).ext"). Modes are fixed (0644 files, 0755 folders).
//
// # What the PLAN reveals
//
// Only what the sender needs to resume: an offset (and the SHA-256 of the
// bytes before it) for a NAME.part of this very file, and the absence of a
// file the receiver holds complete with the manifest's SHA-256 (verified).
// A .part lanft creates carries an extended attribute with the SHA-256 of
// the file it is the start of (user.lanft.sha256); a NAME.part without it,
// or with another file's, is someone else's (a browser's download, another
// version): it is left alone and the file is saved as "NAME (1).ext", which
// the PLAN says nothing of, as for a different complete NAME. Where the
// filesystem holds no extended attributes (FAT, exFAT, Windows here), every
// .part is taken as lanft's and resumed after the sender's prefix check, as
// before tags.
package transfer
