package metadata

import (
	"bytes"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to Decode: it must never panic, and
// whatever it accepts must be the one encoding of the record it returns
// (so replicas that agree on records agree on bytes). Applying an accepted
// record to the base-like image must keep Check passing.
func FuzzDecode(f *testing.F) {
	for _, sample := range sampleRecord {
		f.Add(Encode(sample.record))
	}
	f.Add([]byte{1, 3, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		record, err := Decode(data)
		if err != nil {
			return
		}
		if !bytes.Equal(Encode(record), data) {
			t.Fatalf("Decode accepted %x, which re-encodes as %x", data, Encode(record))
		}
		image := NewImage()
		for id := range int32(4) {
			if err := image.ApplyRecord(int64(id), 1, &RegisterBrokerRecord{BrokerID: id, BrokerEpoch: 1}); err != nil {
				t.Fatal(err)
			}
		}
		_ = image.ApplyRecord(10, 1, &TopicRecord{Name: "orders", ID: testTopicID})
		_ = image.Apply(11, 1, data) // accepted or rejected, the invariants hold
		if err := image.Check(); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzLoad feeds arbitrary bytes to Load: it must never panic, and an image
// it returns must pass Check and snapshot back to the same bytes.
func FuzzLoad(f *testing.F) {
	image := NewImage()
	for offset, sample := range sampleRecord {
		_ = image.ApplyRecord(int64(offset), 1, sample.record)
	}
	f.Add(image.Snapshot())
	f.Add(NewImage().Snapshot())
	f.Fuzz(func(t *testing.T, data []byte) {
		loaded, err := Load(data)
		if err != nil {
			return
		}
		if err := loaded.Check(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(loaded.Snapshot(), data) {
			t.Fatalf("Load accepted %x, which snapshots as %x", data, loaded.Snapshot())
		}
	})
}
