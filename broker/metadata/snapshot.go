package metadata

import (
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kbin"
)

// snapshotVersion is the version of the snapshot layout below.
const snapshotVersion = 0

// snapshotRecordsMax bounds the records Load accepts, so that a corrupt
// count cannot make it loop or allocate without limit.
const snapshotRecordsMax = 1 << 24

// Snapshot encodes the image as Kafka encodes a metadata snapshot: as the
// records that rebuild it. The layout is a version (int16), the applied
// offset (int64) and epoch (int32), a record count (int32), then each
// record's Encode bytes as compact bytes: brokers by ID (each followed by a
// ControlledShutdownRecord if it is shutting down), then topics by name
// each followed by its partitions in order, then configurations by resource
// type, resource name and name. Equal images give equal bytes.
func (image *Image) Snapshot() []byte {
	records := image.snapshotRecords()
	dst := kbin.AppendInt16(nil, snapshotVersion)
	dst = kbin.AppendInt64(dst, image.appliedOffset)
	dst = kbin.AppendInt32(dst, image.appliedEpoch)
	dst = kbin.AppendInt32(dst, int32(len(records)))
	for _, record := range records {
		dst = kbin.AppendCompactBytes(dst, Encode(record))
	}
	return dst
}

func (image *Image) snapshotRecords() []Record {
	var records []Record
	if image.nextProducerID > 0 {
		records = append(records, &ProducerIdsRecord{BrokerID: -1, BrokerEpoch: -1, NextProducerID: image.nextProducerID})
	}
	for _, broker := range image.Brokers() {
		records = append(records, &RegisterBrokerRecord{BrokerID: broker.ID, BrokerEpoch: broker.Epoch,
			IncarnationID: broker.IncarnationID, Listeners: slices.Clone(broker.Listeners), Fenced: broker.Fenced})
		if broker.InControlledShutdown {
			records = append(records, &ControlledShutdownRecord{BrokerID: broker.ID, BrokerEpoch: broker.Epoch})
		}
	}
	for _, topic := range image.topicsInNameOrder() {
		records = append(records, &TopicRecord{Name: topic.Name, ID: topic.ID})
		for _, partition := range topic.Partitions {
			records = append(records, &PartitionRecord{PartitionState: partition.clone()})
		}
	}
	for _, resource := range image.configResources() {
		for _, entry := range image.Configs(resource) {
			value := entry.Value
			records = append(records, &ConfigRecord{Resource: resource, Name: entry.Name, Value: &value})
		}
	}
	return records
}

func (image *Image) configResources() []ConfigResource {
	resources := make([]ConfigResource, 0, len(image.configs))
	for resource := range image.configs { // order-independent: sorted below
		resources = append(resources, resource)
	}
	slices.SortFunc(resources, func(a, b ConfigResource) int {
		if a.Type != b.Type {
			return int(a.Type) - int(b.Type)
		}
		return strings.Compare(a.Name, b.Name)
	})
	return resources
}

// Load rebuilds an image from Snapshot's bytes. Each record goes through the
// same validation as Apply, and the result through Check, so a corrupt or
// inconsistent snapshot is an error, never a corrupt image.
func Load(data []byte) (*Image, error) {
	reader := kbin.Reader{Src: data}
	version := reader.Int16()
	offset := reader.Int64()
	epoch := reader.Int32()
	count := reader.Int32()
	if !reader.Ok() {
		return nil, fmt.Errorf("%w: truncated snapshot header", ErrMalformed)
	}
	if version != snapshotVersion || count < 0 || count > snapshotRecordsMax || offset < -1 || epoch < 0 {
		return nil, fmt.Errorf("%w: snapshot header version %d, offset %d, epoch %d, %d records", ErrMalformed, version, offset, epoch, count)
	}
	image := NewImage()
	for index := range count {
		data := reader.CompactBytes()
		if !reader.Ok() {
			return nil, fmt.Errorf("%w: snapshot truncated at record %d", ErrMalformed, index)
		}
		record, err := Decode(data)
		if err != nil {
			return nil, fmt.Errorf("snapshot record %d: %w", index, err)
		}
		if err := image.apply(record); err != nil {
			return nil, fmt.Errorf("snapshot record %d: %w", index, err)
		}
	}
	if len(reader.Src) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes after the snapshot", ErrMalformed, len(reader.Src))
	}
	if err := image.Check(); err != nil {
		return nil, fmt.Errorf("%w: snapshot breaks an invariant: %w", ErrRejected, err)
	}
	image.appliedOffset, image.appliedEpoch = offset, epoch
	return image, nil
}
