package cpace

import "bytes"

// String encodings of draft-irtf-cfrg-cpace-21, section 6.3 and Appendix A.

// prependLen appends prepend_len(data) to dst: the LEB128 encoding of
// len(data) followed by data (Appendix A.1.1).
func prependLen(dst, data []byte) []byte {
	n := len(data)
	for n >= 0x80 {
		dst = append(dst, byte(n&0x7f)|0x80)
		n >>= 7
	}
	dst = append(dst, byte(n))
	return append(dst, data...)
}

// lvCat returns lv_cat(args...) = prepend_len(a0) || prepend_len(a1) || ...
// (Appendix A.1.3).
func lvCat(args ...[]byte) []byte {
	n := 0
	for _, a := range args {
		n += len(a) + 10
	}
	out := make([]byte, 0, n)
	for _, a := range args {
		out = prependLen(out, a)
	}
	return out
}

// generatorString returns generator_string(DSI, PRS, CI, sid, s_in_bytes) =
// lv_cat(DSI, PRS, zero_bytes(len_zpad), CI, sid), with the zero padding
// making DSI and PRS fill at least the first hash block (section 8.1,
// Appendix A.2).
func generatorString(dsi, prs, ci, sid []byte, sInBytes int) []byte {
	zpad := sInBytes - 1 - len(prependLen(nil, prs)) - len(prependLen(nil, dsi))
	zpad = max(zpad, 0)
	return lvCat(dsi, prs, make([]byte, zpad), ci, sid)
}

// lexiographicallyLarger reports whether a > b in lexicographic byte order,
// a proper prefix being smaller (Appendix A.3.1).
func lexiographicallyLarger(a, b []byte) bool {
	return bytes.Compare(a, b) > 0
}

// oCat returns o_cat(a, b) = "oc" || larger || smaller (Appendix A.3.2).
func oCat(a, b []byte) []byte {
	if !lexiographicallyLarger(a, b) {
		a, b = b, a
	}
	out := make([]byte, 0, 2+len(a)+len(b))
	out = append(out, "oc"...)
	out = append(out, a...)
	return append(out, b...)
}

// transcriptIR returns transcript_ir(Ya, ADa, Yb, ADb) =
// lv_cat(Ya, ADa) || lv_cat(Yb, ADb), the initiator-responder transcript
// (Appendix A.3.4).
func transcriptIR(ya, ada, yb, adb []byte) []byte {
	return append(lvCat(ya, ada), lvCat(yb, adb)...)
}

// transcriptOC returns transcript_oc(Ya, ADa, Yb, ADb) =
// o_cat(lv_cat(Ya, ADa), lv_cat(Yb, ADb)), the symmetric-setting transcript
// (Appendix A.3.6).
func transcriptOC(ya, ada, yb, adb []byte) []byte {
	return oCat(lvCat(ya, ada), lvCat(yb, adb))
}
