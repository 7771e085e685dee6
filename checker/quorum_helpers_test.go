package checker

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kafkasim/kafkasim/broker/metadata"
)

// The checker must not import package broker, and it does not: only these
// tests do, to show that CheckQuorum works with an adapter over the real
// metadata.Image, the one the simulator is meant to pass. Package core's
// lint loads the checker without its tests.

// imageMachine adapts metadata.Image to MetadataMachine. The simulator's
// adapter can be a copy of it; its digest (SHA-256 of Image.Snapshot) is
// what nodes must record.
type imageMachine struct{ image *metadata.Image }

func newImageMachine() MetadataMachine { return &imageMachine{image: metadata.NewImage()} }

func (m *imageMachine) Apply(offset int64, epoch int32, data []byte) error {
	return m.image.Apply(offset, epoch, data)
}

func (m *imageMachine) Check() error { return m.image.Check() }

func (m *imageMachine) Digest() string { return imageDigest(m.image) }

func imageDigest(image *metadata.Image) string {
	sum := sha256.Sum256(image.Snapshot())
	return hex.EncodeToString(sum[:])
}

func (m *imageMachine) Brokers() []MetadataBroker {
	var brokers []MetadataBroker
	for _, b := range m.image.Brokers() {
		brokers = append(brokers, MetadataBroker{ID: b.ID, Epoch: b.Epoch, Fenced: b.Fenced})
	}
	return brokers
}

func (m *imageMachine) Partitions() []MetadataPartition {
	var partitions []MetadataPartition
	for _, name := range m.image.TopicNames() {
		topic, _ := m.image.TopicByName(name)
		for _, p := range topic.Partitions {
			partitions = append(partitions, MetadataPartition{Topic: name, Partition: p.Partition, Leader: p.Leader,
				LeaderEpoch: p.LeaderEpoch, ISR: p.ISR, ELR: p.ELR})
		}
	}
	return partitions
}

// toyMachine is a metadata state machine small enough to plant bugs in. Its
// records are text:
//
//	register <broker> <epoch>      a broker, fenced
//	fence <broker> / unfence <broker>
//	partition <topic> <index> leader=<broker> isr=<a,b> elr=<c>
//
// Check fails when a leader is fenced, unregistered or outside its ISR,
// unless noCheck plants the bug of a machine that checks nothing.
type toyMachine struct {
	brokers    map[int32]MetadataBroker
	partitions map[string]MetadataPartition
	applied    int64
	noCheck    bool
}

func newToyMachine() MetadataMachine { return newToy(false) }

func newToy(noCheck bool) *toyMachine {
	return &toyMachine{brokers: map[int32]MetadataBroker{}, partitions: map[string]MetadataPartition{}, applied: -1, noCheck: noCheck}
}

func (m *toyMachine) Apply(offset int64, epoch int32, data []byte) error {
	if offset <= m.applied {
		return fmt.Errorf("offset %d is not after %d", offset, m.applied)
	}
	if len(data) > 0 {
		if err := m.applyRecord(strings.Fields(string(data))); err != nil {
			return err
		}
	}
	m.applied = offset
	return nil
}

func (m *toyMachine) applyRecord(words []string) error {
	number := func(i int) int32 {
		n, _ := strconv.Atoi(words[i])
		return int32(n)
	}
	switch {
	case len(words) == 3 && words[0] == "register":
		m.brokers[number(1)] = MetadataBroker{ID: number(1), Epoch: int64(number(2)), Fenced: true}
	case len(words) == 2 && (words[0] == "fence" || words[0] == "unfence"):
		b, ok := m.brokers[number(1)]
		if !ok {
			return fmt.Errorf("unknown broker %d", number(1))
		}
		b.Fenced = words[0] == "fence"
		m.brokers[b.ID] = b
	case len(words) >= 4 && words[0] == "partition":
		p := MetadataPartition{Topic: words[1], Partition: number(2), Leader: -1}
		for _, field := range words[3:] {
			key, value, _ := strings.Cut(field, "=")
			switch key {
			case "leader":
				n, _ := strconv.Atoi(value)
				p.Leader = int32(n)
			case "isr":
				p.ISR = toyBrokers(value)
			case "elr":
				p.ELR = toyBrokers(value)
			}
		}
		m.partitions[p.name()] = p
	default:
		return errors.New("unknown record " + strings.Join(words, " "))
	}
	return nil
}

func toyBrokers(list string) []int32 {
	var brokers []int32
	for _, field := range strings.Split(list, ",") {
		if n, err := strconv.Atoi(field); err == nil {
			brokers = append(brokers, int32(n))
		}
	}
	return brokers
}

func (m *toyMachine) Check() error {
	if m.noCheck {
		return nil
	}
	for _, p := range m.Partitions() {
		b, ok := m.brokers[p.Leader]
		if p.Leader >= 0 && (!ok || b.Fenced || !slices.Contains(p.ISR, p.Leader)) {
			return fmt.Errorf("%s: leader %d is fenced, unregistered or outside the ISR %v", p.name(), p.Leader, p.ISR)
		}
	}
	return nil
}

func (m *toyMachine) Digest() string {
	hash := fnv.New64a()
	fmt.Fprint(hash, m.applied, m.Brokers(), m.Partitions())
	return fmt.Sprintf("%016x", hash.Sum64())
}

func (m *toyMachine) Brokers() []MetadataBroker {
	var brokers []MetadataBroker
	for _, id := range slices.Sorted(mapsKeys(m.brokers)) {
		brokers = append(brokers, m.brokers[id])
	}
	return brokers
}

func (m *toyMachine) Partitions() []MetadataPartition {
	var partitions []MetadataPartition
	for _, name := range slices.Sorted(mapsKeys(m.partitions)) {
		partitions = append(partitions, m.partitions[name])
	}
	return partitions
}

// mapsKeys yields a map's keys; callers sort them.
func mapsKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m { // order-independent: callers sort
			if !yield(k) {
				return
			}
		}
	}
}

// toyDigest is the toy machine's digest after applying the entries. Like
// the real image, it stays unchanged by the records it refuses.
func toyDigest(_ testing.TB, entries [][]byte) string {
	m := newToy(true)
	for offset, data := range entries {
		_ = m.Apply(int64(offset), 1, data) // a refusal changes nothing
	}
	return m.Digest()
}

// defaultToyEntries is the base run's log after its leader-change entry:
// four brokers registered and unfenced, then partition t-0 led by broker 1.
var defaultToyEntries = []string{
	"register 1 1", "register 2 1", "register 3 1", "register 4 1",
	"unfence 1", "unfence 2", "unfence 3", "unfence 4",
	"partition t 0 leader=1 isr=1,2,3",
}

// baseQuorumRun records a correct run: voters 1, 2 and 3 and observer 4,
// all brokers, start at time 0; node 1 wins epoch 1 at time 11; at time 20
// every node holds the log (entries, in epoch 1) durably; node 1 commits it
// at 21 and applies it at 22; the others learn the high watermark and apply
// at 23. The last applied entry of each node carries the state digest that
// digest computes. Cases add events from time 25 on.
func baseQuorumRun(t testing.TB, entries [][]byte, digest func(testing.TB, [][]byte) string) *QuorumRecorder {
	r := NewQuorumRecorder([]int32{1, 2, 3})
	for id := int32(1); id <= 4; id++ {
		r.Start(id, 0, true)
		r.State(id, 0, 0, QuorumRoleUnattached, NoQuorumNode, NoQuorumNode)
		r.LogEnd(id, 0, 0)
	}
	r.State(1, 10, 1, QuorumRoleCandidate, NoQuorumNode, 1)
	r.State(2, 10, 1, QuorumRoleUnattached, NoQuorumNode, 1)
	r.State(3, 10, 1, QuorumRoleUnattached, NoQuorumNode, 1)
	r.State(1, 11, 1, QuorumRoleLeader, 1, 1)
	r.State(2, 11, 1, QuorumRoleFollower, 1, 1)
	r.State(3, 11, 1, QuorumRoleFollower, 1, 1)
	r.State(4, 11, 1, QuorumRoleFollower, 1, NoQuorumNode)
	end := int64(len(entries))
	for id := int32(1); id <= 4; id++ {
		r.LogEnd(id, 20, end)
	}
	last := digest(t, entries)
	r.HighWatermark(1, 21, end)
	applyAll(r, 1, 22, entries, last)
	for id := int32(2); id <= 4; id++ {
		r.HighWatermark(id, 23, end)
		applyAll(r, id, 23, entries, last)
	}
	return r
}

// toyEntries is the log of a run: the leader-change entry, then records.
func toyEntries(records []string) [][]byte {
	entries := [][]byte{nil}
	for _, record := range records {
		entries = append(entries, []byte(record))
	}
	return entries
}

// applyAll records node id applying every entry in epoch 1, with the
// digest on the last.
func applyAll(r *QuorumRecorder, id int32, time int64, entries [][]byte, digest string) {
	for offset, data := range entries {
		if offset == len(entries)-1 {
			r.Applied(id, time, int64(offset), 1, data, digest)
			continue
		}
		r.Applied(id, time, int64(offset), 1, data, "")
	}
}

// findQuorumEvent returns node id's first event of the kind at the offset.
func findQuorumEvent(t testing.TB, h *QuorumHistory, id int32, kind QuorumEventKind, offset int64) *QuorumEvent {
	for i := range h.Nodes {
		if h.Nodes[i].ID != id {
			continue
		}
		for j := range h.Nodes[i].Events {
			if e := &h.Nodes[i].Events[j]; e.Kind == kind && e.Offset == offset {
				return e
			}
		}
	}
	t.Fatalf("node %d has no %s event at offset %d", id, kind, offset)
	return nil
}

// removeQuorumEvent deletes node id's first event of the kind at the offset.
func removeQuorumEvent(t testing.TB, h *QuorumHistory, id int32, kind QuorumEventKind, offset int64) {
	for i := range h.Nodes {
		if h.Nodes[i].ID != id {
			continue
		}
		j := slices.IndexFunc(h.Nodes[i].Events, func(e QuorumEvent) bool { return e.Kind == kind && e.Offset == offset })
		if j < 0 {
			break
		}
		h.Nodes[i].Events = slices.Delete(h.Nodes[i].Events, j, j+1)
		return
	}
	t.Fatalf("node %d has no %s event at offset %d", id, kind, offset)
}

// quorumKinds returns the distinct kinds of a result's anomalies, sorted.
func quorumKinds(r QuorumResult) []QuorumAnomalyKind {
	var kinds []QuorumAnomalyKind
	for _, a := range r.Anomalies {
		kinds = append(kinds, a.Kind)
	}
	slices.Sort(kinds)
	return slices.Compact(kinds)
}
