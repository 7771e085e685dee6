package record

import (
	"errors"
	"testing"
)

// TestControlBatchRoundTrip builds commit and abort markers and checks the
// header flags, the producer fields and the parsed marker.
func TestControlBatchRoundTrip(t *testing.T) {
	for _, commit := range []bool{true, false} {
		spec := NewBatchSpec(CodecNone)
		spec.ProducerID, spec.ProducerEpoch = 12, 4
		batch, err := AppendControlBatch(nil, spec, commit, 77, 5000)
		if err != nil {
			t.Fatal(err)
		}
		h, records, err := DecodeRecords(batch)
		if err != nil {
			t.Fatal(err)
		}
		if !h.Attributes.IsControl() || !h.Attributes.IsTransactional() || h.ProducerID != 12 || len(records) != 1 {
			t.Fatalf("header %+v, %d records", h, len(records))
		}
		c, err := ParseControlRecord(&records[0])
		if err != nil {
			t.Fatal(err)
		}
		want := ControlAbort
		if commit {
			want = ControlCommit
		}
		if c.Type != want || c.CoordinatorEpoch != 77 || c.Version != 0 || records[0].Timestamp != 5000 {
			t.Fatalf("control record %+v at %d", c, records[0].Timestamp)
		}
	}
}

// TestControlBatchRejects checks that a control batch without a producer or
// with compression is refused, and that malformed control records give
// ErrCorrupt while unknown types parse without a marker value.
func TestControlBatchRejects(t *testing.T) {
	if _, err := AppendControlBatch(nil, NewBatchSpec(CodecNone), true, 1, 0); err == nil {
		t.Fatal("control batch without a producer id was built")
	}
	spec := NewBatchSpec(CodecGzip)
	spec.ProducerID = 1
	if _, err := AppendControlBatch(nil, spec, true, 1, 0); err == nil {
		t.Fatal("compressed control batch was built")
	}
	bad := []Record{
		{Key: []byte{0, 0, 0}},
		{Key: []byte{0x80, 0, 0, 1}, Value: []byte{0, 0, 0, 0, 0, 1}},
		{Key: []byte{0, 0, 0, 1}, Value: []byte{0, 0, 0, 0, 1}},
		{Key: []byte{0, 0, 0, 0}, Value: []byte{0xff, 0, 0, 0, 0, 1}},
	}
	for i := range bad {
		if _, err := ParseControlRecord(&bad[i]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("case %d: err = %v, want ErrCorrupt", i, err)
		}
	}
	leader := Record{Key: []byte{0, 0, 0, 2}}
	if c, err := ParseControlRecord(&leader); err != nil || c.Type != ControlLeaderChange {
		t.Fatalf("leader change: %+v, %v", c, err)
	}
}
