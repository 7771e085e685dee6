package metadata

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var update = flag.Bool("update", false, "rewrite testdata/records.golden")

var (
	testTopicID  = TopicID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	testValue    = "delete"
	sampleRecord = []struct {
		name   string
		record Record
	}{
		{"producer-ids", &ProducerIdsRecord{BrokerID: 2, BrokerEpoch: 9, NextProducerID: 5000}},
		{"register-broker", &RegisterBrokerRecord{BrokerID: 1, BrokerEpoch: 7, IncarnationID: [16]byte{15: 0xee}, Fenced: true,
			Listeners: []Listener{{Name: "PLAINTEXT", Host: "localhost", Port: 9092}}}},
		{"fence-broker", &FenceBrokerRecord{BrokerID: 2, BrokerEpoch: 9}},
		{"unfence-broker", &UnfenceBrokerRecord{BrokerID: 3, BrokerEpoch: 11}},
		{"topic", &TopicRecord{Name: "orders", ID: testTopicID}},
		{"partition", &PartitionRecord{PartitionState{TopicID: testTopicID, Partition: 0,
			Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2}, ELR: []int32{3}, Leader: 1, LeaderEpoch: 4, PartitionEpoch: 6}}},
		{"partition-change", &PartitionChangeRecord{PartitionState{TopicID: testTopicID, Partition: 2,
			Replicas: []int32{3, 1}, ISR: []int32{3}, ELR: []int32{}, Leader: 3, LeaderEpoch: 5, PartitionEpoch: 9, LeaderRecovering: true}}},
		{"config-set", &ConfigRecord{Resource: ConfigResource{Type: kmsg.ConfigResourceTypeTopic, Name: "orders"}, Name: "cleanup.policy", Value: &testValue}},
		{"config-delete", &ConfigRecord{Resource: ConfigResource{Type: kmsg.ConfigResourceTypeBroker, Name: "2"}, Name: "unclean.leader.election.enable"}},
		{"controlled-shutdown", &ControlledShutdownRecord{BrokerID: 4, BrokerEpoch: 13}},
		{"remove-topic", &RemoveTopicRecord{ID: testTopicID}},
		{"batch", &BatchRecord{Records: []Record{
			&TopicRecord{Name: "orders", ID: testTopicID},
			&PartitionRecord{PartitionState{TopicID: testTopicID, Replicas: []int32{1}, ISR: []int32{1}, ELR: []int32{}, Leader: 1}},
		}}},
	}
)

// TestEncodingMatchesGolden pins the bytes of one record of every kind, so
// that a change of encoding, which would make old logs unreadable, shows up
// as a diff of testdata/records.golden (rewrite it with -update only when
// the record version changes too).
func TestEncodingMatchesGolden(t *testing.T) {
	var lines []string
	for _, sample := range sampleRecord {
		lines = append(lines, fmt.Sprintf("%s %s", sample.name, hex.EncodeToString(Encode(sample.record))))
	}
	got := strings.Join(lines, "\n") + "\n"
	path := "testdata/records.golden"
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("encodings changed:\n got:\n%s\nwant:\n%s", got, want)
	}
}

// TestEncodingRoundTrips decodes every sample's bytes and requires the same
// record back, with its kind.
func TestEncodingRoundTrips(t *testing.T) {
	for _, sample := range sampleRecord {
		t.Run(sample.name, func(t *testing.T) {
			decoded, err := Decode(Encode(sample.record))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(decoded, sample.record) {
				t.Errorf("decoded %#v, want %#v", decoded, sample.record)
			}
			if decoded.Kind() != sample.record.Kind() {
				t.Errorf("kind %d, want %d", decoded.Kind(), sample.record.Kind())
			}
		})
	}
}

// TestDecodeRefusesMalformedBytes feeds damaged encodings and requires an
// error wrapping ErrMalformed for each, never a panic or a record.
func TestDecodeRefusesMalformedBytes(t *testing.T) {
	valid := Encode(sampleRecord[4].record)
	frame := func(frameVersion, kind, version uint32) []byte {
		dst := kbin.AppendUvarint(nil, frameVersion)
		dst = kbin.AppendUvarint(dst, kind)
		return kbin.AppendUvarint(dst, version)
	}
	tooManyReplicas := append(frame(1, uint32(PartitionKind), 0), testTopicID[:]...)
	tooManyReplicas = kbin.AppendInt32(tooManyReplicas, 0)
	tooManyReplicas = kbin.AppendCompactArrayLen(tooManyReplicas, replicasMax+1)
	longName := append(frame(1, uint32(TopicKind), 0), kbin.AppendCompactString(nil, strings.Repeat("a", topicNameBytesMax+1))...)
	badBool := append(frame(1, uint32(RegisterBrokerKind), 0), kbin.AppendInt8(kbin.AppendInt64(kbin.AppendInt32(nil, 1), 1), 2)...)
	padded := append([]byte{0x81, 0x00}, valid[1:]...)
	cases := []struct {
		name string
		data []byte
	}{
		{"empty frame", []byte{}},
		{"unknown frame version", append(frame(2, uint32(TopicKind), 0), valid[3:]...)},
		{"unknown kind", frame(1, 99, 0)},
		{"unknown record version", append(frame(1, uint32(PartitionKind), 1), valid[3:]...)},
		{"truncated body", valid[:len(valid)-1]},
		{"trailing byte", append(append([]byte{}, valid...), 0)},
		{"too many replicas", tooManyReplicas},
		{"topic name too long", longName},
		{"null topic name", append(frame(1, uint32(TopicKind), 0), 0)},
		{"boolean other than 0 or 1", badBool},
		{"padded varint", padded},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			record, err := Decode(c.data)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode = %v, %v; want ErrMalformed", record, err)
			}
		})
	}
}
