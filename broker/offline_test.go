package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/broker/storage"
	"github.com/kafkasim/kafkasim/core/record"
)

// corruptFirstBatch flips a payload byte of the first batch of a topic's
// partition 0, at rest, as a failing disk would.
func corruptFirstBatch(t *testing.T, b *simBroker, topic string) {
	t.Helper()
	name := partitionDir(b.cfg.LogDir, topic, 0) + "/00000000000000000000.log"
	if err := b.disk.Corrupt(name, record.HeaderBytes+2, 1); err != nil {
		t.Fatal(err)
	}
}

func metadataPartition(t *testing.T, b *simBroker, topic string) kmsg.MetadataResponseTopicPartition {
	t.Helper()
	return metadataPartitionAt(t, b, topic, 0)
}

// metadataPartitionAt is one partition of a topic as Metadata v9 shows it.
func metadataPartitionAt(t *testing.T, b *simBroker, topic string, index int32) kmsg.MetadataResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(9)
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp := b.roundTrip(t, req).(*kmsg.MetadataResponse)
	for _, p := range resp.Topics[0].Partitions {
		if p.Partition == index {
			return p
		}
	}
	t.Fatalf("Metadata has no partition %d of %s", index, topic)
	return kmsg.MetadataResponseTopicPartition{}
}

// TestCorruptionAtRestTakesOnePartitionOffline corrupts a synced batch of
// one topic and restarts: recovery finds it, that partition goes offline
// (no leader in Metadata, nothing served, every byte kept) and the other
// topic keeps serving. Before, the whole broker refused to start.
func TestCorruptionAtRestTakesOnePartitionOffline(t *testing.T) {
	b := newSimBroker(t, 21, nil)
	createTopic(t, b, "damaged", 1)
	createTopic(t, b, "healthy", 1)
	for _, topic := range []string{"damaged", "healthy"} {
		for i := range 3 {
			if code, _ := produceCode(t, b, produceRequest(t, topic, 0, -1, record.NewBatchSpec(record.CodecNone), "v", string(rune('a'+i)))); code != 0 {
				t.Fatalf("produce to %s: %d", topic, code)
			}
		}
	}
	b.kill(t) // a clean page cache: the checkpoints are on disk
	corruptFirstBatch(t, b, "damaged")
	b.kill(t)
	if p := metadataPartition(t, b, "damaged"); p.ErrorCode != kerr.LeaderNotAvailable.Code || p.Leader != -1 {
		t.Fatalf("damaged partition in Metadata: error %d leader %d, want LEADER_NOT_AVAILABLE and -1", p.ErrorCode, p.Leader)
	}
	if code, _ := produceCode(t, b, produceRequest(t, "damaged", 0, -1, record.NewBatchSpec(record.CodecNone), "x")); code == 0 {
		t.Fatal("a produce to the offline partition succeeded")
	}
	if code, offset := produceCode(t, b, produceRequest(t, "healthy", 0, -1, record.NewBatchSpec(record.CodecNone), "x")); code != 0 || offset != 6 {
		t.Fatalf("healthy topic: code %d offset %d, want 0 and 6", code, offset)
	}
	if _, err := storage.Open(b.disk, partitionDir(b.cfg.LogDir, "damaged", 0), storage.DefaultConfig(), b.node.now()); err == nil {
		t.Fatal("the corrupt bytes are gone: the broker must keep them for a repair")
	}
}

// TestCorruptReadTakesThePartitionOffline corrupts a batch while the
// broker runs: the fetch that would serve it gets KAFKA_STORAGE_ERROR, the
// partition goes offline, and nothing corrupt is ever served.
func TestCorruptReadTakesThePartitionOffline(t *testing.T) {
	b := newSimBroker(t, 22, nil)
	createTopic(t, b, "t", 1)
	if code, _ := produceCode(t, b, produceRequest(t, "t", 0, -1, record.NewBatchSpec(record.CodecNone), "a", "b")); code != 0 {
		t.Fatalf("produce: %d", code)
	}
	corruptFirstBatch(t, b, "t")
	resp := b.roundTrip(t, fetchFromStart("t")).(*kmsg.FetchResponse)
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != kerr.KafkaStorageError.Code || len(p.RecordBatches) != 0 {
		t.Fatalf("fetch of a corrupt batch: error %d with %d bytes, want KAFKA_STORAGE_ERROR and nothing", p.ErrorCode, len(p.RecordBatches))
	}
	if p := metadataPartition(t, b, "t"); p.ErrorCode != kerr.LeaderNotAvailable.Code {
		t.Fatalf("after the corrupt read Metadata says error %d, want LEADER_NOT_AVAILABLE", p.ErrorCode)
	}
	if b.node.Halted() != nil {
		t.Fatalf("the node halted (%v): corruption takes one partition offline, not the broker", b.node.Halted())
	}
}

// TestCorruptionFoundByAWaitingFetch: a fetch parked for more bytes wakes
// when more arrive, reads again from its offset, and meets a batch
// corrupted since it parked. Reading takes the partition offline, which
// answers every waiter on it, the reading one too: that waiter must then
// not answer again (sim seed 122 with damage at rest panicked with "Fetch
// answered twice"). The one answer is KAFKA_STORAGE_ERROR.
func TestCorruptionFoundByAWaitingFetch(t *testing.T) {
	b := newSimBroker(t, 23, nil)
	createTopic(t, b, "t", 1)
	if code, _ := produceCode(t, b, produceRequest(t, "t", 0, -1, record.NewBatchSpec(record.CodecNone), "a")); code != 0 {
		t.Fatalf("produce: %d", code)
	}
	wait := fetchFromStart("t")
	wait.MinBytes, wait.MaxWaitMillis = 4096, 10_000
	before := len(b.wire.sent)
	b.send(encodeRequest(wait, 9), 10*time.Millisecond)
	if len(b.wire.sent) != before {
		t.Fatal("the fetch did not wait for more bytes")
	}
	corruptFirstBatch(t, b, "t")
	// A connection serves one request at a time, so the produce that wakes
	// the fetch comes on another.
	other, otherWire := b.secondConn()
	big := string(make([]byte, 8192))
	other.OnFrame(otherWire, encodeRequest(produceRequest(t, "t", 0, -1, record.NewBatchSpec(record.CodecNone), big), 10))
	b.sched.RunFor(time.Second)
	answers := b.wire.sent[before:]
	var fetches int
	for _, frame := range answers {
		resp := kmsg.NewPtrFetchResponse()
		resp.SetVersion(11)
		if len(frame) < 4 || int32(frame[0])<<24|int32(frame[1])<<16|int32(frame[2])<<8|int32(frame[3]) != 9 {
			continue // not the waiting fetch's answer
		}
		fetches++
		if err := resp.ReadFrom(frame[4:]); err != nil {
			t.Fatal(err)
		}
		if p := resp.Topics[0].Partitions[0]; p.ErrorCode != kerr.KafkaStorageError.Code || len(p.RecordBatches) != 0 {
			t.Fatalf("the waiting fetch got error %d with %d bytes, want KAFKA_STORAGE_ERROR and nothing", p.ErrorCode, len(p.RecordBatches))
		}
	}
	if fetches != 1 {
		t.Fatalf("the waiting fetch was answered %d times, want once", fetches)
	}
}

// TestLatentSectorErrorTakesOnePartitionOffline: bytes of a synced batch
// that no read can read (a latent sector error) are damage at rest: after
// a restart that did not need to read them, the scrubber meets them and
// that partition goes offline while the other topic serves. Before, the
// scrubber's reads failed as passing device errors and the partition kept
// answering KAFKA_STORAGE_ERROR request by request.
func TestLatentSectorErrorTakesOnePartitionOffline(t *testing.T) {
	b := newSimBroker(t, 24, nil)
	createTopic(t, b, "damaged", 1)
	createTopic(t, b, "healthy", 1)
	for _, topic := range []string{"damaged", "healthy"} {
		if code, _ := produceCode(t, b, produceRequest(t, topic, 0, -1, record.NewBatchSpec(record.CodecNone), "a", "b")); code != 0 {
			t.Fatalf("produce to %s: %d", topic, code)
		}
	}
	// Past a checkpoint of the recovery point and the producer state, so
	// that the restart reads none of it.
	b.sched.RunFor(2 * time.Second)
	b.kill(t)
	name := partitionDir(b.cfg.LogDir, "damaged", 0) + "/00000000000000000000.log"
	if err := b.disk.AddLatentError(name, record.HeaderBytes+2, 1); err != nil {
		t.Fatal(err)
	}
	b.kill(t)
	if p := metadataPartition(t, b, "damaged"); p.ErrorCode != kerr.LeaderNotAvailable.Code {
		t.Fatalf("damaged partition in Metadata: error %d, want LEADER_NOT_AVAILABLE", p.ErrorCode)
	}
	if code, offset := produceCode(t, b, produceRequest(t, "healthy", 0, -1, record.NewBatchSpec(record.CodecNone), "x")); code != 0 || offset != 2 {
		t.Fatalf("healthy topic: code %d offset %d, want 0 and 2", code, offset)
	}
}
