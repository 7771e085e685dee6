package record

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRecompressKeepsEverythingButTheCodec recompresses an idempotent,
// transactional batch from every codec to every codec and checks that the
// result validates, keeps every header field except length, codec and CRC,
// and decodes to the same records with our reader and with franz-go's
// (kmsg.RecordBatch plus kgo's decompressor, an independent implementation).
func TestRecompressKeepsEverythingButTheCodec(t *testing.T) {
	records := sampleRecords(30, 100)
	for _, source := range allCodecs {
		for _, target := range allCodecs {
			t.Run(fmt.Sprintf("%v to %v", source, target), func(t *testing.T) {
				spec := NewBatchSpec(source)
				spec.BaseOffset, spec.PartitionLeaderEpoch = 4242, 7
				spec.ProducerID, spec.ProducerEpoch, spec.BaseSequence, spec.Transactional = 99, 3, 1000, true
				batch, err := AppendBatch(nil, spec, records)
				if err != nil {
					t.Fatal(err)
				}
				original := bytes.Clone(batch)
				out, err := Recompress(batch, target)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(batch, original) {
					t.Fatal("Recompress modified its input")
				}
				before, _ := ParseHeader(batch)
				after := expectRecords(t, out, 4242, records)
				if after.Attributes.Compression() != target {
					t.Fatalf("codec %v, want %v", after.Attributes.Compression(), target)
				}
				want := before
				want.Attributes = before.Attributes&^AttrCompressionMask | Attributes(target)
				want.BatchLength, want.CRC = after.BatchLength, after.CRC
				if after != want {
					t.Fatalf("header\n got %+v\nwant %+v", after, want)
				}
				checkWithFranz(t, out, records)
			})
		}
	}
}

// checkWithFranz decodes batch with kmsg and kgo's default decompressor and
// compares the records with want (numbered from the batch's base offset).
func checkWithFranz(t *testing.T, batch []byte, want []Record) {
	t.Helper()
	var kb kmsg.RecordBatch
	if err := kb.ReadFrom(batch); err != nil {
		t.Fatal(err)
	}
	if uint32(kb.CRC) != ComputeCRC(batch) {
		t.Fatal("kmsg reads a different CRC")
	}
	raw := kb.Records
	if codec := kgo.CompressionCodecType(kb.Attributes & 0x07); codec != kgo.CodecNone {
		var err error
		if raw, err = kgo.DefaultDecompressor().Decompress(raw, codec); err != nil {
			t.Fatalf("franz-go cannot decompress: %v", err)
		}
	}
	for i, w := range want {
		length, n := kbin.Varint(raw)
		var kr kmsg.Record
		if n == 0 || kr.ReadFrom(raw[:n+int(length)]) != nil {
			t.Fatalf("record %d does not parse with kmsg", i)
		}
		raw = raw[n+int(length):]
		got := Record{Offset: kb.FirstOffset + int64(kr.OffsetDelta), Timestamp: kb.FirstTimestamp + kr.TimestampDelta64, Key: kr.Key, Value: kr.Value}
		for _, h := range kr.Headers {
			got.Headers = append(got.Headers, RecordHeader{Key: h.Key, Value: h.Value})
		}
		w.Offset = kb.FirstOffset + int64(i)
		if err := equalRecord(&got, &w); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if len(raw) != 0 {
		t.Fatalf("%d bytes after the records", len(raw))
	}
}

// TestRecompressRejectsBadInput checks that corrupt, truncated and control
// batches and unknown codecs get errors, never a rewritten batch, and that a
// batch already in the target codec comes back unchanged.
func TestRecompressRejectsBadInput(t *testing.T) {
	good, err := AppendBatch(nil, NewBatchSpec(CodecGzip), sampleRecords(5, 10))
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(good)
	flipped[len(flipped)-1] ^= 1
	control, err := AppendControlBatch(nil, BatchSpec{ProducerID: 5, ProducerEpoch: 1, BaseSequence: NoSequence, Transactional: true}, true, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		batch []byte
		codec Codec
		want  error
	}{
		{"crc flipped", flipped, CodecZstd, ErrCorrupt},
		{"truncated", good[:len(good)-4], CodecZstd, ErrTruncated},
		{"control batch", control, CodecZstd, ErrControlBatch},
		{"unknown codec", good, Codec(6), nil},
	}
	for _, c := range cases {
		out, err := Recompress(c.batch, c.codec)
		if err == nil || out != nil || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%s: got %d bytes, error %v; want %v", c.name, len(out), err, c.want)
		}
	}
	same, err := Recompress(good, CodecGzip)
	if err != nil || &same[0] != &good[0] {
		t.Fatalf("same codec: %v, or a copy was made", err)
	}
}
