package metadata

import (
	"fmt"
	"maps"
	"slices"
	"sort"
)

// NoLeader is the leader of a partition that has none.
const NoLeader int32 = -1

// Broker is one registered broker as the image knows it: its current
// incarnation (broker epoch and incarnation ID), whether it is fenced and
// whether it is in controlled shutdown (KIP-841). Only a broker that is
// neither may lead.
type Broker struct {
	ID                   int32
	Epoch                int64
	IncarnationID        [16]byte
	Listeners            []Listener
	Fenced               bool
	InControlledShutdown bool
}

// Topic is one topic as the image knows it. Partitions are numbered from 0
// without gaps; Partitions[i].Partition == i.
type Topic struct {
	Name       string
	ID         TopicID
	Partitions []PartitionState
}

// ConfigEntry is one configuration of a resource.
type ConfigEntry struct {
	Name  string
	Value string
}

// Image is the applied cluster metadata: what every broker and controller
// rebuilds by applying the committed metadata log in order. It is a pure
// value; nothing in it reads a clock or performs I/O. Applying the same
// records to a new Image always gives the same Image.
type Image struct {
	brokers       map[int32]*Broker
	topicsByID    map[TopicID]*Topic
	topicsByName  map[string]TopicID
	configs       map[ConfigResource]map[string]string
	appliedOffset int64
	appliedEpoch  int32
	// nextProducerID is the first producer id no block has covered yet.
	nextProducerID int64
}

// NextProducerID is the first producer id the controller has not given to
// any broker yet.
func (image *Image) NextProducerID() int64 { return image.nextProducerID }

// NewImage returns the image of an empty metadata log.
func NewImage() *Image {
	return &Image{
		brokers:       map[int32]*Broker{},
		topicsByID:    map[TopicID]*Topic{},
		topicsByName:  map[string]TopicID{},
		configs:       map[ConfigResource]map[string]string{},
		appliedOffset: -1,
	}
}

// AppliedOffset returns the offset of the last entry applied, or -1.
func (image *Image) AppliedOffset() int64 { return image.appliedOffset }

// AppliedEpoch returns the Raft epoch of the last entry applied.
func (image *Image) AppliedEpoch() int32 { return image.appliedEpoch }

// Clone returns a deep copy of the image: applying entries to one leaves
// the other as it was. The active controller decides against a clone of
// the committed image with its own uncommitted proposals applied.
func (image *Image) Clone() *Image {
	clone := &Image{
		brokers:       make(map[int32]*Broker, len(image.brokers)),
		topicsByID:    make(map[TopicID]*Topic, len(image.topicsByID)),
		topicsByName:  maps.Clone(image.topicsByName),
		configs:       make(map[ConfigResource]map[string]string, len(image.configs)),
		appliedOffset: image.appliedOffset,
		appliedEpoch:  image.appliedEpoch,

		nextProducerID: image.nextProducerID,
	}
	for id, broker := range image.brokers { // order-independent: a copy
		copied := *broker
		clone.brokers[id] = &copied
	}
	for id, topic := range image.topicsByID { // order-independent: a copy
		copied := &Topic{Name: topic.Name, ID: topic.ID}
		for _, partition := range topic.Partitions {
			copied.Partitions = append(copied.Partitions, partition.clone())
		}
		clone.topicsByID[id] = copied
	}
	for resource, values := range image.configs { // order-independent: a copy
		clone.configs[resource] = maps.Clone(values)
	}
	return clone
}

// Broker returns the broker with the ID.
func (image *Image) Broker(id int32) (Broker, bool) {
	broker, ok := image.brokers[id]
	if !ok {
		return Broker{}, false
	}
	return *broker, true
}

// Brokers returns every registered broker, ordered by ID.
func (image *Image) Brokers() []Broker {
	brokers := make([]Broker, 0, len(image.brokers))
	for _, id := range image.brokerIDs() {
		brokers = append(brokers, *image.brokers[id])
	}
	return brokers
}

// TopicByName returns a copy of the named topic.
func (image *Image) TopicByName(name string) (Topic, bool) {
	id, ok := image.topicsByName[name]
	if !ok {
		return Topic{}, false
	}
	return image.TopicByID(id)
}

// TopicByID returns a copy of the topic with the ID.
func (image *Image) TopicByID(id TopicID) (Topic, bool) {
	topic, ok := image.topicsByID[id]
	if !ok {
		return Topic{}, false
	}
	copied := Topic{Name: topic.Name, ID: topic.ID}
	for _, partition := range topic.Partitions {
		copied.Partitions = append(copied.Partitions, partition.clone())
	}
	return copied, true
}

// TopicNames returns every topic's name, sorted.
func (image *Image) TopicNames() []string {
	return slices.Sorted(maps.Keys(image.topicsByName))
}

// Partition returns a copy of one partition's state.
func (image *Image) Partition(id TopicID, partition int32) (PartitionState, bool) {
	state := image.partition(id, partition)
	if state == nil {
		return PartitionState{}, false
	}
	return state.clone(), true
}

// Configs returns the resource's configurations, sorted by name.
func (image *Image) Configs(resource ConfigResource) []ConfigEntry {
	values := image.configs[resource]
	entries := make([]ConfigEntry, 0, len(values))
	for name, value := range values { // order-independent: sorted below
		entries = append(entries, ConfigEntry{Name: name, Value: value})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	return entries
}

func (image *Image) partition(id TopicID, partition int32) *PartitionState {
	topic, ok := image.topicsByID[id]
	if !ok || partition < 0 || int(partition) >= len(topic.Partitions) {
		return nil
	}
	return &topic.Partitions[partition]
}

func (image *Image) brokerIDs() []int32 {
	return slices.Sorted(maps.Keys(image.brokers))
}

// topicsInNameOrder returns the topics sorted by name, so that every walk
// over partitions (Check, snapshots, fencing) visits them in one order.
func (image *Image) topicsInNameOrder() []*Topic {
	topics := make([]*Topic, 0, len(image.topicsByName))
	for _, name := range image.TopicNames() {
		topics = append(topics, image.topicsByID[image.topicsByName[name]])
	}
	return topics
}

// Live reports whether the broker may lead: registered, not fenced and not
// in controlled shutdown.
func (image *Image) Live(id int32) bool { return image.live(id) }

func (image *Image) live(id int32) bool {
	broker, ok := image.brokers[id]
	return ok && !broker.Fenced && !broker.InControlledShutdown
}

// Leads reports whether the broker leads any partition.
func (image *Image) Leads(brokerID int32) bool {
	_, leads := image.leadership(brokerID)
	return leads
}

// leadership returns the first partition the broker leads, in name order,
// for an error message; ok is false when it leads none.
func (image *Image) leadership(brokerID int32) (string, bool) {
	for _, topic := range image.topicsInNameOrder() {
		for _, partition := range topic.Partitions {
			if partition.Leader == brokerID {
				return fmt.Sprintf("%s-%d", topic.Name, partition.Partition), true
			}
		}
	}
	return "", false
}

// clone copies the lists, never returning nil ones, so that a state built in
// memory and one decoded from bytes compare equal.
func (state PartitionState) clone() PartitionState {
	state.Replicas = append([]int32{}, state.Replicas...)
	state.ISR = append([]int32{}, state.ISR...)
	state.ELR = append([]int32{}, state.ELR...)
	return state
}
