package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/snappy/xerial"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// recordsSection returns the uncompressed records section for records.
func recordsSection(t *testing.T, records []Record) []byte {
	t.Helper()
	batch, err := AppendBatch(nil, NewBatchSpec(CodecNone), records)
	if err != nil {
		t.Fatal(err)
	}
	return batch[HeaderBytes:]
}

// withPayload returns a valid batch for records whose records section is
// replaced by payload, declared as compressed with codec.
func withPayload(t *testing.T, records []Record, codec Codec, payload []byte) []byte {
	t.Helper()
	batch, err := AppendBatch(nil, NewBatchSpec(CodecNone), records)
	if err != nil {
		t.Fatal(err)
	}
	binary.BigEndian.PutUint16(batch[offsetAttributes:], uint16(codec))
	return reseal(append(batch[:HeaderBytes], payload...))
}

// xerialFrame frames blocks by hand the way Java's SnappyOutputStream does:
// magic, version 1, compatible version 1, then [int32 length][raw block].
func xerialFrame(blocks ...[]byte) []byte {
	out := []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1}
	for _, b := range blocks {
		out = binary.BigEndian.AppendUint32(out, uint32(len(b)))
		out = append(out, b...)
	}
	return out
}

// TestXerialSnappyHandBuilt splits a records section in two raw snappy
// blocks, frames them in xerial by hand, and checks the batch decodes; this
// is what Kafka's Java producer sends.
func TestXerialSnappyHandBuilt(t *testing.T) {
	records := sampleRecords(20, 100)
	section := recordsSection(t, records)
	half := len(section) / 2
	payload := xerialFrame(snappy.Encode(nil, section[:half]), snappy.Encode(nil, section[half:]))
	expectRecords(t, withPayload(t, records, CodecSnappy, payload), 0, records)

	// klauspost's xerial encoder writes the Java framing independently of
	// our hand-built one; a large section spans several of its chunks.
	big := sampleRecords(400, 1000)
	expectRecords(t, withPayload(t, big, CodecSnappy, xerial.Encode(nil, recordsSection(t, big))), 0, big)

	// A literal xerial stream: header plus one chunk holding the raw snappy
	// block "\x03\x08abc" (length 3, literal of 3 bytes).
	literal := []byte("\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x05\x03\x08abc")
	var d decompressors
	out, err := d.decompress(nil, literal, CodecSnappy)
	if err != nil || string(out) != "abc" {
		t.Fatalf("literal xerial decoded to %q, %v", out, err)
	}
	for _, bad := range [][]byte{literal[:len(literal)-1], literal[:18], append(bytes.Clone(literal), 0, 0)} {
		if _, err := d.decompress(nil, bad, CodecSnappy); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated xerial %q: err %v, want ErrCorrupt", bad, err)
		}
	}
}

// TestGzipMultiMember checks that a gzip payload of two concatenated members
// (which some clients write) decodes to the concatenation.
func TestGzipMultiMember(t *testing.T) {
	records := sampleRecords(10, 50)
	section := recordsSection(t, records)
	var buf bytes.Buffer
	for _, part := range [][]byte{section[:7], section[7:]} {
		w := gzip.NewWriter(&buf)
		if _, err := w.Write(part); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	expectRecords(t, withPayload(t, records, CodecGzip, buf.Bytes()), 0, records)
}

// TestReferenceDecodersReadOurs decompresses our compressed records sections
// with the codec libraries' own stream readers (standard LZ4 frame, gzip,
// zstd frame, raw snappy block), proving we emit the standard framings.
func TestReferenceDecodersReadOurs(t *testing.T) {
	records := sampleRecords(30, 200)
	section := recordsSection(t, records)
	for _, codec := range allCodecs[1:] {
		batch, err := AppendBatch(nil, NewBatchSpec(codec), records)
		if err != nil {
			t.Fatal(err)
		}
		payload := batch[HeaderBytes:]
		var got []byte
		switch codec {
		case CodecGzip:
			r, err := gzip.NewReader(bytes.NewReader(payload))
			if err != nil {
				t.Fatal(err)
			}
			got, err = readAll(r)
			if err != nil {
				t.Fatal(err)
			}
		case CodecLZ4:
			if ok, err := lz4.ValidFrameHeader(payload); !ok || err != nil {
				t.Fatalf("not an lz4 frame: %v", err)
			}
			got, err = readAll(lz4.NewReader(bytes.NewReader(payload)))
			if err != nil {
				t.Fatal(err)
			}
		case CodecSnappy:
			got, err = snappy.Decode(nil, payload)
			if err != nil {
				t.Fatal(err)
			}
		case CodecZstd:
			d, err := zstd.NewReader(bytes.NewReader(payload), zstd.WithDecoderConcurrency(1))
			if err != nil {
				t.Fatal(err)
			}
			got, err = readAll(d)
			d.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got, section) {
			t.Fatalf("%v: reference decoder gave %d bytes, want the %d byte section", codec, len(got), len(section))
		}
	}
}

func readAll(r interface{ Read([]byte) (int, error) }) ([]byte, error) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}

// TestDecompressionBombs checks that each codec refuses to inflate past
// DecompressedBytesMax, with an ErrCorrupt error, and that gzip output of
// exactly the limit is still accepted.
func TestDecompressionBombs(t *testing.T) {
	zeros := make([]byte, DecompressedBytesMax+1)
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	if _, err := w.Write(zeros); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var lz bytes.Buffer
	lw := lz4.NewWriter(&lz)
	if _, err := lw.Write(zeros); err != nil {
		t.Fatal(err)
	}
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	snappyHeader := binary.AppendUvarint(nil, DecompressedBytesMax+1)
	half := snappy.Encode(nil, zeros[:DecompressedBytesMax/2+1])
	bombs := map[Codec][]byte{
		CodecGzip:   gz.Bytes(),
		CodecLZ4:    lz.Bytes(),
		CodecZstd:   sharedZstdEncoder().EncodeAll(zeros, nil),
		CodecSnappy: append(snappyHeader, 0),
	}
	var d decompressors
	for _, codec := range allCodecs[1:] {
		_, err := d.decompress(nil, bombs[codec], codec)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "limit") {
			t.Fatalf("%v bomb: err = %v, want the limit error", codec, err)
		}
	}
	if _, err := d.decompress(nil, xerialFrame(half, half), CodecSnappy); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("xerial bomb: err = %v", err)
	}
	out, err := readBounded(nil, gzipReader(t, gzipOf(t, zeros[:DecompressedBytesMax])))
	if err != nil || len(out) != DecompressedBytesMax {
		t.Fatalf("gzip at the limit: %d bytes, %v", len(out), err)
	}
}

func gzipOf(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipReader(t *testing.T, b []byte) *gzip.Reader {
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return r
}
