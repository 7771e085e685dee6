package client

import (
	"testing"

	"github.com/kafkasim/kafkasim/core"
	"github.com/twmb/franz-go/pkg/kgo"
	"pgregory.net/rapid"
)

// TestMurmur2KafkaVectors checks murmur2 against the vectors of Kafka's
// UtilsTest.testMurmur2, the Java client's reference.
func TestMurmur2KafkaVectors(t *testing.T) {
	cases := map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	}
	for key, want := range cases { // order-independent: each case is checked alone
		if got := murmur2([]byte(key)); got != want {
			t.Errorf("murmur2(%q) = %d, want %d", key, got, want)
		}
	}
}

// TestKeyPartitionMatchesFranzGo checks, for random keys and partition
// counts, that KeyPartition picks the partition franz-go's
// StickyKeyPartitioner (KafkaHasher over murmur2, Kafka's default) picks.
func TestKeyPartitionMatchesFranzGo(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		key := rapid.SliceOfN(rapid.Byte(), 0, 64).Draw(t, "key")
		n := rapid.IntRange(1, 1000).Draw(t, "partitions")
		want := kgo.StickyKeyPartitioner(nil).ForTopic("t").Partition(&kgo.Record{Key: key}, n)
		if got := KeyPartition(key, int32(n)); int(got) != want {
			t.Fatalf("KeyPartition(%x, %d) = %d, franz-go says %d", key, n, got, want)
		}
	})
}

// TestStickyPartitionerMovesOnBatchClose checks that keyless records stick to
// one partition until a batch for it closes, then move to a different one.
func TestStickyPartitionerMovesOnBatchClose(t *testing.T) {
	rand := core.NewRand(3)
	tp := topicPartitioner{sticky: -1}
	rec := Record{Topic: "t"}
	first := tp.pick(PartitionerDefault, rand, &rec, 6)
	for range 10 {
		if got := tp.pick(PartitionerDefault, rand, &rec, 6); got != first {
			t.Fatalf("sticky partition moved from %d to %d without a batch closing", first, got)
		}
	}
	tp.batchClosed(rand, first, 6)
	if got := tp.pick(PartitionerDefault, rand, &rec, 6); got == first {
		t.Fatalf("sticky partition stayed at %d after its batch closed", got)
	}
}
