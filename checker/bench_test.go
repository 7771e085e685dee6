package checker

import (
	"testing"

	"github.com/kafkasim/kafkasim/core"
)

// benchHistory generates a correct history of about opsTotal operations
// spread over partitions partitions of topic "t", from seed.
func benchHistory(opsTotal, partitions int, seed uint64) History {
	r := core.NewRand(seed)
	var h History
	for p := range partitions {
		tp := TopicPartition{Topic: "t", Partition: int32(p)}
		genPartition(r, &h, tp, opsTotal/partitions, p*8)
	}
	return h
}

// BenchmarkCheck10kOps8Partitions measures Check on a correct 10,000-op
// history across 8 partitions, every check included.
func BenchmarkCheck10kOps8Partitions(b *testing.B) {
	h := benchHistory(10_000, 8, 1)
	if r := Check(&h, Options{}); r.Status != StatusOK {
		b.Fatalf("benchmark history does not pass: %s", r.Report())
	}
	b.ReportAllocs()
	for b.Loop() {
		Check(&h, Options{})
	}
}

// BenchmarkLinearizable10kOps8Partitions measures the porcupine check alone
// on the same history.
func BenchmarkLinearizable10kOps8Partitions(b *testing.B) {
	h := benchHistory(10_000, 8, 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Linearizable(&h, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
