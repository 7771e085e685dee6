package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafkasim/kafkasim/core/record"
)

// TestStartupOpensPartitionsWhileServing lowers the number of partitions
// New opens to 3 and restarts a broker holding a 40-partition topic: right
// after New, Metadata already answers, showing the partitions not open yet
// without a leader, and once Start has let the chunks run every partition
// is back with its data.
func TestStartupOpensPartitionsWhileServing(t *testing.T) {
	saved := startupPartitionsMaxDefault
	startupPartitionsMaxDefault = 3
	defer func() { startupPartitionsMaxDefault = saved }()
	b := newSimBroker(t, 31, nil)
	createTopic(t, b, "wide", 40)
	if code, _ := produceCode(t, b, produceRequest(t, "wide", 39, -1, record.NewBatchSpec(record.CodecNone), "kept")); code != 0 {
		t.Fatalf("produce: %d", code)
	}
	b.kill(t) // boot runs New only: the loading partitions wait for Start
	loading := 0
	for _, p := range b.node.catalog.topics["wide"].partitions {
		if p.loading {
			loading++
		}
	}
	if loading != 40-3 {
		t.Fatalf("%d partitions loading after New, want %d", loading, 40-3)
	}
	if p := metadataPartitionAt(t, b, "wide", 39); p.ErrorCode != kerr.LeaderNotAvailable.Code {
		t.Fatalf("a loading partition in Metadata: error %d, want LEADER_NOT_AVAILABLE", p.ErrorCode)
	}
	if err := b.node.Start(); err != nil {
		t.Fatal(err)
	}
	b.sched.RunFor(time.Second)
	p := b.node.catalog.partition("wide", 39)
	if p == nil || p.loading || p.log.LogEndOffset() != 1 {
		t.Fatalf("partition 39 after the chunks ran: %+v, want it open with its record", p)
	}
	if code, offset := produceCode(t, b, produceRequest(t, "wide", 39, -1, record.NewBatchSpec(record.CodecNone), "next")); code != 0 || offset != 1 {
		t.Fatalf("produce after loading: code %d offset %d, want 0 and 1", code, offset)
	}
}
