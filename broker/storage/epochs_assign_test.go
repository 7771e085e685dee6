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
