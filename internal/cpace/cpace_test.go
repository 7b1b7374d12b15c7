package cpace

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha512"
	"errors"
	"fmt"
	"math/big"
	"testing"
	"testing/iotest"

	"github.com/gtank/ristretto255"
)

type params struct {
	pw, ci, sid, ada, adb []byte
}

func defaultParams() params {
	return params{
		pw:  []byte("correct horse"),
		ci:  []byte("\x08receiver\x06sender"),
		sid: []byte("0123456789abcdef"),
		ada: []byte("lanft/1 receiver"),
		adb: []byte("lanft/1 sender"),
	}
}

// exchange runs one initiator-responder exchange and returns both ISKs. Each
// side's params are its view: a.ada is what A sends and a.adb what A receives
// as ADb; b.adb is what B sends and b.ada what B receives as ADa (differing
// views model tampering in transit).
func exchange(t *testing.T, a, b params) (iskA, iskB []byte) {
	t.Helper()
	pa, ya, err := Start(a.pw, a.ci, a.sid, a.ada, nil)
	if err != nil {
		t.Fatal(err)
	}
	pb, yb, err := Start(b.pw, b.ci, b.sid, b.adb, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ya) != MessageSize || len(yb) != MessageSize {
		t.Fatalf("message sizes %d, %d", len(ya), len(yb))
	}
	iskA, err = pa.Finish(yb, a.adb, true)
	if err != nil {
		t.Fatal(err)
	}
	iskB, err = pb.Finish(ya, b.ada, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(iskA) != ISKSize || len(iskB) != ISKSize {
		t.Fatalf("ISK sizes %d, %d", len(iskA), len(iskB))
	}
	return iskA, iskB
}

func TestRoundTripSamePassword(t *testing.T) {
	p := defaultParams()
	iskA, iskB := exchange(t, p, p)
	if !bytes.Equal(iskA, iskB) {
		t.Fatalf("same password, different ISKs:\n%x\n%x", iskA, iskB)
	}
	// Fresh scalars each run: a second run gives a different key.
	iskA2, _ := exchange(t, p, p)
	if bytes.Equal(iskA, iskA2) {
		t.Fatal("two runs gave the same ISK")
	}

	// Key confirmation as lanft uses it.
	fpA, fpB := []byte("sha-256 AA:BB"), []byte("sha-256 CC:DD")
	tagA := Confirm(iskA, "initiator", fpA, fpB)
	if !Equal(tagA, Confirm(iskB, "initiator", fpA, fpB)) {
		t.Error("confirmation tags differ for equal ISKs")
	}
	if Equal(tagA, Confirm(iskB, "responder", fpA, fpB)) {
		t.Error("confirmation tag does not depend on the label")
	}
}

func TestRoundTripSymmetric(t *testing.T) {
	p := defaultParams()
	pa, ya, err := Start(p.pw, p.ci, p.sid, p.ada, nil)
	if err != nil {
		t.Fatal(err)
	}
	pb, yb, err := Start(p.pw, p.ci, p.sid, p.adb, nil)
	if err != nil {
		t.Fatal(err)
	}
	iskA, errA := pa.FinishSymmetric(yb, p.adb)
	iskB, errB := pb.FinishSymmetric(ya, p.ada)
	if errA != nil || errB != nil || !bytes.Equal(iskA, iskB) {
		t.Fatalf("symmetric: %x, %v / %x, %v", iskA, errA, iskB, errB)
	}
}

func TestRoundTripMismatch(t *testing.T) {
	base := defaultParams()
	for _, tc := range []struct {
		name   string
		modify func(*params)
	}{
		{"password", func(p *params) { p.pw = []byte("correct horsf") }},
		{"empty password", func(p *params) { p.pw = nil }},
		{"channel id", func(p *params) { p.ci = []byte("\x06sender\x08receiver") }},
		{"session id", func(p *params) { p.sid = []byte("0123456789abcdeF") }},
		{"initiator AD seen by responder", func(p *params) { p.ada = []byte("lanft/0 receiver") }},
		{"responder AD seen by initiator", func(p *params) { p.adb = []byte("") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := base
			tc.modify(&b)
			iskA, iskB := exchange(t, base, b)
			if bytes.Equal(iskA, iskB) {
				t.Fatal("mismatched inputs gave equal ISKs")
			}
			if Equal(Confirm(iskA, "initiator"), Confirm(iskB, "initiator")) {
				t.Fatal("confirmation tags match for different ISKs")
			}
		})
	}
}

func TestRolesMustDiffer(t *testing.T) {
	// Both sides claiming to be the initiator see different transcripts.
	p := defaultParams()
	pa, ya, _ := Start(p.pw, p.ci, p.sid, p.ada, nil)
	pb, yb, _ := Start(p.pw, p.ci, p.sid, p.adb, nil)
	iskA, _ := pa.Finish(yb, p.adb, true)
	iskB, _ := pb.Finish(ya, p.ada, true)
	if bytes.Equal(iskA, iskB) {
		t.Fatal("two initiators agreed on a key")
	}
}

func TestDeterministicWithFixedScalar(t *testing.T) {
	p := defaultParams()
	scalar := bytes.Repeat([]byte{0x42}, 32)
	peerScalar := bytes.Repeat([]byte{0x07}, 32)
	run := func() (msg, isk []byte) {
		pa, msg, err := Start(p.pw, p.ci, p.sid, p.ada, bytes.NewReader(scalar))
		if err != nil {
			t.Fatal(err)
		}
		_, peer, err := Start(p.pw, p.ci, p.sid, p.adb, bytes.NewReader(peerScalar))
		if err != nil {
			t.Fatal(err)
		}
		isk, err = pa.Finish(peer, p.adb, true)
		if err != nil {
			t.Fatal(err)
		}
		return msg, isk
	}
	m1, k1 := run()
	m2, k2 := run()
	if !bytes.Equal(m1, m2) || !bytes.Equal(k1, k2) {
		t.Fatal("fixed scalars gave different outputs")
	}
}

func TestStartInputsNotAliased(t *testing.T) {
	p := defaultParams()
	ad, sid := bytes.Clone(p.ada), bytes.Clone(p.sid)
	pa, ya, _ := Start(p.pw, p.ci, sid, ad, nil)
	pb, yb, _ := Start(p.pw, p.ci, p.sid, p.adb, nil)
	ad[0] ^= 1
	sid[0] ^= 1
	ya2 := bytes.Clone(ya)
	ya[0] ^= 1 // caller scribbling on the returned message
	iskA, _ := pa.Finish(yb, p.adb, true)
	iskB, _ := pb.Finish(ya2, p.ada, false)
	if !bytes.Equal(iskA, iskB) {
		t.Fatal("Party was affected by caller modifying its inputs or output")
	}
}

func TestSampleScalar(t *testing.T) {
	// The top four bits are cleared (group_size_bits = 252).
	y, err := sampleScalar(bytes.NewReader(bytes.Repeat([]byte{0xff}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	want := append(bytes.Repeat([]byte{0xff}, 31), 0x0f)
	if got := y.Encode(nil); !bytes.Equal(got, want) {
		t.Errorf("scalar = %x, want %x", got, want)
	}
	// Zero (e.g. a broken source) is refused.
	if _, _, err := Start([]byte("pw"), nil, nil, nil, bytes.NewReader(make([]byte, 32))); err == nil {
		t.Error("Start accepted an all-zero random source")
	}
	// Only the top bits set also reduces to zero.
	if _, err := sampleScalar(bytes.NewReader(append(make([]byte, 31), 0xf0))); err == nil {
		t.Error("sampleScalar accepted a scalar that is zero after masking")
	}
	// Short reads and reader errors are reported.
	if _, _, err := Start([]byte("pw"), nil, nil, nil, bytes.NewReader(make([]byte, 31))); err == nil {
		t.Error("Start accepted a short random source")
	}
	boom := errors.New("boom")
	if _, _, err := Start([]byte("pw"), nil, nil, nil, iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Errorf("Start with failing reader: %v", err)
	}
	// A nil reader means crypto/rand.
	if _, _, err := Start([]byte("pw"), nil, nil, nil, nil); err != nil {
		t.Error(err)
	}
}

// badEncodings are 32-byte strings that ristretto255 decoding must reject.
func badEncodings(t *testing.T) map[string][]byte {
	t.Helper()
	m := map[string][]byte{
		// draft-irtf-cfrg-cpace-21 B.3.11 Y_i1.
		"B.3.11 Y_i1": unhex(t, b3Yi1),
		// RFC 9496 Appendix A.2 (bad encodings), a selection:
		// non-canonical field encodings,
		"s = 2^255-1 (high bit)": unhex(t, "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
		"non-canonical 00ff..ff": unhex(t, "00ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
		"s = p":                  unhex(t, "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
		"s = p+6":                unhex(t, "f3ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
		// negative field elements,
		"s = 1 (negative)": unhex(t, "0100000000000000000000000000000000000000000000000000000000000000"),
		"negative 2":       unhex(t, "ed57ffd8c914fb201471d1c3d245ce3c746fcbe63a3679d51b6a516ebebe0e20"),
		// non-square x^2,
		"nonsquare 1": unhex(t, "26948d35ca62e643e26a83177332e6b6afeb9d08e4268b650f1f5bbd8d81d371"),
		"nonsquare 2": unhex(t, "4eac077a713c57b4f4397629a4145982c661f48044dd3f96427d40b147d9742f"),
		// negative xy,
		"negative xy": unhex(t, "3eb858e78f5a7254d8c9731174a94f76755fd3941c0ac93735c07ba14579630e"),
		// s = -1, which gives y = 0.
		"s = -1": unhex(t, "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
		// The identity with the (ignored by a lax decoder) top bit set.
		"identity + 2^255": append(make([]byte, 31), 0x80),
	}
	// A valid element's s plus p: same field element, non-canonical bytes.
	p := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	yb := unhex(t, b3Yb)
	s := new(big.Int).SetBytes(reverse(yb))
	s.Add(s, p)
	m["Yb + p"] = reverse(s.FillBytes(make([]byte, 32)))
	return m
}

func reverse(b []byte) []byte {
	r := make([]byte, len(b))
	for i := range b {
		r[len(b)-1-i] = b[i]
	}
	return r
}

func TestFinishRejectsInvalidPoints(t *testing.T) {
	p := defaultParams()
	cases := badEncodings(t)
	for _, n := range []int{0, 1, 31, 33, 64} {
		cases[fmt.Sprintf("length %d", n)] = append(bytes.Clone(unhex(t, b3Yb)), make([]byte, 64)...)[:n]
	}
	for name, msg := range cases {
		var e ristretto255.Element
		if e.Decode(msg) == nil {
			t.Fatalf("%s: test encoding %x unexpectedly decodes", name, msg)
		}
		for _, mode := range []string{"initiator", "responder", "symmetric"} {
			pa, _, err := Start(p.pw, p.ci, p.sid, p.ada, nil)
			if err != nil {
				t.Fatal(err)
			}
			var isk []byte
			switch mode {
			case "initiator":
				isk, err = pa.Finish(msg, p.adb, true)
			case "responder":
				isk, err = pa.Finish(msg, p.adb, false)
			default:
				isk, err = pa.FinishSymmetric(msg, p.adb)
			}
			if !errors.Is(err, ErrInvalidMessage) || isk != nil {
				t.Errorf("%s (%x), %s: got %x, %v; want ErrInvalidMessage", name, msg, mode, isk, err)
			}
		}
	}
}

func TestFinishRejectsIdentity(t *testing.T) {
	p := defaultParams()
	identity := ristretto255.NewElement().Encode(nil)
	if !bytes.Equal(identity, make([]byte, 32)) {
		t.Fatalf("identity encodes as %x", identity)
	}
	pa, _, _ := Start(p.pw, p.ci, p.sid, p.ada, nil)
	if isk, err := pa.Finish(identity, p.adb, true); !errors.Is(err, ErrIdentity) || isk != nil {
		t.Errorf("Finish(identity) = %x, %v; want ErrIdentity", isk, err)
	}
	pb, _, _ := Start(p.pw, p.ci, p.sid, p.adb, nil)
	if isk, err := pb.FinishSymmetric(identity, p.ada); !errors.Is(err, ErrIdentity) || isk != nil {
		t.Errorf("FinishSymmetric(identity) = %x, %v; want ErrIdentity", isk, err)
	}
}

func TestPartySingleUse(t *testing.T) {
	p := defaultParams()
	pa, _, _ := Start(p.pw, p.ci, p.sid, p.ada, nil)
	_, yb, _ := Start(p.pw, p.ci, p.sid, p.adb, nil)
	if _, err := pa.Finish(yb, p.adb, true); err != nil {
		t.Fatal(err)
	}
	if _, err := pa.Finish(yb, p.adb, true); !errors.Is(err, ErrUsed) {
		t.Errorf("second Finish: %v, want ErrUsed", err)
	}
	if _, err := pa.FinishSymmetric(yb, p.adb); !errors.Is(err, ErrUsed) {
		t.Errorf("FinishSymmetric after Finish: %v, want ErrUsed", err)
	}
	// An aborted exchange cannot be retried with the same scalar either.
	pc, _, _ := Start(p.pw, p.ci, p.sid, p.ada, nil)
	if _, err := pc.Finish(make([]byte, 32), p.adb, true); !errors.Is(err, ErrIdentity) {
		t.Fatalf("Finish(identity): %v", err)
	}
	if _, err := pc.Finish(yb, p.adb, true); !errors.Is(err, ErrUsed) {
		t.Errorf("Finish after abort: %v, want ErrUsed", err)
	}
}

func TestConfirm(t *testing.T) {
	isk := bytes.Repeat([]byte{1}, ISKSize)
	tag := Confirm(isk, "initiator", []byte("a"), []byte("b"))
	if len(tag) != ConfirmSize {
		t.Fatalf("tag length %d", len(tag))
	}
	if !Equal(tag, Confirm(isk, "initiator", []byte("a"), []byte("b"))) {
		t.Error("Confirm is not deterministic")
	}
	other := bytes.Repeat([]byte{2}, ISKSize)
	for name, t2 := range map[string][]byte{
		"isk":            Confirm(other, "initiator", []byte("a"), []byte("b")),
		"label":          Confirm(isk, "responder", []byte("a"), []byte("b")),
		"order":          Confirm(isk, "initiator", []byte("b"), []byte("a")),
		"boundary":       Confirm(isk, "initiator", []byte("ab"), []byte("")),
		"label boundary": Confirm(isk, "initiatora", []byte("b")),
		"count":          Confirm(isk, "initiator", []byte("a"), []byte("b"), nil),
	} {
		if Equal(tag, t2) {
			t.Errorf("tag unchanged when %s differs", name)
		}
	}
	// Pin the construction: HMAC-SHA-512(isk, lv_cat(domain, label, t...)).
	m := hmac.New(sha512.New, isk)
	m.Write([]byte("\x16lanft/cpace/confirm/v1\x09initiator\x01a\x01b"))
	if want := m.Sum(nil); !bytes.Equal(tag, want) {
		t.Errorf("Confirm = %x, want %x", tag, want)
	}
	defer func() {
		if recover() == nil {
			t.Error("Confirm with empty ISK did not panic")
		}
	}()
	Confirm(nil, "initiator")
}

func TestEqual(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"", "", true},
		{"abc", "abc", true},
		{"abc", "abd", false},
		{"abc", "ab", false},
		{"", "a", false},
	} {
		if got := Equal([]byte(tc.a), []byte(tc.b)); got != tc.want {
			t.Errorf("Equal(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}

func FuzzFinish(f *testing.F) {
	f.Add(unhex(f, b3Yb), []byte(b3ADb), true)
	f.Add(unhex(f, b3Ya), []byte(b3ADa), false)
	f.Add(unhex(f, b3Yi1), []byte{}, true)
	f.Add(make([]byte, 32), []byte{}, false)
	f.Add(bytes.Repeat([]byte{0xff}, 32), bytes.Repeat([]byte{0xff}, 200), true)
	f.Add([]byte{}, []byte(nil), false)
	f.Add(make([]byte, 33), []byte("x"), true)
	scalar := unhex(f, b3ya)
	f.Fuzz(func(t *testing.T, peerMsg, peerAD []byte, initiator bool) {
		p, _, err := Start([]byte(b3PRS), []byte(b3CI), unhex(t, b3SID), []byte(b3ADa), bytes.NewReader(scalar))
		if err != nil {
			t.Fatal(err)
		}
		var isk []byte
		if len(peerAD)%2 == 0 {
			isk, err = p.Finish(peerMsg, peerAD, initiator)
		} else {
			isk, err = p.FinishSymmetric(peerMsg, peerAD)
		}
		var e ristretto255.Element
		valid := e.Decode(peerMsg) == nil && !bytes.Equal(peerMsg, make([]byte, 32))
		switch {
		case err == nil && !valid:
			t.Fatalf("accepted invalid message %x", peerMsg)
		case err != nil && valid:
			t.Fatalf("rejected valid message %x: %v", peerMsg, err)
		case err == nil && len(isk) != ISKSize:
			t.Fatalf("ISK length %d", len(isk))
		case err != nil && isk != nil:
			t.Fatalf("ISK returned with error %v", err)
		}
		if err == nil {
			_ = Confirm(isk, "responder", peerMsg, peerAD)
		}
	})
}
