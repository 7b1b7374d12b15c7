package transfer

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
)

func header(t frameType, n uint32) []byte {
	b := make([]byte, headerLen)
	b[0] = byte(t)
	b[1], b[2], b[3], b[4] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return b
}

var frameCases = []struct {
	name    string
	in      []byte
	want    frameType
	payload int
	err     error  // sentinel or io error
	text    string // part of the error text
}{
	{"data", rawFrame(frameData, []byte("hello")), frameData, 5, nil, ""},
	{"largest data", rawFrame(frameData, make([]byte, maxDataLen)), frameData, maxDataLen, nil, ""},
	{"end", endFrame, frameEnd, 0, nil, ""},
	{"ok", rawFrame(frameOK, nil), frameOK, 0, nil, ""},
	{"file", fileFrame(3, 9), frameFile, filePayloadLen, nil, ""},
	{"manifest", rawFrame(frameManifest, []byte(`{"version":1}`)), frameManifest, 13, nil, ""},
	{"large plan", rawFrame(framePlan, bytes.Repeat([]byte(" "), smallPayloadCap+10)), framePlan, smallPayloadCap + 10, nil, ""},
	{"error", rawFrame(frameError, []byte(`{}`)), frameError, 2, nil, ""},
	{"empty stream", nil, 0, 0, io.EOF, ""},
	{"short header", []byte{'D', 0, 0}, 0, 0, io.ErrUnexpectedEOF, ""},
	{"short payload", header(frameData, 10), 0, 0, io.ErrUnexpectedEOF, ""},
	{"short large payload", header(frameManifest, 1<<20), 0, 0, io.ErrUnexpectedEOF, ""},
	{"unknown type", header('Z', 0), 0, 0, ErrProtocol, "unknown frame type 0x5a"},
	{"huge manifest", header(frameManifest, 0xFFFFFFFF), 0, 0, ErrProtocol, "MANIFEST frame of 4294967295 bytes is outside the allowed 2 to 16777216"},
	{"manifest just over", header(frameManifest, maxControlLen+1), 0, 0, ErrProtocol, "MANIFEST frame"},
	{"huge data", header(frameData, maxDataLen+1), 0, 0, ErrProtocol, "DATA frame of 262145 bytes"},
	{"empty data", header(frameData, 0), 0, 0, ErrProtocol, "DATA frame of 0 bytes"},
	{"long file frame", header(frameFile, 13), 0, 0, ErrProtocol, "FILE frame of 13 bytes"},
	{"end with payload", header(frameEnd, 1), 0, 0, ErrProtocol, "END frame of 1 bytes"},
	{"huge error", header(frameError, maxErrorLen+1), 0, 0, ErrProtocol, "ERROR frame"},
}

func TestReadFrame(t *testing.T) {
	for _, tc := range frameCases {
		t.Run(tc.name, func(t *testing.T) {
			fr := newFrameReader(bytes.NewReader(tc.in), maxDataLen)
			typ, p, err := fr.next()
			if tc.err != nil {
				if !errors.Is(err, tc.err) || !strings.Contains(errText(err), tc.text) {
					t.Fatalf("got %v, want %v containing %q", err, tc.err, tc.text)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want nil", err)
			}
			if typ != tc.want || len(p) != tc.payload {
				t.Fatalf("got %s with %d bytes, want %s with %d", typ, len(p), tc.want, tc.payload)
			}
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// A lying length prefix must fail, or wait for the data, without allocating
// what it claims.
func TestReadFrameDoesNotTrustLength(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"over the limit", header(frameManifest, 0xFFFFFFFF)},
		{"within the limit but absent", header(frameManifest, maxControlLen)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			fr := newFrameReader(bytes.NewReader(tc.in), 4<<10)
			_, _, err := fr.next()
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatal("got nil error, want one")
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
				t.Errorf("allocated %d bytes for a frame that never came, want < 1 MiB", got)
			}
		})
	}
}

func TestFileFrameRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		index uint32
		off   int64
	}{
		{"zero", 0, 0},
		{"large", 0xFFFFFFFF, 1 << 40},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			i, off := decodeFileFrame(encodeFileFrame(tc.index, tc.off))
			if i != tc.index || off != tc.off {
				t.Errorf("got (%d, %d), want (%d, %d)", i, off, tc.index, tc.off)
			}
		})
	}
}

func FuzzReadFrame(f *testing.F) {
	for _, tc := range frameCases {
		if len(tc.in) <= 4<<10 { // big seeds only slow the fuzzer down
			f.Add(tc.in)
		}
	}
	f.Add(concat(manifestFrame(f, fileEntry("a", "hi")), fileFrame(0, 0), dataFrame("hi"), endFrame))
	f.Fuzz(func(t *testing.T, b []byte) {
		// A small reuse buffer, so that larger payloads take the path that
		// grows with the data.
		fr := newFrameReader(bytes.NewReader(b), 64)
		for range 64 {
			typ, p, err := fr.next()
			if err != nil {
				var te *tErr
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.As(err, &te) {
					t.Fatalf("unexpected error kind %T: %v", err, err)
				}
				return
			}
			lo, hi, ok := payloadBounds(typ)
			if !ok || uint32(len(p)) < lo || uint32(len(p)) > hi {
				t.Fatalf("accepted %s frame with %d bytes", typ, len(p))
			}
		}
	})
}
