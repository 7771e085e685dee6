package record

import (
	"runtime"
	"testing"
)

// TestBuildUncompressedAllocatesNothing checks the producer hot path: building
// an uncompressed batch into a buffer with enough capacity allocates nothing,
// measured with testing.AllocsPerRun, including with the package function.
func TestBuildUncompressedAllocatesNothing(t *testing.T) {
	records := sampleRecords(100, 100)
	spec := NewBatchSpec(CodecNone)
	dst := make([]byte, 0, 64<<10)
	var b Builder
	allocs := testing.AllocsPerRun(50, func() {
		var err error
		if _, err = b.AppendBatch(dst[:0], spec, records); err != nil {
			t.Fatal(err)
		}
		if _, err = AppendBatch(dst[:0], spec, records); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per uncompressed build, want 0", allocs)
	}
}

// TestBuildCompressedAllocationsBounded checks that a reused Builder does not
// allocate per record when compressing: the allocations per batch stay small
// and do not grow with the record count.
func TestBuildCompressedAllocationsBounded(t *testing.T) {
	for _, codec := range allCodecs[1:] {
		var b Builder
		dst := make([]byte, 0, 256<<10)
		measure := func(n int) float64 {
			records := sampleRecords(n, 100)
			spec := NewBatchSpec(codec)
			return testing.AllocsPerRun(20, func() {
				if _, err := b.AppendBatch(dst[:0], spec, records); err != nil {
					t.Fatal(err)
				}
			})
		}
		small, large := measure(10), measure(1000)
		if large > small+2 || large > 8 {
			t.Fatalf("%v: %v allocations for 10 records, %v for 1000", codec, small, large)
		}
	}
}

// TestDecodeAllocationsBounded checks that a reused Reader decodes records
// without headers with no allocation per record, for every codec, and with
// none at all for uncompressed batches.
func TestDecodeAllocationsBounded(t *testing.T) {
	for _, codec := range allCodecs {
		records := sampleRecords(100, 100)
		for i := range records {
			records[i].Headers = nil
		}
		batch, err := AppendBatch(nil, NewBatchSpec(codec), records)
		if err != nil {
			t.Fatal(err)
		}
		var r Reader
		count := 0
		fn := func(*Record) error { count++; return nil }
		allocs := testing.AllocsPerRun(20, func() {
			if _, err := r.Records(batch, fn); err != nil {
				t.Fatal(err)
			}
		})
		// The streaming decoders may allocate once in a while when their
		// pooled block buffers are collected; nothing scales with records.
		if allocs > 1 || (codec == CodecNone && allocs != 0) {
			t.Fatalf("%v: %v allocations to decode 100 records", codec, allocs)
		}
	}
}

// TestCodecsStartNoGoroutines builds and decodes a batch with every codec
// (creating the shared zstd encoder and decoder on first use) and checks the
// goroutine count did not grow: the codecs must run on the caller's goroutine
// only, as the deterministic simulator requires.
func TestCodecsStartNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	var b Builder
	var r Reader
	for _, codec := range allCodecs {
		batch, err := b.AppendBatch(nil, NewBatchSpec(codec), sampleRecords(200, 2000))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Records(batch, nil); err != nil {
			t.Fatal(err)
		}
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Fatalf("%d goroutines before, %d after using the codecs", before, after)
	}
}
