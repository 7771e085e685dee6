package record

import "math/bits"

// Kafka stores the integers inside a record as zigzag varints: "varint" for
// int32 fields and "varlong" for int64 fields, both in the same encoding as
// Go's encoding/binary Varint. These helpers are written out here so that the
// hot path inlines them and so that decoding reports which field was bad.

// varintBytesMax is the longest encoding of a 64-bit varint.
const varintBytesMax = 10

// appendVarint appends v as a zigzag varint.
func appendVarint(dst []byte, v int64) []byte {
	u := uint64(v<<1) ^ uint64(v>>63)
	for u >= 0x80 {
		dst = append(dst, byte(u)|0x80)
		u >>= 7
	}
	return append(dst, byte(u))
}

// varintBytes returns how many bytes appendVarint uses for v.
func varintBytes(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	// Each byte carries 7 bits; zero still takes one byte.
	return (bits.Len64(u|1) + 6) / 7
}

// readVarint decodes a zigzag varint from the start of b. It returns the
// value and the number of bytes read, or n <= 0 when b ends inside the varint
// (n == 0) or the varint is longer than 64 bits (n < 0).
func readVarint(b []byte) (v int64, n int) {
	var u uint64
	var shift uint
	for i, c := range b {
		if i == varintBytesMax {
			return 0, -1
		}
		if c < 0x80 {
			if i == varintBytesMax-1 && c > 1 {
				return 0, -1
			}
			u |= uint64(c) << shift
			return int64(u>>1) ^ -int64(u&1), i + 1
		}
		u |= uint64(c&0x7f) << shift
		shift += 7
	}
	return 0, 0
}
