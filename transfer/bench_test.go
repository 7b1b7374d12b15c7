package transfer

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// tcpPair returns the two ends of a TCP loopback connection.
func tcpPair(tb testing.TB) (net.Conn, net.Conn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	var (
		wg       sync.WaitGroup
		accepted net.Conn
		aerr     error
	)
	wg.Go(func() { accepted, aerr = ln.Accept() })
	dialed, err := net.Dial("tcp", ln.Addr().String())
	wg.Wait()
	if err != nil || aerr != nil {
		tb.Fatal(err, aerr)
	}
	return dialed, accepted
}

// benchTransfer sends src to a fresh folder b.N times over TCP loopback and
// reports throughput.
func benchTransfer(b *testing.B, src *Source) {
	m := src.Manifest()
	base := b.TempDir()
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		dir := filepath.Join(base, fmt.Sprint(i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		a, c := tcpPair(b)
		start := time.Now()
		var (
			wg       sync.WaitGroup
			serveErr error
		)
		wg.Go(func() { serveErr = src.Serve(b.Context(), a, SendOptions{}) })
		res, err := Receive(b.Context(), c, ReceiveOptions{Dir: dir})
		wg.Wait()
		elapsed += time.Since(start)
		a.Close()
		c.Close()
		if err != nil || serveErr != nil {
			b.Fatalf("Receive: %v; Serve: %v", err, serveErr)
		}
		if res.Bytes != m.TotalSize() {
			b.Fatalf("received %d bytes, want %d", res.Bytes, m.TotalSize())
		}
		os.RemoveAll(dir)
	}
	b.ReportMetric(float64(m.TotalSize())*float64(b.N)/elapsed.Seconds()/1e6, "MB/s")
	b.ReportMetric(float64(m.Files())*float64(b.N)/elapsed.Seconds(), "files/s")
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N), "ns/op")
}

func BenchmarkTransferLargeFile(b *testing.B) {
	src := b.TempDir()
	randomFile(b, filepath.Join(src, "large.bin"), 256<<20, 3)
	s, err := NewSource(b.Context(), []string{filepath.Join(src, "large.bin")}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	benchTransfer(b, s)
}

func BenchmarkTransferSmallFiles(b *testing.B) {
	src := filepath.Join(b.TempDir(), "many")
	buf := make([]byte, 4<<10)
	for d := range 100 {
		dir := filepath.Join(src, fmt.Sprintf("d%03d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range 100 {
			buf[0], buf[1] = byte(d), byte(f)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d.bin", f)), buf, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	s, err := NewSource(b.Context(), []string{src}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if n := s.Manifest().Files(); n != 10000 {
		b.Fatalf("got %d files, want 10000", n)
	}
	b.ResetTimer()
	benchTransfer(b, s)
}

func BenchmarkNewSource(b *testing.B) {
	src := b.TempDir()
	const size = 64 << 20
	randomFile(b, filepath.Join(src, "f.bin"), size, 4)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := NewSource(b.Context(), []string{filepath.Join(src, "f.bin")}, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size)*float64(b.N)/b.Elapsed().Seconds()/1e6, "MB/s")
}
