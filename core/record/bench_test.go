package record

import (
	"fmt"
	"testing"

	"github.com/kafkasim/kafkasim/core"
)

// benchRecordsPerBatch is the batch shape the benchmarks measure.
const benchRecordsPerBatch = 100

// benchValueSizes are the record value sizes measured, in bytes.
var benchValueSizes = []int{100, 1024}

// benchWords is the vocabulary of the benchmark payloads.
var benchWords = []string{"user", "click", "view", "session", "checkout", "cart", "search", "item",
	"price", "true", "false", "null", "region", "eu-west", "us-east", "mobile", "desktop", "referrer"}

// benchRecords returns records whose values look like JSON log events: a few
// structured fields and then words drawn at random from a small vocabulary,
// so that every codec finds some redundancy, as in typical payloads.
func benchRecords(valueBytes int) []Record {
	rng := core.NewRand(uint64(valueBytes))
	records := make([]Record, benchRecordsPerBatch)
	for i := range records {
		value := fmt.Appendf(nil, `{"id":%d,"user":%d,"event":%q,"text":"`,
			rng.IntN(1_000_000), rng.IntN(10_000), benchWords[rng.IntN(len(benchWords))])
		for len(value) < valueBytes {
			value = append(value, benchWords[rng.IntN(len(benchWords))]...)
			value = append(value, ' ')
		}
		value = append(value[:valueBytes-2], '"', '}')
		records[i] = Record{Timestamp: 1_700_000_000_000 + int64(i), Key: fmt.Appendf(nil, "k%05d", i), Value: value}
	}
	return records
}

// BenchmarkBuild measures building a batch of 100 records with a reused
// Builder and buffer. Throughput counts the uncompressed records section.
func BenchmarkBuild(b *testing.B) {
	for _, size := range benchValueSizes {
		for _, codec := range allCodecs {
			b.Run(fmt.Sprintf("%s/%dB", codec, size), func(b *testing.B) {
				records := benchRecords(size)
				var builder Builder
				dst, err := builder.AppendBatch(nil, NewBatchSpec(codec), records)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(recordsSectionB(b, records))))
				b.ReportAllocs()
				for b.Loop() {
					if dst, err = builder.AppendBatch(dst[:0], NewBatchSpec(codec), records); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(dst)), "batch-bytes")
			})
		}
	}
}

// BenchmarkDecode measures validating, decompressing and decoding a batch of
// 100 records with a reused Reader. Throughput counts the uncompressed
// records section.
func BenchmarkDecode(b *testing.B) {
	for _, size := range benchValueSizes {
		for _, codec := range allCodecs {
			b.Run(fmt.Sprintf("%s/%dB", codec, size), func(b *testing.B) {
				records := benchRecords(size)
				batch, err := AppendBatch(nil, NewBatchSpec(codec), records)
				if err != nil {
					b.Fatal(err)
				}
				var r Reader
				count := 0
				fn := func(*Record) error { count++; return nil }
				b.SetBytes(int64(len(recordsSectionB(b, records))))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := r.Records(batch, fn); err != nil {
						b.Fatal(err)
					}
				}
				if count == 0 {
					b.Fatal("no records decoded")
				}
			})
		}
	}
}

// BenchmarkValidate measures Validate (header checks and CRC-32C over the
// whole batch), the broker's per-batch cost, on a 100 x 1 KiB batch.
func BenchmarkValidate(b *testing.B) {
	batch, err := AppendBatch(nil, NewBatchSpec(CodecNone), benchRecords(1024))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Validate(batch); err != nil {
			b.Fatal(err)
		}
	}
}

func recordsSectionB(b *testing.B, records []Record) []byte {
	batch, err := AppendBatch(nil, NewBatchSpec(CodecNone), records)
	if err != nil {
		b.Fatal(err)
	}
	return batch[HeaderBytes:]
}
