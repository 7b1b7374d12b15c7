package cpace

import (
	"bytes"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gtank/ristretto255"
)

// Test vectors of draft-irtf-cfrg-cpace-21 (23 April 2026),
// https://datatracker.ietf.org/doc/html/draft-irtf-cfrg-cpace-21, copied
// from the draft text (github.com/cfrg/draft-irtf-cfrg-cpace,
// draft-irtf-cfrg-cpace-21/draft-irtf-cfrg-cpace.txt) with the published line
// breaks. Appendix A: string utilities; Appendix B.3: CPACE-RISTR255-SHA512.
// testdata/ holds the draft's base64 JSON copies of the B.3 vectors, which
// TestVectorsJSONAgree checks against these.

// unhex decodes hex written as in the draft, ignoring whitespace.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("bad hex in test vector: %v", err)
	}
	return b
}

// B.3.1 Test vectors for calculate_generator with group ristretto255.
const (
	b3PRS   = "Password"
	b3ZPAD  = 100
	b3DSI   = "CPaceRistretto255"
	b3CI    = "\x0bA_initiator\x0bB_responder"
	b3CIHex = `0b415f696e69746961746f720b425f726573706f6e646572`
	b3SID   = `7e4b4791d6a8ef019b936c79fb7f2c57`

	b3GeneratorString = `
         11435061636552697374726574746f3235350850617373776f726464
         00000000000000000000000000000000000000000000000000000000
         00000000000000000000000000000000000000000000000000000000
         00000000000000000000000000000000000000000000000000000000
         00000000000000000000000000000000180b415f696e69746961746f
         720b425f726573706f6e646572107e4b4791d6a8ef019b936c79fb7f
         2c57`
	b3HashResult = `
         da6d3ddc8802fca9058755ffd3ebde08a9c2c74945901a258482a288
         b6663af06bf645c93cd1c51512307199c80e84908916d983b34af772
         05f90851a657ee27`
	b3G = `
         222b6b195fe84b1652badb6f6a3ae3d24341e7306967f0b8115b40d5
         698c7e56`

	// B.3.2 Test vector for message from A.
	b3ADa = "ADa"
	b3ya  = `
         da3d23700a9e5699258aef94dc060dfda5ebb61f02a5ea77fad53f4f
         f0976d08`
	b3Ya = `
         d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f8d0eec
         482b9157`

	// B.3.3 Test vector for message from B.
	b3ADb = "ADb"
	b3yb  = `
         d2316b454718c35362d83d69df6320f38578ed5984651435e2949762
         d900b80d`
	b3Yb = `
         3ea7e0b19560d7c0b0f5734f63b955286dfa8232b5ebe63324e2d9e7
         433f7258`

	// B.3.4 Test vector for secret points K.
	b3K = `
         80b69a8a76457ab6a4d7f887a4bf6b55a2f80ac19c333f917a05fc98
         87c8b40f`

	// B.3.5 Test vector for ISK calculation initiator/responder.
	b3TranscriptIR = `
         20d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f8d0e
         ec482b915703414461203ea7e0b19560d7c0b0f5734f63b955286dfa
         8232b5ebe63324e2d9e7433f725803414462`
	b3DSIISK = `
         435061636552697374726574746f3235355f49534b`
	b3ISKInputIR = `
         15435061636552697374726574746f3235355f49534b107e4b4791d6
         a8ef019b936c79fb7f2c572080b69a8a76457ab6a4d7f887a4bf6b55
         a2f80ac19c333f917a05fc9887c8b40f20d6bac480f2c386c394efc7
         c47adb9925dcd2630b64f240c50f8d0eec482b915703414461203ea7
         e0b19560d7c0b0f5734f63b955286dfa8232b5ebe63324e2d9e7433f
         725803414462`
	b3ISKIR = `
         b69effbf61b51d56401c0f65601abe428de8206feaaf0e32198896dc
         ae7b35cd2b38950a39dfd5d4a79164614c2984f7daa460b588c1e80c
         3fa2068af7900447`

	// B.3.6 Test vector for ISK calculation parallel execution.
	b3TranscriptOC = `
         6f6320d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f
         8d0eec482b915703414461203ea7e0b19560d7c0b0f5734f63b95528
         6dfa8232b5ebe63324e2d9e7433f725803414462`
	b3ISKInputOC = `
         15435061636552697374726574746f3235355f49534b107e4b4791d6
         a8ef019b936c79fb7f2c572080b69a8a76457ab6a4d7f887a4bf6b55
         a2f80ac19c333f917a05fc9887c8b40f6f6320d6bac480f2c386c394
         efc7c47adb9925dcd2630b64f240c50f8d0eec482b91570341446120
         3ea7e0b19560d7c0b0f5734f63b955286dfa8232b5ebe63324e2d9e7
         433f725803414462`
	b3ISKOC = `
         544199d71f62f8d9a1fee55727e24fe4a45844593c2b6013c4fa3969
         d0e5debb2244675c0b43397cbb68d342b01fc0f98fc961469a25134d
         e9f0f813c1a57476`

	// B.3.7 Test vector for optional output of session id.
	b3SidOutputIR = `
         bb1c449b35f0ea79a65c209f329a693d475e0ce2387bed9fe4b78f60
         b2a27c219813fb2cfe175ef40d2222d9261e66da7d78f7c55a303b1b
         8611dcdfab880c47`
	b3SidOutputOC = `
         10d5941d4933497fe31b9188d690b84465e2a2d158332a7267284a07
         1a8d0876fc5c8c329dc735d59a9f8ef6623ee23924704a2f929dd631
         ca981227ee82fff2`

	// B.3.10 Test case for scalar_mult with valid inputs.
	b3s = `
         7cd0e075fa7955ba52c02759a6c90dbbfc10e6d40aea8d283e407d88
         cf538a05`
	b3X = `
         2c3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d6
         54b4a51c`
	b3sX = `
         7c13645fe790a468f62c39beb7388e541d8405d1ade69d1778c5fe3e
         7f6b600e`

	// B.3.11 Invalid inputs for scalar_mult_vfy.
	b3Yi1 = `
         2b3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d6
         54b4a51c`
	b3Yi2 = `
         00000000000000000000000000000000000000000000000000000000
         00000000`
)

func TestPrependLenVectors(t *testing.T) { // A.1.2
	seq := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{`b""`, []byte{}, `00`},
		{`b"1234"`, []byte("1234"), `0431323334`},
		{`bytes(range(127))`, seq(127), `
       7f000102030405060708090a0b0c0d0e0f101112131415161718191a1b
       1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738
       393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455
       565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172
       737475767778797a7b7c7d7e`},
		{`bytes(range(128))`, seq(128), `
       8001000102030405060708090a0b0c0d0e0f101112131415161718191a
       1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637
       38393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354
       55565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f7071
       72737475767778797a7b7c7d7e7f`},
	} {
		if got, want := prependLen(nil, tc.in), unhex(t, tc.want); !bytes.Equal(got, want) {
			t.Errorf("prepend_len(%s) = %x, want %x", tc.name, got, want)
		}
	}
}

func TestPrependLenLEB128(t *testing.T) {
	// Lengths beyond the draft's vectors: LEB128, 7 bits per byte, low first.
	for _, tc := range []struct {
		n    int
		want []byte
	}{
		{255, []byte{0xff, 0x01}},
		{300, []byte{0xac, 0x02}},
		{16383, []byte{0xff, 0x7f}},
		{16384, []byte{0x80, 0x80, 0x01}},
	} {
		got := prependLen(nil, make([]byte, tc.n))
		if !bytes.Equal(got[:len(tc.want)], tc.want) || len(got) != len(tc.want)+tc.n {
			t.Errorf("prepend_len of %d bytes: prefix %x, want %x", tc.n, got[:len(tc.want)], tc.want)
		}
	}
}

func TestLvCatVector(t *testing.T) { // A.1.4
	got := lvCat([]byte("1234"), []byte("5"), []byte(""), []byte("678"))
	if want := unhex(t, `043132333401350003363738`); !bytes.Equal(got, want) {
		t.Errorf("lv_cat = %x, want %x", got, want)
	}
}

func TestOrderedConcatenationVectors(t *testing.T) { // A.3.3
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"\x00", "\x00\x00", false},
		{"\x01", "\x00\x00", true},
		{"\x00\x00", "\x00", true},
		{"\x00\x00", "\x01", false},
		{"\x00\x01", "\x01", false},
		{"ABCD", "BCD", false},
	} {
		if got := lexiographicallyLarger([]byte(tc.a), []byte(tc.b)); got != tc.want {
			t.Errorf("lexiographically_larger(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
	if got, want := oCat([]byte("ABCD"), []byte("BCD")), unhex(t, `6f6342434441424344`); !bytes.Equal(got, want) {
		t.Errorf(`o_cat(b"ABCD",b"BCD") = %x, want %x`, got, want)
	}
	if got, want := oCat([]byte("BCD"), []byte("ABCDE")), unhex(t, `6f634243444142434445`); !bytes.Equal(got, want) {
		t.Errorf(`o_cat(b"BCD",b"ABCDE") = %x, want %x`, got, want)
	}
}

func TestTranscriptVectors(t *testing.T) { // A.3.5, A.3.7
	for _, tc := range []struct {
		ya, ada, yb, adb string
		ir, oc           string
	}{
		{"123", "PartyA", "234", "PartyB",
			`03313233065061727479410332333406506172747942`,
			`6f6303323334065061727479420331323306506172747941`},
		{"3456", "PartyA", "2345", "PartyB",
			`043334353606506172747941043233343506506172747942`,
			`6f63043334353606506172747941043233343506506172747942`},
	} {
		ya, ada, yb, adb := []byte(tc.ya), []byte(tc.ada), []byte(tc.yb), []byte(tc.adb)
		if got, want := transcriptIR(ya, ada, yb, adb), unhex(t, tc.ir); !bytes.Equal(got, want) {
			t.Errorf("transcript_ir(%q,%q,%q,%q) = %x, want %x", ya, ada, yb, adb, got, want)
		}
		if got, want := transcriptOC(ya, ada, yb, adb), unhex(t, tc.oc); !bytes.Equal(got, want) {
			t.Errorf("transcript_oc(%q,%q,%q,%q) = %x, want %x", ya, ada, yb, adb, got, want)
		}
		// The ordered transcript does not depend on which side is A.
		if got, want := transcriptOC(yb, adb, ya, ada), unhex(t, tc.oc); !bytes.Equal(got, want) {
			t.Errorf("transcript_oc with roles swapped = %x, want %x", got, want)
		}
	}
}

func TestCalculateGeneratorVector(t *testing.T) { // B.3.1
	if DSI != b3DSI {
		t.Fatalf("DSI = %q, want %q", DSI, b3DSI)
	}
	if !bytes.Equal([]byte(b3CI), unhex(t, b3CIHex)) {
		t.Fatalf("CI text and hex differ")
	}
	prs, ci, sid := []byte(b3PRS), []byte(b3CI), unhex(t, b3SID)

	gs := generatorString([]byte(DSI), prs, ci, sid, hashBlockSize)
	if want := unhex(t, b3GeneratorString); !bytes.Equal(gs, want) {
		t.Fatalf("generator_string =\n%x\nwant\n%x", gs, want)
	}
	if len(gs) != 170 {
		t.Errorf("len(generator_string) = %d, want 170", len(gs))
	}
	// ZPAD length: the third lv_cat field starts after DSI and PRS.
	zpadField := gs[1+len(DSI)+1+len(prs):]
	if int(zpadField[0]) != b3ZPAD {
		t.Errorf("ZPAD length = %d, want %d", zpadField[0], b3ZPAD)
	}
	h := sha512.Sum512(gs)
	if want := unhex(t, b3HashResult); !bytes.Equal(h[:], want) {
		t.Errorf("hash result = %x, want %x", h, want)
	}
	g := calculateGenerator(prs, ci, sid).Encode(nil)
	if want := unhex(t, b3G); !bytes.Equal(g, want) {
		t.Errorf("encoded generator g = %x, want %x", g, want)
	}
}

func TestGeneratorStringPadding(t *testing.T) {
	// Long PRS: no padding (len_zpad = max(0, ...)), still an empty lv field.
	long := bytes.Repeat([]byte{'x'}, 200)
	gs := generatorString([]byte(DSI), long, nil, nil, hashBlockSize)
	want := lvCat([]byte(DSI), long, nil, nil, nil)
	if !bytes.Equal(gs, want) {
		t.Errorf("generator_string with long PRS = %x, want %x", gs, want)
	}
	// Short PRS: DSI, PRS and padding field fill exactly s_in_bytes.
	gs = generatorString([]byte(DSI), []byte("pw"), nil, nil, hashBlockSize)
	if got := len(gs) - 2; got != hashBlockSize { // minus empty CI and sid fields
		t.Errorf("prefix length %d, want %d", got, hashBlockSize)
	}
}

func mustScalar(t testing.TB, b []byte) *ristretto255.Scalar {
	t.Helper()
	s := ristretto255.NewScalar()
	if err := s.Decode(b); err != nil {
		t.Fatalf("scalar %x: %v", b, err)
	}
	return s
}

func TestProtocolVectors(t *testing.T) { // B.3.2 - B.3.7
	prs, ci, sid := []byte(b3PRS), []byte(b3CI), unhex(t, b3SID)
	ada, adb := []byte(b3ADa), []byte(b3ADb)
	wantYa, wantYb, wantK := unhex(t, b3Ya), unhex(t, b3Yb), unhex(t, b3K)

	// B.3.2 / B.3.3: the vector scalars fed through Start's sampler (they are
	// below 2^252, so clearing the top four bits leaves them unchanged).
	a, ya, err := Start(prs, ci, sid, ada, bytes.NewReader(unhex(t, b3ya)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ya, wantYa) {
		t.Errorf("Ya = %x, want %x", ya, wantYa)
	}
	b, yb, err := Start(prs, ci, sid, adb, bytes.NewReader(unhex(t, b3yb)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(yb, wantYb) {
		t.Errorf("Yb = %x, want %x", yb, wantYb)
	}

	// B.3.4: K = scalar_mult_vfy(ya, Yb) = scalar_mult_vfy(yb, Ya).
	sa, sb := mustScalar(t, unhex(t, b3ya)), mustScalar(t, unhex(t, b3yb))
	if k := scalarMultVfy(sa, wantYb); !bytes.Equal(k, wantK) {
		t.Errorf("scalar_mult_vfy(ya,Yb) = %x, want %x", k, wantK)
	}
	if k := scalarMultVfy(sb, wantYa); !bytes.Equal(k, wantK) {
		t.Errorf("scalar_mult_vfy(yb,Ya) = %x, want %x", k, wantK)
	}

	// B.3.5: initiator/responder.
	tir := transcriptIR(wantYa, ada, wantYb, adb)
	if want := unhex(t, b3TranscriptIR); !bytes.Equal(tir, want) {
		t.Errorf("transcript_ir = %x, want %x", tir, want)
	}
	if want := unhex(t, b3DSIISK); !bytes.Equal([]byte(DSI+"_ISK"), want) {
		t.Errorf("DSI_ISK = %x, want %x", DSI+"_ISK", want)
	}
	if in, want := iskInput(sid, wantK, tir), unhex(t, b3ISKInputIR); !bytes.Equal(in, want) {
		t.Errorf("lv_cat(DSI,sid,K)||transcript_ir = %x, want %x", in, want)
	}
	wantISKIR := unhex(t, b3ISKIR)
	if isk := computeISK(sid, wantK, tir); !bytes.Equal(isk, wantISKIR) {
		t.Errorf("ISK (ir) = %x, want %x", isk, wantISKIR)
	}
	iskA, err := a.Finish(yb, adb, true)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(iskA, wantISKIR) {
		t.Errorf("A's ISK = %x, want %x", iskA, wantISKIR)
	}
	iskB, err := b.Finish(ya, ada, false)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(iskB, wantISKIR) {
		t.Errorf("B's ISK = %x, want %x", iskB, wantISKIR)
	}

	// B.3.6: parallel (symmetric) execution.
	toc := transcriptOC(wantYa, ada, wantYb, adb)
	if want := unhex(t, b3TranscriptOC); !bytes.Equal(toc, want) {
		t.Errorf("transcript_oc = %x, want %x", toc, want)
	}
	if in, want := iskInput(sid, wantK, toc), unhex(t, b3ISKInputOC); !bytes.Equal(in, want) {
		t.Errorf("lv_cat(DSI,sid,K)||transcript_oc = %x, want %x", in, want)
	}
	wantISKOC := unhex(t, b3ISKOC)
	a, _, _ = Start(prs, ci, sid, ada, bytes.NewReader(unhex(t, b3ya)))
	b, _, _ = Start(prs, ci, sid, adb, bytes.NewReader(unhex(t, b3yb)))
	if isk, err := a.FinishSymmetric(yb, adb); err != nil || !bytes.Equal(isk, wantISKOC) {
		t.Errorf("A's symmetric ISK = %x, %v; want %x", isk, err, wantISKOC)
	}
	if isk, err := b.FinishSymmetric(ya, ada); err != nil || !bytes.Equal(isk, wantISKOC) {
		t.Errorf("B's symmetric ISK = %x, %v; want %x", isk, err, wantISKOC)
	}

	// B.3.7: optional sid output, H.hash(b"CPaceSidOutput" + transcript).
	for _, tc := range []struct {
		name       string
		transcript []byte
		want       string
	}{{"ir", tir, b3SidOutputIR}, {"oc", toc, b3SidOutputOC}} {
		h := sha512.Sum512(append([]byte("CPaceSidOutput"), tc.transcript...))
		if want := unhex(t, tc.want); !bytes.Equal(h[:], want) {
			t.Errorf("sid_output_%s = %x, want %x", tc.name, h, want)
		}
	}
}

func TestScalarMultVectors(t *testing.T) { // B.3.10, B.3.11
	s := mustScalar(t, unhex(t, b3s))
	var x ristretto255.Element
	if err := x.Decode(unhex(t, b3X)); err != nil {
		t.Fatal(err)
	}
	want := unhex(t, b3sX)
	if got := ristretto255.NewElement().ScalarMult(s, &x).Encode(nil); !bytes.Equal(got, want) {
		t.Errorf("G.scalar_mult(s,decode(X)) = %x, want %x", got, want)
	}
	if got := scalarMultVfy(s, unhex(t, b3X)); !bytes.Equal(got, want) {
		t.Errorf("G.scalar_mult_vfy(s,X) = %x, want %x", got, want)
	}

	gI := make([]byte, 32)
	for _, tc := range []struct{ name, y string }{{"Y_i1", b3Yi1}, {"Y_i2", b3Yi2}} {
		if got := scalarMultVfy(s, unhex(t, tc.y)); !bytes.Equal(got, gI) {
			t.Errorf("G.scalar_mult_vfy(s,%s) = %x, want G.I", tc.name, got)
		}
	}

	// "When points Y_i1 or Y_i2 are included in message of A or B the
	// protocol MUST abort."
	for _, tc := range []struct {
		name string
		y    string
		want error
	}{{"Y_i1", b3Yi1, ErrInvalidMessage}, {"Y_i2", b3Yi2, ErrIdentity}} {
		for _, initiator := range []bool{true, false} {
			p, _, err := Start([]byte(b3PRS), []byte(b3CI), unhex(t, b3SID), nil, bytes.NewReader(unhex(t, b3s)))
			if err != nil {
				t.Fatal(err)
			}
			isk, err := p.Finish(unhex(t, tc.y), []byte(b3ADb), initiator)
			if !errors.Is(err, tc.want) || isk != nil {
				t.Errorf("Finish(%s, initiator=%v) = %x, %v; want %v", tc.name, initiator, isk, err, tc.want)
			}
		}
	}
}

// TestVectorsJSONAgree decodes the draft's base64 JSON copies of the B.3
// vectors (testdata/), checks they match the hex copied from the text, and
// runs the exchange from the JSON values.
func TestVectorsJSONAgree(t *testing.T) {
	load := func(name string) map[string]any {
		t.Helper()
		raw, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		b64 := strings.Map(func(r rune) rune {
			if r == '#' || r == ' ' || r == '\n' || r == '\t' || r == '\r' {
				return -1
			}
			return r
		}, string(raw))
		js, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var m map[string]any
		if err := json.Unmarshal(js, &m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return m
	}
	hexField := func(m map[string]any, key string) []byte {
		t.Helper()
		s, ok := m[key].(string)
		if !ok {
			t.Fatalf("JSON field %q missing", key)
		}
		return unhex(t, s)
	}
	check := func(m map[string]any, key, textHex string) {
		t.Helper()
		if got, want := hexField(m, key), unhex(t, textHex); !bytes.Equal(got, want) {
			t.Errorf("JSON %q = %x, text = %x", key, got, want)
		}
	}

	gen := load("b3.1.1-calculate-generator.b64")
	check(gen, "PRS", hex.EncodeToString([]byte(b3PRS)))
	check(gen, "DSI", hex.EncodeToString([]byte(b3DSI)))
	check(gen, "CI", b3CIHex)
	check(gen, "sid", b3SID)
	check(gen, "generator_string(G.DSI,PRS,CI,sid,H.s_in_bytes)", b3GeneratorString)
	check(gen, "hash result", b3HashResult)
	check(gen, "encoded generator g", b3G)
	if gen["H"] != "SHA-512" || gen["H.s_in_bytes"] != float64(hashBlockSize) || gen["ZPAD length"] != float64(b3ZPAD) {
		t.Errorf("JSON H/s_in_bytes/ZPAD = %v/%v/%v", gen["H"], gen["H.s_in_bytes"], gen["ZPAD length"])
	}

	v := load("b3.9-protocol.b64")
	for key, text := range map[string]string{
		"PRS": hex.EncodeToString([]byte(b3PRS)), "CI": b3CIHex, "sid": b3SID, "g": b3G,
		"ya": b3ya, "ADa": hex.EncodeToString([]byte(b3ADa)), "Ya": b3Ya,
		"yb": b3yb, "ADb": hex.EncodeToString([]byte(b3ADb)), "Yb": b3Yb,
		"K": b3K, "ISK_IR": b3ISKIR, "ISK_SY": b3ISKOC,
		"sid_output_ir": b3SidOutputIR, "sid_output_oc": b3SidOutputOC,
	} {
		check(v, key, text)
	}
	prs, ci, sid := hexField(v, "PRS"), hexField(v, "CI"), hexField(v, "sid")
	ada, adb := hexField(v, "ADa"), hexField(v, "ADb")
	if g := calculateGenerator(prs, ci, sid).Encode(nil); !bytes.Equal(g, hexField(v, "g")) {
		t.Errorf("g from JSON inputs = %x", g)
	}
	a, ya, err := Start(prs, ci, sid, ada, bytes.NewReader(hexField(v, "ya")))
	if err != nil || !bytes.Equal(ya, hexField(v, "Ya")) {
		t.Fatalf("Ya from JSON inputs = %x, %v", ya, err)
	}
	b, yb, err := Start(prs, ci, sid, adb, bytes.NewReader(hexField(v, "yb")))
	if err != nil || !bytes.Equal(yb, hexField(v, "Yb")) {
		t.Fatalf("Yb from JSON inputs = %x, %v", yb, err)
	}
	if isk, err := a.Finish(yb, adb, true); err != nil || !bytes.Equal(isk, hexField(v, "ISK_IR")) {
		t.Errorf("A's ISK from JSON inputs = %x, %v", isk, err)
	}
	if isk, err := b.FinishSymmetric(ya, ada); err != nil || !bytes.Equal(isk, hexField(v, "ISK_SY")) {
		t.Errorf("B's symmetric ISK from JSON inputs = %x, %v", isk, err)
	}

	inv := load("b3.11.1-scalar-mult-vfy.b64")
	valid, ok := inv["Valid"].(map[string]any)
	if !ok {
		t.Fatal(`JSON "Valid" missing`)
	}
	check(valid, "s", b3s)
	check(valid, "X", b3X)
	check(valid, "G.scalar_mult(s,decode(X))", b3sX)
	check(valid, "G.scalar_mult_vfy(s,X)", b3sX)
	check(inv, "Invalid Y1", b3Yi1)
	check(inv, "Invalid Y2", b3Yi2)
	s := mustScalar(t, hexField(valid, "s"))
	if got := scalarMultVfy(s, hexField(valid, "X")); !bytes.Equal(got, hexField(valid, "G.scalar_mult_vfy(s,X)")) {
		t.Errorf("scalar_mult_vfy from JSON = %x", got)
	}
	for _, key := range []string{"Invalid Y1", "Invalid Y2"} {
		if got := scalarMultVfy(s, hexField(inv, key)); !isIdentity(got) {
			t.Errorf("scalar_mult_vfy(s, %s) = %x, want G.I", key, got)
		}
	}
}
