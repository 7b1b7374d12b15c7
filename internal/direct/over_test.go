package direct

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Over binds the session to the certificates from the verified channel: a
// relay that splices the wrong peer gets a failed handshake on both ends.
func TestOverChecksBothCertificates(t *testing.T) {
	srvCert, _ := NewCert()
	cliCert, _ := NewCert()
	other, _ := NewCert()
	tests := []struct {
		name             string
		serverWants      string
		clientWants      string
		clientPresents   *Cert
		wantOK           bool
		wantClientRefuse bool
	}{
		{"the verified peers", cliCert.Fingerprint(), srvCert.Fingerprint(), cliCert, true, false},
		{"a client with another certificate", cliCert.Fingerprint(), srvCert.Fingerprint(), other, false, false},
		{"a server other than the offer's", cliCert.Fingerprint(), other.Fingerprint(), cliCert, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := net.Pipe()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var sc, cc *Conn
			var serr, cerr error
			var wg sync.WaitGroup
			wg.Go(func() { sc, serr = Over(ctx, a, srvCert, tt.serverWants, true) })
			wg.Go(func() { cc, cerr = Over(ctx, b, tt.clientPresents, tt.clientWants, false) })
			wg.Wait()
			if !tt.wantOK {
				if serr == nil && cerr == nil {
					t.Fatal("both ends accepted a peer that is not the verified one")
				}
				if cerr == nil {
					t.Fatal("the client succeeded while the server refused it")
				}
				if tt.wantClientRefuse && !errors.Is(cerr, ErrRefused) {
					t.Errorf("client: %v, want ErrRefused", cerr)
				}
				return
			}
			if serr != nil || cerr != nil {
				t.Fatalf("over a good pair: %v, %v", serr, cerr)
			}
			defer sc.Close()
			defer cc.Close()
			go func() { cc.Write([]byte("ciphertext on the relay")); cc.CloseWrite() }()
			got, _ := io.ReadAll(sc)
			if string(got) != "ciphertext on the relay" {
				t.Fatalf("got %q", got)
			}
		})
	}
}
