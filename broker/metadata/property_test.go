package metadata

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
	"pgregory.net/rapid"
)

// entry is one committed entry of a generated metadata log.
type entry struct {
	offset int64
	epoch  int32
	data   []byte
}

// TestRandomRecordsKeepInvariants applies random sequences mixing records
// the controller's decision functions produce (registrations, placements,
// fencing, elections, ISR changes) with hand-made records that are often
// invalid (perturbed epochs and leaders, colliding names, random bytes).
// After every entry it checks: Check passes; a rejected entry left the
// image byte for byte as it was; a decision function's records were all
// accepted; no leader epoch went back and every changed partition has a
// larger partition epoch; ElectLeader on every partition never picks a
// fenced or unknown broker, nor outside the ISR and ELR unless unclean, and
// its change is accepted. At the end, replaying the log on a new image
// gives an identical image and snapshot, and loading the snapshot does too.
func TestRandomRecordsKeepInvariants(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		g := &generator{image: NewImage(), epoch: 1}
		steps := rapid.IntRange(1, 120).Draw(rt, "steps")
		for range steps {
			g.step(rt)
		}
		requireReplayIdentical(rt, g.image, g.log)
	})
}

type generator struct {
	image *Image
	log   []entry
	epoch int32
}

func (g *generator) step(rt *rapid.T) {
	if rapid.IntRange(0, 9).Draw(rt, "new epoch") == 0 {
		g.epoch++
	}
	// The weights favour the records that build up state (brokers that get
	// unfenced, topics with partitions), so that fencing and elections
	// have partitions to work on.
	kind := rapid.SampledFrom([]string{
		"register", "register", "fence", "fence", "fence raw", "unfence", "unfence", "unfence",
		"topic", "topic", "partitions", "partitions", "partitions", "partitions",
		"elect", "elect", "isr", "isr", "move leader", "move leader", "perturb", "perturb", "config", "garbage", "leader change",
		"shutdown", "shutdown raw", "remove", "preferred", "batch", "batch",
	}).Draw(rt, "action")
	switch kind {
	case "fence", "shutdown":
		g.evacuate(rt, kind)
	case "batch":
		g.batch(rt)
	default:
		g.apply(rt, g.draw(rt, kind), false)
	}
}

// batch applies several drawn records as one BatchRecord and requires all
// or nothing: the image afterwards equals a clone that applied them one by
// one when all fit, and is unchanged otherwise (apply checks that).
func (g *generator) batch(rt *rapid.T) {
	var records []Record
	for range rapid.IntRange(1, 4).Draw(rt, "batch size") {
		kind := rapid.SampledFrom([]string{"register", "unfence", "topic", "partitions", "elect", "isr", "move leader", "perturb", "config", "remove", "preferred", "shutdown raw"}).Draw(rt, "batch action")
		if record, err := Decode(g.draw(rt, kind)); err == nil {
			records = append(records, record)
		}
	}
	if len(records) == 0 {
		return
	}
	expected, allFit := g.image.Clone(), true
	for index, record := range records {
		allFit = allFit && expected.ApplyRecord(g.image.AppliedOffset()+1+int64(index), g.epoch, record) == nil
	}
	g.apply(rt, Encode(&BatchRecord{Records: records}), false)
	if allFit && !bytes.Equal(g.image.Snapshot()[14:], expected.Snapshot()[14:]) {
		rt.Fatal("a batch whose records all fit did not apply them all")
	}
}

// apply appends one entry to the log and checks everything that must hold
// after it. mustAccept is set for the output of decision functions.
func (g *generator) apply(rt *rapid.T, data []byte, mustAccept bool) {
	offset := int64(len(g.log))
	before := g.image.Snapshot()
	previous := partitionsOf(g.image)
	err := g.image.Apply(offset, g.epoch, data)
	g.log = append(g.log, entry{offset: offset, epoch: g.epoch, data: data})
	if err != nil && mustAccept {
		rt.Fatalf("a decision function's record was rejected: %v", err)
	}
	if err != nil && !bytes.Equal(before, g.image.Snapshot()) {
		rt.Fatalf("rejected entry %d changed the image: %v", offset, err)
	}
	if err := g.image.Check(); err != nil {
		rt.Fatalf("after entry %d: %v", offset, err)
	}
	requireLeadersSafe(rt, g.image)
	requireEpochsMoveForward(rt, previous, partitionsOf(g.image))
	requireElectionsSafe(rt, g.image)
}

// evacuate fences a broker or starts its controlled shutdown with the
// decision functions' records, applied one by one or as one batch: both
// must be accepted.
func (g *generator) evacuate(rt *rapid.T, kind string) {
	unclean := rapid.Bool().Draw(rt, "unclean")
	decide := FenceBrokerRecords
	if kind == "shutdown" {
		decide = ControlledShutdownRecords
	}
	records, err := decide(g.image, g.brokerID(rt), func(string) bool { return unclean })
	if err != nil {
		return
	}
	if rapid.Bool().Draw(rt, "as a batch") {
		g.apply(rt, Encode(&BatchRecord{Records: records}), true)
		return
	}
	for _, record := range records {
		g.apply(rt, Encode(record), true)
	}
}

func (g *generator) brokerID(rt *rapid.T) int32 {
	return int32(rapid.IntRange(0, 5).Draw(rt, "broker"))
}

// brokerEpoch returns the broker's registered epoch, or one off it (a stale
// or future incarnation) one time in four.
func (g *generator) brokerEpoch(rt *rapid.T, id int32) int64 {
	broker, _ := g.image.Broker(id)
	delta := int64(rapid.IntRange(-2, 5).Draw(rt, "broker epoch delta"))
	if delta > 1 {
		delta = 0
	}
	return broker.Epoch + delta
}

// draw returns the bytes of one entry of the kind.
func (g *generator) draw(rt *rapid.T, kind string) []byte {
	switch kind {
	case "register":
		id := g.brokerID(rt)
		return Encode(&RegisterBrokerRecord{BrokerID: id, BrokerEpoch: g.brokerEpoch(rt, id) + 1, Fenced: rapid.IntRange(0, 4).Draw(rt, "fenced") > 0})
	case "fence raw":
		id := g.brokerID(rt)
		return Encode(&FenceBrokerRecord{BrokerID: id, BrokerEpoch: g.brokerEpoch(rt, id)})
	case "shutdown raw":
		id := g.brokerID(rt)
		return Encode(&ControlledShutdownRecord{BrokerID: id, BrokerEpoch: g.brokerEpoch(rt, id)})
	case "unfence":
		id := g.brokerID(rt)
		return Encode(&UnfenceBrokerRecord{BrokerID: id, BrokerEpoch: g.brokerEpoch(rt, id)})
	case "topic":
		name := rapid.SampledFrom([]string{"a", "b", "c", "bad/name"}).Draw(rt, "topic name")
		return Encode(&TopicRecord{Name: name, ID: TopicID{byte(rapid.IntRange(0, 3).Draw(rt, "topic id"))}})
	case "config":
		return Encode(g.config(rt))
	case "garbage":
		return rapid.SliceOfN(rapid.Byte(), 1, 40).Draw(rt, "garbage")
	case "leader change":
		return nil
	}
	state, ok := g.partition(rt)
	if !ok {
		return nil
	}
	switch kind {
	case "partitions":
		return g.place(rt, state.TopicID)
	case "elect":
		change, ok := ElectLeader(state, g.image, rapid.Bool().Draw(rt, "unclean"))
		if !ok {
			return nil
		}
		return Encode(&change)
	case "isr":
		return Encode(&PartitionChangeRecord{g.isrChange(rt, state)})
	case "move leader":
		return Encode(&PartitionChangeRecord{g.moveLeader(rt, state)})
	case "remove":
		return Encode(&RemoveTopicRecord{ID: state.TopicID})
	case "preferred":
		change, err := PreferredLeaderChange(state, g.image)
		if err != nil {
			return nil
		}
		return Encode(&change)
	}
	return Encode(&PartitionChangeRecord{g.perturb(rt, g.isrChange(rt, state))})
}

// partition picks an existing partition.
func (g *generator) partition(rt *rapid.T) (PartitionState, bool) {
	var all []PartitionState
	for _, name := range g.image.TopicNames() {
		topic, _ := g.image.TopicByName(name)
		all = append(all, topic.Partitions...)
		if len(topic.Partitions) == 0 {
			all = append(all, PartitionState{TopicID: topic.ID, Partition: -1})
		}
	}
	if len(all) == 0 {
		return PartitionState{}, false
	}
	return all[rapid.IntRange(0, len(all)-1).Draw(rt, "partition")], true
}

// place creates the next partition of the topic as the controller would:
// replicas from PlaceReplicas, the first leading, some of them in sync.
func (g *generator) place(rt *rapid.T, id TopicID) []byte {
	placement, err := PlaceReplicas(g.image, 1, rapid.IntRange(1, 3).Draw(rt, "replication factor"))
	if err != nil {
		return nil
	}
	topic, _ := g.image.TopicByID(id)
	replicas := placement[0]
	isr := replicas[:rapid.IntRange(1, len(replicas)).Draw(rt, "in sync")]
	return Encode(&PartitionRecord{PartitionState{TopicID: id, Partition: int32(len(topic.Partitions)),
		Replicas: replicas, ISR: isr, ELR: []int32{}, Leader: replicas[0]}})
}

// isrChange returns a valid change when the partition has a leader: a random
// in-sync subset of the replicas that keeps the leader, with the next
// partition epoch and the same leader epoch.
func (g *generator) isrChange(rt *rapid.T, state PartitionState) PartitionState {
	next := state.clone()
	next.PartitionEpoch++
	if next.LeaderRecovering || len(next.Replicas) == 0 {
		return next
	}
	next.ISR, next.ELR = []int32{}, []int32{}
	for _, replica := range next.Replicas {
		inSync := replica == next.Leader || rapid.Bool().Draw(rt, "in sync")
		if inSync {
			next.ISR = append(next.ISR, replica)
		} else if rapid.Bool().Draw(rt, "eligible") {
			next.ELR = append(next.ELR, replica)
		}
	}
	return next
}

// moveLeader hands leadership to any ISR member, fenced ones included, with
// correct epochs: valid exactly when the new leader is live.
func (g *generator) moveLeader(rt *rapid.T, state PartitionState) PartitionState {
	next := state.clone()
	next.PartitionEpoch++
	if len(next.ISR) == 0 {
		return next
	}
	next.Leader = rapid.SampledFrom(next.ISR).Draw(rt, "new leader")
	if next.Leader != state.Leader {
		next.LeaderEpoch++
	}
	return next
}

// perturb breaks one field of a change, often making it invalid.
func (g *generator) perturb(rt *rapid.T, state PartitionState) PartitionState {
	switch rapid.IntRange(0, 5).Draw(rt, "perturbation") {
	case 0:
		state.LeaderEpoch += int32(rapid.IntRange(-2, 2).Draw(rt, "leader epoch delta"))
	case 1:
		state.PartitionEpoch += int32(rapid.IntRange(-2, 2).Draw(rt, "partition epoch delta"))
	case 2:
		state.Leader = int32(rapid.IntRange(-1, 5).Draw(rt, "leader"))
		state.LeaderEpoch++
	case 3:
		state.ISR = append(state.ISR, g.brokerID(rt))
	case 4:
		state.Replicas = append(state.Replicas, g.brokerID(rt))
	case 5:
		state.LeaderRecovering = !state.LeaderRecovering
	}
	return state
}

func (g *generator) config(rt *rapid.T) *ConfigRecord {
	resource := ConfigResource{Type: kmsg.ConfigResourceTypeTopic, Name: rapid.SampledFrom([]string{"a", "b", "z"}).Draw(rt, "config topic")}
	if rapid.Bool().Draw(rt, "broker config") {
		resource = ConfigResource{Type: kmsg.ConfigResourceTypeBroker, Name: rapid.SampledFrom([]string{"", "1", "x"}).Draw(rt, "config broker")}
	}
	record := &ConfigRecord{Resource: resource, Name: rapid.SampledFrom([]string{"retention.ms", "unclean.leader.election.enable"}).Draw(rt, "config name")}
	if rapid.Bool().Draw(rt, "config set") {
		value := rapid.SampledFrom([]string{"1", "true", ""}).Draw(rt, "config value")
		record.Value = &value
	}
	return record
}

func partitionsOf(image *Image) map[string]PartitionState {
	partitions := map[string]PartitionState{}
	for _, name := range image.TopicNames() {
		topic, _ := image.TopicByName(name)
		for _, partition := range topic.Partitions {
			partitions[fmt.Sprintf("%s-%d", name, partition.Partition)] = partition
		}
	}
	return partitions
}

// requireLeadersSafe checks the leadership invariants again through the
// exported accessors only, so that a bug shared by Apply's validation and
// Check (they use the same code) still fails the test.
func requireLeadersSafe(rt *rapid.T, image *Image) {
	for name, state := range partitionsOf(image) { // order-independent: any violation fails
		for _, member := range state.ISR {
			if !slices.Contains(state.Replicas, member) {
				rt.Fatalf("%s: ISR member %d is not a replica %v", name, member, state.Replicas)
			}
		}
		if state.Leader == NoLeader {
			continue
		}
		broker, registered := image.Broker(state.Leader)
		if !registered || broker.Fenced || broker.InControlledShutdown || !slices.Contains(state.ISR, state.Leader) {
			rt.Fatalf("%s: leader %d is fenced (%t), shutting down (%t), unknown (%t) or outside the ISR %v",
				name, state.Leader, broker.Fenced, broker.InControlledShutdown, !registered, state.ISR)
		}
	}
}

func requireEpochsMoveForward(rt *rapid.T, previous, current map[string]PartitionState) {
	for name, old := range previous { // order-independent: any violation fails
		state, ok := current[name]
		if !ok || state.TopicID != old.TopicID {
			continue // the topic was removed (and perhaps created again)
		}
		if state.LeaderEpoch < old.LeaderEpoch {
			rt.Fatalf("%s: leader epoch went back from %d to %d", name, old.LeaderEpoch, state.LeaderEpoch)
		}
		if !reflect.DeepEqual(state, old) && state.PartitionEpoch <= old.PartitionEpoch {
			rt.Fatalf("%s changed without a new partition epoch (%d)", name, state.PartitionEpoch)
		}
	}
}

// requireElectionsSafe runs ElectLeader, clean and unclean, on every
// partition and applies each change to a copy of the image.
func requireElectionsSafe(rt *rapid.T, image *Image) {
	for _, state := range partitionsOf(image) { // order-independent: each is checked alone
		for _, unclean := range []bool{false, true} {
			change, ok := ElectLeader(state, image, unclean)
			if !ok {
				continue
			}
			leader := change.Leader
			if broker, registered := image.Broker(leader); leader != NoLeader && (!registered || broker.Fenced) {
				rt.Fatalf("ElectLeader chose broker %d, fenced or unknown", leader)
			}
			clean := leader == NoLeader || slices.Contains(state.ISR, leader) || slices.Contains(state.ELR, leader)
			if !unclean && !clean {
				rt.Fatalf("a clean election chose %d outside ISR %v and ELR %v", leader, state.ISR, state.ELR)
			}
			if !clean && !change.LeaderRecovering {
				rt.Fatalf("an unclean election of %d is not marked recovering", leader)
			}
			copied, err := Load(image.Snapshot())
			if err != nil {
				rt.Fatal(err)
			}
			if err := copied.ApplyRecord(image.AppliedOffset()+1, image.AppliedEpoch(), &change); err != nil {
				rt.Fatalf("ElectLeader's change was rejected: %v", err)
			}
		}
	}
}

// requireReplayIdentical applies the whole log to a new image and loads the
// snapshot, and requires both to equal the image, value and bytes.
func requireReplayIdentical(rt *rapid.T, image *Image, log []entry) {
	replayed := NewImage()
	for _, entry := range log {
		_ = replayed.Apply(entry.offset, entry.epoch, entry.data) // the same entries fail again
	}
	snapshot := image.Snapshot()
	if !reflect.DeepEqual(replayed, image) || !bytes.Equal(replayed.Snapshot(), snapshot) {
		rt.Fatal("replaying the log gave a different image")
	}
	loaded, err := Load(snapshot)
	if err != nil {
		rt.Fatal(err)
	}
	if !bytes.Equal(loaded.Snapshot(), snapshot) || !reflect.DeepEqual(partitionsOf(loaded), partitionsOf(image)) {
		rt.Fatal("loading the snapshot gave a different image")
	}
}
