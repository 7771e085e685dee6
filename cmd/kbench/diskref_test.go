package main

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestDiskRunReport checks the arithmetic of the disk reference on a run
// noted by hand: each record's latency ends at the first fdatasync whose
// coverage includes it, counted from its write and from its due time.
func TestDiskRunReport(t *testing.T) {
	ms := time.Millisecond
	run := &diskRun{rate: 1000, // record i is due at i ms
		appended: []time.Duration{0, 1 * ms, 3 * ms, 3 * ms},
		marks:    []syncMark{{covered: 1, done: 2 * ms, took: 2 * ms}, {covered: 4, done: 10 * ms, took: 7 * ms}}}
	rep := run.report()
	// Write to synced: 2, 9, 7, 7 ms; due to synced: 2, 9, 8, 7 ms.
	if rep.records != 4 || rep.syncs != 2 || rep.elapsed != 10*ms {
		t.Fatalf("report counts %+v", rep)
	}
	if rep.appended != [3]time.Duration{7 * ms, 9 * ms, 9 * ms} || rep.due != [3]time.Duration{7 * ms, 9 * ms, 9 * ms} {
		t.Errorf("latencies: write→synced %v, due→synced %v", rep.appended, rep.due)
	}
	if rep.syncQuantiles != [3]time.Duration{2 * ms, 7 * ms, 7 * ms} {
		t.Errorf("fdatasync quantiles %v", rep.syncQuantiles)
	}
	summary := diskSummary([]diskReport{rep, {records: 1, syncs: 1, elapsed: ms}, rep})
	if summary.records != 9 || summary.syncs != 5 || summary.appended != rep.appended {
		t.Errorf("summary %+v", summary)
	}
}

// TestMeasureDisk runs a short disk reference in a temporary directory:
// every record is covered by an fdatasync that ends after its write, and
// the reference's file is gone afterwards.
func TestMeasureDisk(t *testing.T) {
	dir := t.TempDir()
	rep, err := measureDisk(context.Background(), dir, 1024, 2000, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if rep.records != 200 || rep.syncs < 1 || rep.syncs > rep.records {
		t.Errorf("records %d, syncs %d", rep.records, rep.syncs)
	}
	if rep.appended[0] <= 0 || rep.appended[0] > rep.appended[1] || rep.appended[1] > rep.appended[2] {
		t.Errorf("write→synced quantiles not positive and ordered: %v", rep.appended)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("left behind %v (%v)", entries, err)
	}
	if _, err := measureDisk(context.Background(), dir, 0, 2000, time.Second); err == nil {
		t.Error("a disk reference of 0-byte records ran")
	}
}

// TestAppendReference checks that the append reference writes exactly the
// bytes asked for, in writes of at most 1 MiB, and removes its file.
func TestAppendReference(t *testing.T) {
	dir := t.TempDir()
	got, err := appendReference(dir, 3<<20+5)
	if err != nil || got.valueBytes != 3<<20+5 || got.records != 3 || got.elapsed <= 0 {
		t.Fatalf("appendReference = %+v, %v", got, err)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("left behind %v (%v)", entries, err)
	}
}
