package checker

import "testing"

// retentionHistory: offsets 0..4 acknowledged; retention later deleted
// 0..2 (log start 3), so the drain reads 3..4. A consumer read 0 and then,
// after its position fell below the log start, jumped to 3.
func retentionHistory(start int64) *builder {
	b := newBuilder()
	for i, v := range []string{"a", "b", "c", "d", "e"} {
		b.produce(0, int64(10+i), int64(11+i), OutcomeOK, v, int64(i))
	}
	b.poll(2, 20, 21, 0, rec(0, "a"))
	b.poll(2, 30, 31, 1, rec(3, "d"))
	b.drain(100, start, rec(3, "d"), rec(4, "e"))
	b.h.Ends = []End{{Topic: "t", Offset: 5, Start: start}}
	return b
}

// TestRetentionExcusesDeletedOffsets checks that writes and skips below the
// final log start are not anomalies.
func TestRetentionExcusesDeletedOffsets(t *testing.T) {
	mustCheck(t, &retentionHistory(3).h)
}

// TestRetentionDoesNotExcuseLiveOffsets moves the log start back to 1:
// the acknowledged writes at 1 and 2 are above it but missing from the
// drain, so they are lost.
func TestRetentionDoesNotExcuseLiveOffsets(t *testing.T) {
	b := retentionHistory(1)
	r := mustCheck(t, &b.h, AnomalyLostWrite, AnomalyLostWrite)
	mentions(t, r.Anomalies[0], "offset 1")
}

// TestRetentionExcusesOnlySkipsBelowTheStart has the log start at 2 and a
// drain that shows offset 2: the consumer's jump from 0 to 3 skipped offset
// 1 (deleted, excused) and offset 2 (still in the log: a poll skip).
func TestRetentionExcusesOnlySkipsBelowTheStart(t *testing.T) {
	b := newBuilder()
	for i, v := range []string{"a", "b", "c", "d"} {
		b.produce(0, int64(10+i), int64(11+i), OutcomeOK, v, int64(i))
	}
	b.poll(2, 20, 21, 0, rec(0, "a"))
	b.poll(2, 30, 31, 1, rec(3, "d"))
	b.drain(100, 2, rec(2, "c"), rec(3, "d"))
	b.h.Ends = []End{{Topic: "t", Offset: 4, Start: 2}}
	r := mustCheck(t, &b.h, AnomalyPollSkip)
	mentions(t, r.Anomalies[0], "skipping offsets 2..2")
}

// TestEndStartValidation rejects a log start beyond the end.
func TestEndStartValidation(t *testing.T) {
	b := retentionHistory(3)
	b.h.Ends[0].Start = 6
	if err := b.h.Validate(); err == nil {
		t.Fatal("log start beyond the end accepted")
	}
}
