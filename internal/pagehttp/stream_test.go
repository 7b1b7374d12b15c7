package pagehttp

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"testing"
)

// FuzzStreamOffsets: POST bodies from any offsets at or before what the
// CLI has, overlapping or repeated, read back as the page's stream exactly
// once, and a body past it is a gap.
func FuzzStreamOffsets(f *testing.F) {
	f.Add(uint64(1), uint16(100))
	f.Add(uint64(2), uint16(4000))
	f.Fuzz(func(t *testing.T, seed uint64, n uint16) {
		s := newServer(t, Config{})
		_, st, err := s.Upload(context.Background(), grant())
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(seed, 7))
		want := make([]byte, int(n)+1)
		for i := range want {
			want[i] = byte(rng.Uint32())
		}
		var got bytes.Buffer
		for st.have < int64(len(want)) {
			off := rng.Int64N(st.have + 1)
			end := min(int64(len(want)), off+1+rng.Int64N(300))
			if err := st.accept(context.Background(), off, want[off:end]); err != nil {
				t.Fatalf("accept at %d of %d: %v", off, st.have, err)
			}
			if rng.IntN(2) == 0 && st.in.n > 0 { // Read would wait for more
				buf := make([]byte, 1+rng.IntN(500))
				k, _ := st.Read(buf)
				got.Write(buf[:k])
			}
		}
		if err := st.accept(context.Background(), st.have+1, []byte("x")); err != errGap {
			t.Errorf("a body past the stream: %v, want the gap", err)
		}
		st.mu.Lock()
		rest := make([]byte, st.in.n)
		st.in.read(rest, st.pool)
		got.Write(rest)
		st.mu.Unlock()
		if !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("the stream read back differs (%d bytes, want %d)", got.Len(), len(want))
		}
		st.Close()
		if _, err := st.Read(make([]byte, 1)); err == nil || err == io.EOF {
			t.Errorf("Read after Close: %v, want an error", err)
		}
	})
}
