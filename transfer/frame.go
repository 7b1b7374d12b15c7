package transfer

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// frameType is the first byte of a frame.
type frameType byte

const (
	frameManifest frameType = 'M' // sender -> receiver, JSON
	framePlan     frameType = 'P' // receiver -> sender, JSON
	frameFile     frameType = 'F' // sender -> receiver, index u32 + offset u64
	frameData     frameType = 'D' // sender -> receiver, file bytes
	frameEnd      frameType = 'E' // sender -> receiver, empty
	frameOK       frameType = 'K' // receiver -> sender, empty
	frameError    frameType = 'X' // either way, JSON {"code","message"}
	frameTrailer  frameType = 'T' // sender -> receiver, after a stream's bytes: size u64 + SHA-256
)

const (
	headerLen         = 5
	maxControlLen     = 16 << 20 // MANIFEST, PLAN
	maxDataLen        = 256 << 10
	maxErrorLen       = 64 << 10
	filePayloadLen    = 12
	trailerPayloadLen = 40
	readBufferLen     = 64 << 10
	writeBufferLen    = 64 << 10
	smallPayloadCap   = 64 << 10 // control payloads up to this size reuse the read buffer
)

func (t frameType) String() string {
	switch t {
	case frameManifest:
		return "MANIFEST"
	case framePlan:
		return "PLAN"
	case frameFile:
		return "FILE"
	case frameData:
		return "DATA"
	case frameEnd:
		return "END"
	case frameOK:
		return "OK"
	case frameError:
		return "ERROR"
	case frameTrailer:
		return "TRAILER"
	}
	return fmt.Sprintf("0x%02x", byte(t))
}

// payloadBounds returns the smallest and largest payload a frame type may carry.
func payloadBounds(t frameType) (lo, hi uint32, ok bool) {
	switch t {
	case frameManifest, framePlan:
		return 2, maxControlLen, true // at least "{}"
	case frameFile:
		return filePayloadLen, filePayloadLen, true
	case frameTrailer:
		return trailerPayloadLen, trailerPayloadLen, true
	case frameData:
		return 1, maxDataLen, true
	case frameEnd, frameOK:
		return 0, 0, true
	case frameError:
		return 2, maxErrorLen, true
	}
	return 0, 0, false
}

// frameReader reads frames, checking each length against its type's bound
// before reading or allocating anything.
type frameReader struct {
	r   *bufio.Reader
	hdr [headerLen]byte
	buf []byte // reused for DATA and small control payloads
}

// newFrameReader reads frames from r, reusing a payload buffer of bufLen
// bytes; larger payloads are allocated as they arrive.
func newFrameReader(r io.Reader, bufLen int) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, min(bufLen, readBufferLen)), buf: make([]byte, bufLen)}
}

// next returns the next frame. The payload of a DATA frame, or of any frame
// up to smallPayloadCap bytes, is only valid until the following call.
// At a clean frame boundary the end of the stream is io.EOF; inside a frame
// it is io.ErrUnexpectedEOF. Bad frames return an error wrapping ErrProtocol.
func (fr *frameReader) next() (frameType, []byte, error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		return 0, nil, err
	}
	t := frameType(fr.hdr[0])
	n := binary.BigEndian.Uint32(fr.hdr[1:])
	lo, hi, ok := payloadBounds(t)
	if !ok {
		return 0, nil, protocolErr(fmt.Sprintf("unknown frame type %s", t))
	}
	if n < lo || n > hi {
		return 0, nil, protocolErr(fmt.Sprintf("%s frame of %d bytes is outside the allowed %d to %d", t, n, lo, hi))
	}
	if int(n) <= len(fr.buf) && (t == frameData || n <= smallPayloadCap) {
		p := fr.buf[:n]
		if _, err := io.ReadFull(fr.r, p); err != nil {
			return 0, nil, unexpected(err)
		}
		return t, p, nil
	}
	// A large control frame: grow with the bytes that actually arrive, so a
	// lying length prefix costs nothing until the data is there.
	var b bytes.Buffer
	if _, err := b.ReadFrom(io.LimitReader(fr.r, int64(n))); err != nil {
		return 0, nil, err
	}
	if b.Len() != int(n) {
		return 0, nil, io.ErrUnexpectedEOF
	}
	return t, b.Bytes(), nil
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// putHeader writes a frame header into b[:headerLen].
func putHeader(b []byte, t frameType, n int) {
	b[0] = byte(t)
	binary.BigEndian.PutUint32(b[1:headerLen], uint32(n))
}

// appendFrame appends a whole frame to dst.
func appendFrame(dst []byte, t frameType, payload []byte) []byte {
	var h [headerLen]byte
	putHeader(h[:], t, len(payload))
	return append(append(dst, h[:]...), payload...)
}

// writeFrame writes a frame with one Write call.
func writeFrame(w io.Writer, t frameType, payload []byte) error {
	_, err := w.Write(appendFrame(make([]byte, 0, headerLen+len(payload)), t, payload))
	return err
}

func encodeFileFrame(index uint32, offset int64) []byte {
	var b [filePayloadLen]byte
	binary.BigEndian.PutUint32(b[0:4], index)
	binary.BigEndian.PutUint64(b[4:12], uint64(offset))
	return b[:]
}

func decodeFileFrame(p []byte) (index uint32, offset int64) {
	return binary.BigEndian.Uint32(p[0:4]), int64(binary.BigEndian.Uint64(p[4:12]))
}
