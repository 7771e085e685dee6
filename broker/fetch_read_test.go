package broker

import (
	"strings"
	"testing"

	"github.com/kafkasim/kafkasim/core/record"
	"github.com/kafkasim/kafkasim/sim"
)

// TestReadForFetchStopsBeforeABatchThatDoesNotFit checks the consume
// path's read: with a budget of one and a half batches it returns the
// first batch only, and never reads the second into its buffer (the
// buffer grows by less than two batches); with no budget it still
// returns the first batch, so that consumers make progress.
func TestReadForFetchStopsBeforeABatchThatDoesNotFit(t *testing.T) {
	b := newSimBroker(t, 1, nil)
	createTopic(t, b, "t", 1)
	for range 3 {
		req := produceRequest(t, "t", 0, -1, record.NewBatchSpec(record.CodecNone), strings.Repeat("v", 10_000))
		if code, _ := produceCode(t, b, req); code != 0 {
			t.Fatalf("produce: error %d", code)
		}
	}
	p := b.node.catalog.partition("t", 0)
	whole, err := p.readForFetch(0, 1<<20, true, p.highWatermark(), nil)
	if err != nil {
		t.Fatal(err)
	}
	batchBytes := mustBatchSize(t, whole)
	tests := []struct {
		name                 string
		budgetBytes, batches int
	}{
		{"one and a half batches", batchBytes * 3 / 2, 1},
		{"two batches exactly", batchBytes * 2, 2},
		{"no budget", 0, 1},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			got, err := p.readForFetch(0, test.budgetBytes, true, p.highWatermark(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if want := whole[:test.batches*batchBytes]; string(got) != string(want) {
				t.Fatalf("read %d bytes, want the first %d batches (%d bytes)", len(got), test.batches, len(want))
			}
			if cap(got) >= (test.batches+1)*batchBytes {
				t.Errorf("buffer of %d bytes: a batch that did not fit was read", cap(got))
			}
		})
	}
}

// TestReadForFetchKeepsTheBatchesReadBeforeAFlip reads 20 batches on a
// disk that flips a bit on a fifth of its reads: a read that meets a flip
// hands out the batches checked before it, so that fetches advance batch
// by batch. Without that, a flip anywhere failed the whole read, and a
// follower reading large ranges from such a disk never caught up (sim
// seed 70453).
func TestReadForFetchKeepsTheBatchesReadBeforeAFlip(t *testing.T) {
	b := newSimBrokerOnDisk(t, 7, sim.DiskOptions{ReadBitFlipProbability: 0.2}, func(c *Config) { c.SegmentBytes = 200 }) // a segment per batch: a read call each
	createTopic(t, b, "t", 1)
	for i := range 20 {
		req := produceRequest(t, "t", 0, -1, record.NewBatchSpec(record.CodecNone), strings.Repeat("v", 100+i))
		if code, _ := produceCode(t, b, req); code != 0 {
			t.Fatalf("produce: error %d", code)
		}
	}
	p := b.node.catalog.partition("t", 0)
	end := p.highWatermark()
	next, reads := int64(0), 0
	for ; next < end && reads < 40; reads++ {
		data, err := p.readForFetch(next, 1<<20, true, end, nil)
		if err != nil {
			continue // a flip in the first batch: read again
		}
		for len(data) > 0 {
			h, err := record.ParseHeader(data)
			if err != nil {
				t.Fatal(err)
			}
			next = h.NextOffset()
			data = data[h.TotalBytes():]
		}
	}
	if next < end {
		t.Fatalf("after %d reads the fetches reached offset %d of %d", reads, next, end)
	}
}
