package storage

import "testing"

// TestAssignLeaderEpochAnswersOlderEpochs checks a new leader's epoch
// assigned before any batch: a follower that fetched an epoch between the
// last batch's and the new one learns where its log diverged (sim seed
// 20557: without it the epoch was unknown and the follower fetched the
// same offset forever), the next batch of the new epoch keeps the entry,
// and ForgetEpochsFrom drops an entry that never got a batch.
func TestAssignLeaderEpochAnswersOlderEpochs(t *testing.T) {
	l := mustOpen(t, newDisk(1), smallConfig())
	for i := range 3 {
		mustAppend(t, l, makeBatch(uint64(i), 2, 10, 1000), 0, epoch0)
	}
	if e, o := l.EndOffsetForEpoch(1); e != UndefinedEpoch || o != UndefinedOffset {
		t.Fatalf("before the assignment, epoch 1: %d %d, want unknown", e, o)
	}
	l.AssignLeaderEpoch(2)
	cases := []struct {
		requested, epoch int32
		offset           int64
	}{
		{0, 0, 6}, {1, 0, 6}, {2, 2, 6},
	}
	for _, tc := range cases {
		if e, o := l.EndOffsetForEpoch(tc.requested); e != tc.epoch || o != tc.offset {
			t.Errorf("EndOffsetForEpoch(%d) = %d, %d; want %d, %d", tc.requested, e, o, tc.epoch, tc.offset)
		}
	}
	if err := l.ForgetEpochsFrom(l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	if got := l.LatestEpoch(); got != 0 {
		t.Fatalf("after ForgetEpochsFrom the latest epoch is %d, want 0", got)
	}
	l.AssignLeaderEpoch(3)
	mustAppend(t, l, makeBatch(9, 2, 10, 1000), 3, epoch0)
	if err := l.ForgetEpochsFrom(l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	if got := l.EpochEntries(); len(got) != 2 || got[1] != (EpochEntry{Epoch: 3, StartOffset: 6}) {
		t.Fatalf("epochs %v, want epoch 3 from 6 kept (it holds a batch)", got)
	}
}

// TestIncrementLogStartOffset raises a follower's log start to its
// leader's: the offsets below become unreadable at once, the start
// survives a reopen, it never passes the log end and never goes back.
func TestIncrementLogStartOffset(t *testing.T) {
	disk := newDisk(1)
	l := mustOpen(t, disk, smallConfig())
	for i := range 3 {
		mustAppend(t, l, makeBatch(uint64(i), 2, 10, 1000), 0, epoch0)
	}
	if err := l.IncrementLogStartOffset(2); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Read(0, 1<<20, l.LogEndOffset(), nil); !isErr(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below the new start: %v, want out of range", err)
	}
	if err := l.IncrementLogStartOffset(1); err != nil || l.LogStartOffset() != 2 {
		t.Fatalf("a lower start moved it to %d (%v)", l.LogStartOffset(), err)
	}
	if err := l.IncrementLogStartOffset(100); err != nil || l.LogStartOffset() != l.LogEndOffset() {
		t.Fatalf("a start past the end gave %d (%v), want the log end %d", l.LogStartOffset(), err, l.LogEndOffset())
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	reopened := mustOpen(t, disk, smallConfig())
	if got := reopened.LogStartOffset(); got != 6 {
		t.Fatalf("after a reopen the log starts at %d, want 6", got)
	}
}
