package client

import "github.com/kafkasim/kafkasim/core"

// Partitioner chooses how the producer maps records to partitions
// (Kafka's partitioner.class).
type Partitioner uint8

const (
	// PartitionerDefault is Kafka's default: a record with a key goes to
	// toPositive(murmur2(key)) % numPartitions, exactly as the Java client,
	// librdkafka's murmur2 partitioner and franz-go's StickyKeyPartitioner do,
	// so keys land where other clients put them; a record without a key goes
	// to the topic's current sticky partition (KIP-480), which changes to a
	// random other partition whenever a batch for it is closed.
	PartitionerDefault Partitioner = iota
	// PartitionerRoundRobin spreads records over partitions in turn,
	// ignoring keys.
	PartitionerRoundRobin
	// PartitionerManual sends each record to Record.Partition.
	PartitionerManual
)

// murmur2 is Kafka's murmur2 hash (org.apache.kafka.common.utils.Utils).
func murmur2(data []byte) int32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	length := len(data)
	h := seed ^ uint32(length)
	quads := length / 4
	for i := 0; i < quads; i++ {
		i4 := i * 4
		k := uint32(data[i4]) | uint32(data[i4+1])<<8 | uint32(data[i4+2])<<16 | uint32(data[i4+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[quads*4:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// KeyPartition returns the partition Kafka's default partitioner picks for a
// non-nil key among numPartitions: toPositive(murmur2(key)) % numPartitions.
func KeyPartition(key []byte, numPartitions int32) int32 {
	if numPartitions <= 0 {
		panic("client: KeyPartition with no partitions")
	}
	return (murmur2(key) & 0x7fffffff) % numPartitions
}

// topicPartitioner is the per-topic state of the partitioners.
type topicPartitioner struct {
	// sticky is the current sticky partition, -1 before the first pick.
	sticky int32
	// roundRobin is the next partition of PartitionerRoundRobin.
	roundRobin int32
}

// pick returns the partition for a record, given the topic's partition count.
func (tp *topicPartitioner) pick(kind Partitioner, rand *core.Rand, rec *Record, numPartitions int32) int32 {
	if numPartitions <= 0 {
		panic("client: pick with no partitions")
	}
	switch kind {
	case PartitionerManual:
		return rec.Partition
	case PartitionerRoundRobin:
		p := tp.roundRobin % numPartitions
		tp.roundRobin = (p + 1) % numPartitions
		return p
	}
	if rec.Key != nil {
		return KeyPartition(rec.Key, numPartitions)
	}
	if tp.sticky < 0 || tp.sticky >= numPartitions {
		tp.sticky = int32(rand.IntN(int(numPartitions)))
	}
	return tp.sticky
}

// batchClosed moves the sticky partition away from partition once a batch
// for it is closed, so keyless records spread over all partitions.
func (tp *topicPartitioner) batchClosed(rand *core.Rand, partition, numPartitions int32) {
	if tp.sticky != partition || numPartitions <= 1 {
		return
	}
	next := int32(rand.IntN(int(numPartitions - 1)))
	if next >= partition {
		next++
	}
	tp.sticky = next
}
