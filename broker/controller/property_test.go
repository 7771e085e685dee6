package controller

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kafkasim/kafkasim/broker/metadata"
	"github.com/kafkasim/kafkasim/broker/raft"
	"github.com/kafkasim/kafkasim/core"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"pgregory.net/rapid"
)

// TestRandomScheduleKeepsInvariants drives one controller, starting from
// three brokers and a topic whose ISRs are full, through random schedules:
// registrations (new, repeated, from other incarnations),
// heartbeats (current, stale, behind, wanting the fence or a shutdown,
// leaders asking for a controlled shutdown),
// elapsed time and ticks, creates, deletes, new partitions and elections,
// partial commits, refused proposals, and lost and regained leadership
// (where the next leader commits a random prefix of what was proposed).
// After every step it checks: both images pass metadata.Image.Check; no
// partition is led by a broker that is unregistered, fenced, shutting down
// or outside the ISR (through the exported accessors, independently of
// Check); every committed unclean election happened with unclean election
// enabled for its topic or by an unclean ElectLeaders request; no broker
// incarnation is unfenced before it sent a heartbeat whose metadata offset
// reached its epoch (KIP-631); no request
// was answered twice, and none with a claim (anything but NOT_CONTROLLER
// or REQUEST_TIMED_OUT) before everything proposed up to its decision was
// committed; after a tick, no unfenced broker's session is older than the
// timeout. At the end, with everything committed and the controller
// deactivated, every request was answered exactly once. The controller's
// own assertions (its working image equals the committed one whenever
// nothing is pending, Raft's offsets are the expected ones) run throughout.
func TestRandomScheduleKeepsInvariants(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		m := newModel(rt)
		for range rapid.IntRange(20, 200).Draw(rt, "steps") {
			m.step(rt)
			m.check(rt)
		}
		m.finish(rt)
	})
}

type model struct {
	committed *metadata.Image
	raft      *fakeRaft
	c         *Controller
	config    Config
	now       time.Duration
	active    bool
	inHandle  bool
	calls     []*trackedCall
	// epochs holds the broker epoch each broker last learned from a
	// successful registration.
	epochs map[int32]int64
	// uncleanRequests holds the offsets of entries proposed by unclean
	// ElectLeaders requests.
	uncleanRequests map[int64]bool
	// log holds every committed entry.
	log []fakeEntry
	// caughtUp holds the broker incarnations (ID and epoch) that sent a
	// heartbeat with a metadata offset at or past their epoch.
	caughtUp map[brokerIncarnation]bool
}

type brokerIncarnation struct {
	id    int32
	epoch int64
}

type trackedCall struct {
	name    string
	mark    int64
	answers int
}

func newModel(rt *rapid.T) *model {
	config := testConfig()
	config.Rand = core.NewRand(rapid.Uint64().Draw(rt, "rand seed"))
	config.UncleanLeaderElection = rapid.Bool().Draw(rt, "unclean default")
	config.AutoLeaderRebalance = rapid.Bool().Draw(rt, "rebalance")
	config.LeaderImbalanceCheckInterval = 20 * time.Second
	config.DefaultPartitions = int32(rapid.IntRange(1, 3).Draw(rt, "default partitions"))
	config.DefaultReplicationFactor = int16(rapid.IntRange(1, 3).Draw(rt, "default factor"))
	// The log starts with brokers 1 to 3 and topic "seeded" with three
	// partitions whose ISRs hold every replica, which only AlterPartition
	// could build otherwise, so that clean elections have candidates.
	committed := metadata.NewImage()
	seed := seedOrders([]int32{1, 2, 3}, 1)
	seed = append(seed[:3], &metadata.TopicRecord{Name: "seeded", ID: ordersID})
	for partition := range int32(3) {
		replicas := []int32{1 + partition, 1 + (partition+1)%3, 1 + (partition+2)%3}
		seed = append(seed, &metadata.PartitionRecord{PartitionState: metadata.PartitionState{
			TopicID: ordersID, Partition: partition, Replicas: replicas, ISR: replicas, ELR: []int32{}, Leader: replicas[0],
		}})
	}
	for offset, record := range seed {
		if err := committed.ApplyRecord(int64(offset), 1, record); err != nil {
			rt.Fatal(err)
		}
	}
	if err := committed.Apply(int64(len(seed)), 1, nil); err != nil {
		rt.Fatal(err)
	}
	m := &model{committed: committed, raft: &fakeRaft{next: int64(len(seed)) + 1, epoch: 1}, config: config,
		epochs: map[int32]int64{1: 1, 2: 2, 3: 3}, uncleanRequests: map[int64]bool{},
		caughtUp: map[brokerIncarnation]bool{{1, 1}: true, {2, 2}: true, {3, 3}: true}}
	c, err := New(config, committed, m.raft)
	if err != nil {
		rt.Fatal(err)
	}
	m.c = c
	c.Activate(m.now)
	m.active = true
	return m
}

func (m *model) step(rt *rapid.T) {
	action := rapid.SampledFrom([]string{
		"register", "register", "heartbeat", "heartbeat all", "heartbeat all", "heartbeat all",
		"time", "time", "tick", "tick", "create", "create", "delete", "partitions", "elect",
		"commit", "commit", "commit all", "commit all", "refuse", "leadership", "shut down a leader",
	}).Draw(rt, "action")
	refusing := m.raft.err != nil
	switch action {
	case "register":
		m.register(rt)
	case "heartbeat":
		m.heartbeat(rt, m.brokerID(rt), true)
	case "heartbeat all":
		for id := int32(1); id <= 4; id++ {
			m.heartbeat(rt, id, false)
		}
	case "time":
		m.now += time.Duration(rapid.IntRange(1, 24).Draw(rt, "half seconds")) * 500 * time.Millisecond
	case "tick":
		m.tick(rt)
	case "create", "delete", "partitions", "elect":
		m.topicRequest(rt, action)
	case "commit":
		m.commit(rt, rapid.IntRange(0, len(m.raft.entries)).Draw(rt, "entries to commit"))
	case "commit all":
		m.commit(rt, len(m.raft.entries))
	case "refuse":
		m.raft.err = rapid.SampledFrom([]error{raft.ErrTooManyUncommitted, raft.ErrNotLeader}).Draw(rt, "propose error")
	case "leadership":
		m.leadership(rt)
	case "shut down a leader":
		m.shutDownALeader(rt)
	}
	if refusing {
		m.raft.err = nil // a refusal lasts one step
	}
}

func (m *model) brokerID(rt *rapid.T) int32 {
	return int32(rapid.IntRange(1, 4).Draw(rt, "broker"))
}

// handle sends a request and tracks its answers: at most one, and one with
// a claim only once everything proposed up to its decision is committed.
func (m *model) handle(rt *rapid.T, request kmsg.Request) *trackedCall {
	return m.handleThen(rt, request, func(kmsg.Response) {})
}

// handleThen is handle with a function that sees the answer.
func (m *model) handleThen(rt *rapid.T, request kmsg.Request, then func(kmsg.Response)) *trackedCall {
	call := &trackedCall{name: fmt.Sprintf("%T #%d", request, len(m.calls)), mark: -1}
	m.calls = append(m.calls, call)
	m.inHandle = true
	m.c.Handle(m.now, request, func(response kmsg.Response) {
		call.answers++
		if call.answers > 1 {
			rt.Fatalf("%s answered %d times", call.name, call.answers)
		}
		mark := call.mark
		if m.inHandle {
			mark = m.raft.next - 1
		}
		if claims(response) && m.committed.AppliedOffset() < mark {
			rt.Fatalf("%s answered with applied offset %d before offset %d committed", call.name, m.committed.AppliedOffset(), mark)
		}
		then(response)
	})
	m.inHandle = false
	call.mark = m.raft.next - 1
	return call
}

// claims reports whether a response states something about the metadata:
// anything but NOT_CONTROLLER and REQUEST_TIMED_OUT, which claim nothing.
func claims(response kmsg.Response) bool {
	var codes []int16
	switch response := response.(type) {
	case *kmsg.BrokerRegistrationResponse:
		codes = append(codes, response.ErrorCode)
	case *kmsg.BrokerHeartbeatResponse:
		codes = append(codes, response.ErrorCode)
	case *kmsg.CreateTopicsResponse:
		for _, topic := range response.Topics {
			codes = append(codes, topic.ErrorCode)
		}
	case *kmsg.DeleteTopicsResponse:
		for _, topic := range response.Topics {
			codes = append(codes, topic.ErrorCode)
		}
	case *kmsg.CreatePartitionsResponse:
		for _, topic := range response.Topics {
			codes = append(codes, topic.ErrorCode)
		}
	case *kmsg.ElectLeadersResponse:
		codes = append(codes, response.ErrorCode)
	}
	return !slices.Contains(codes, kerr.NotController.Code) && !slices.Contains(codes, kerr.RequestTimedOut.Code)
}

func (m *model) register(rt *rapid.T) {
	id := m.brokerID(rt)
	request := kmsg.NewPtrBrokerRegistrationRequest()
	request.BrokerID, request.ClusterID = id, "cluster"
	request.IncarnationID = [16]byte{byte(rapid.IntRange(0, 2).Draw(rt, "incarnation"))}
	m.handleThen(rt, request, func(response kmsg.Response) {
		if answered := response.(*kmsg.BrokerRegistrationResponse); answered.ErrorCode == 0 {
			m.epochs[id] = answered.BrokerEpoch
		}
	})
}

// heartbeat sends a heartbeat with the broker's known epoch (or, when
// wild, a stale one, an old metadata offset, or a wish to be fenced or to
// shut down).
func (m *model) heartbeat(rt *rapid.T, id int32, wild bool) {
	epoch, known := m.epochs[id]
	if !known {
		return
	}
	request := heartbeat(id, epoch, m.committed.AppliedOffset())
	if wild {
		request.BrokerEpoch -= int64(rapid.IntRange(0, 1).Draw(rt, "stale"))
		request.CurrentMetadataOffset -= int64(rapid.IntRange(0, 3).Draw(rt, "behind"))
		request.WantFence = rapid.IntRange(0, 5).Draw(rt, "want fence") == 0
		request.WantShutdown = rapid.IntRange(0, 5).Draw(rt, "want shutdown") == 0
	}
	if request.CurrentMetadataOffset >= request.BrokerEpoch {
		m.caughtUp[brokerIncarnation{id, request.BrokerEpoch}] = true
	}
	m.handle(rt, request)
}

// shutDownALeader sends WantShutdown for the leader of a random partition
// of the working image, so controlled shutdowns happen often.
func (m *model) shutDownALeader(rt *rapid.T) {
	if !m.active {
		return
	}
	var leaders []int32
	for _, state := range partitionStates(m.c.working) { // order-independent: sorted below
		if state.Leader != metadata.NoLeader {
			leaders = append(leaders, state.Leader)
		}
	}
	slices.Sort(leaders)
	if len(leaders) == 0 {
		return
	}
	id := rapid.SampledFrom(leaders).Draw(rt, "leader to shut down")
	request := heartbeat(id, m.epochs[id], m.committed.AppliedOffset())
	request.WantShutdown = true
	m.handle(rt, request)
}

func (m *model) tick(rt *rapid.T) {
	m.c.Tick(m.now)
	if !m.active || m.raft.err != nil {
		return
	}
	for _, broker := range m.c.working.Brokers() {
		if !broker.Fenced && m.now-m.c.sessions[broker.ID] >= m.config.SessionTimeout {
			rt.Fatalf("broker %d is unfenced with a session from %v at %v", broker.ID, m.c.sessions[broker.ID], m.now)
		}
	}
}

func (m *model) topicRequest(rt *rapid.T, action string) {
	name := rapid.SampledFrom([]string{"a", "b", "c"}).Draw(rt, "topic")
	switch action {
	case "create":
		var configs []string
		if rapid.Bool().Draw(rt, "with unclean config") {
			configs = []string{uncleanConfigName, rapid.SampledFrom([]string{"true", "false"}).Draw(rt, "unclean config")}
		}
		request := createTopic(name, int32(rapid.IntRange(-1, 3).Draw(rt, "partitions")), int16(rapid.IntRange(-1, 3).Draw(rt, "factor")), configs...)
		request.ValidateOnly = rapid.IntRange(0, 4).Draw(rt, "validate only") == 0
		m.handle(rt, request)
	case "delete":
		m.handle(rt, deleteByName(int16(rapid.IntRange(1, 6).Draw(rt, "delete version")), name))
	case "partitions":
		m.handle(rt, createPartitions(name, int32(rapid.IntRange(1, 4).Draw(rt, "count"))))
	case "elect":
		m.elect(rt, name)
	}
}

func (m *model) elect(rt *rapid.T, name string) {
	request := kmsg.NewPtrElectLeadersRequest()
	request.Version = 2
	request.ElectionType = int8(rapid.IntRange(0, 1).Draw(rt, "election type"))
	if rapid.Bool().Draw(rt, "listed") {
		topic := kmsg.NewElectLeadersRequestTopic()
		topic.Topic, topic.Partitions = name, []int32{0, 1}
		request.Topics = append(request.Topics, topic)
	}
	before := m.raft.next
	m.handle(rt, request)
	if request.ElectionType == electionUnclean && m.raft.next > before {
		m.uncleanRequests[before] = true
	}
}

// commit applies the first n proposed entries to the committed image, as
// the host does, checking every partition change they make.
func (m *model) commit(rt *rapid.T, n int) {
	for _, entry := range m.raft.entries[:n] {
		m.applyCommitted(rt, entry)
	}
	m.raft.entries = m.raft.entries[n:]
	m.c.Applied(m.now)
}

func (m *model) applyCommitted(rt *rapid.T, entry fakeEntry) {
	before := partitionStates(m.committed)
	names := map[metadata.TopicID]string{}
	for _, name := range m.committed.TopicNames() {
		topic, _ := m.committed.TopicByName(name)
		names[topic.ID] = name
	}
	allowed := m.uncleanAllowed()
	if err := m.committed.Apply(entry.offset, entry.epoch, entry.data); err != nil {
		rt.Fatalf("the committed image rejected entry %d: %v", entry.offset, err)
	}
	m.log = append(m.log, entry)
	for key, state := range partitionStates(m.committed) { // order-independent: any violation fails
		old, existed := before[key]
		if !existed {
			continue
		}
		unclean := state.Leader != metadata.NoLeader && state.Leader != old.Leader &&
			!slices.Contains(old.ISR, state.Leader) && !slices.Contains(old.ELR, state.Leader)
		if unclean && !allowed(names[key.id]) && !m.uncleanRequests[entry.offset] {
			rt.Fatalf("entry %d elected %d uncleanly for %s-%d with unclean election disabled", entry.offset, state.Leader, names[key.id], key.partition)
		}
	}
}

// uncleanAllowed evaluates, on the committed image, whether unclean
// election is enabled per topic, the way the configuration says (not the
// way the controller computes it).
func (m *model) uncleanAllowed() func(string) bool {
	dynamic := configValue(m.committed.Configs(metadata.ConfigResource{Type: kmsg.ConfigResourceTypeBroker}))
	topics := map[string]string{}
	for _, name := range m.committed.TopicNames() {
		topics[name] = configValue(m.committed.Configs(metadata.ConfigResource{Type: kmsg.ConfigResourceTypeTopic, Name: name}))
	}
	return func(name string) bool {
		for _, value := range []string{topics[name], dynamic} {
			if value != "" {
				return value == "true"
			}
		}
		return m.config.UncleanLeaderElection
	}
}

func configValue(entries []metadata.ConfigEntry) string {
	for _, entry := range entries {
		if entry.Name == uncleanConfigName {
			return entry.Value
		}
	}
	return ""
}

type partitionKey struct {
	id        metadata.TopicID
	partition int32
}

func partitionStates(image *metadata.Image) map[partitionKey]metadata.PartitionState {
	states := map[partitionKey]metadata.PartitionState{}
	for _, name := range image.TopicNames() {
		topic, _ := image.TopicByName(name)
		for _, partition := range topic.Partitions {
			states[partitionKey{topic.ID, partition.Partition}] = partition
		}
	}
	return states
}

// leadership loses or regains leadership. On loss the next leader commits
// a random prefix of what this one proposed and drops the rest, then
// appends its leader-change entry; this node may win that epoch at once
// or later.
func (m *model) leadership(rt *rapid.T) {
	if !m.active {
		m.c.Activate(m.now)
		m.active = true
		return
	}
	m.c.Deactivate()
	m.active = false
	kept := rapid.IntRange(0, len(m.raft.entries)).Draw(rt, "entries the next leader keeps")
	for _, entry := range m.raft.entries[:kept] {
		m.applyCommitted(rt, entry)
	}
	m.raft.entries = nil
	next := m.committed.AppliedOffset() + 1
	m.raft.epoch++
	if err := m.committed.Apply(next, m.raft.epoch, nil); err != nil {
		rt.Fatal(err)
	}
	m.raft.next = next + 1
	m.c.Applied(m.now)
	if rapid.Bool().Draw(rt, "wins at once") {
		m.c.Activate(m.now)
		m.active = true
	}
}

func (m *model) check(rt *rapid.T) {
	if m.c.Active() != m.active {
		rt.Fatalf("controller active %t, want %t", m.c.Active(), m.active)
	}
	images := []*metadata.Image{m.committed}
	if m.active {
		images = append(images, m.c.working)
	}
	for _, image := range images {
		if err := image.Check(); err != nil {
			rt.Fatal(err)
		}
		requireLeadersLive(rt, image)
		for _, broker := range image.Brokers() {
			if !broker.Fenced && !m.caughtUp[brokerIncarnation{broker.ID, broker.Epoch}] {
				rt.Fatalf("broker %d is unfenced at epoch %d without a heartbeat that caught up", broker.ID, broker.Epoch)
			}
		}
	}
}

// requireLeadersLive checks through exported accessors only that every
// leader is a registered broker, unfenced, not shutting down, in the ISR.
func requireLeadersLive(rt *rapid.T, image *metadata.Image) {
	for key, state := range partitionStates(image) { // order-independent: any violation fails
		if state.Leader == metadata.NoLeader {
			continue
		}
		broker, ok := image.Broker(state.Leader)
		if !ok || broker.Fenced || broker.InControlledShutdown || !slices.Contains(state.ISR, state.Leader) {
			rt.Fatalf("partition %v led by %+v (registered %t), ISR %v", key, broker, ok, state.ISR)
		}
	}
}

// finish commits everything, deactivates, and requires every request
// answered exactly once.
func (m *model) finish(rt *rapid.T) {
	m.raft.err = nil
	m.commit(rt, len(m.raft.entries))
	if proposals, requests := m.c.Pending(); m.active && (proposals != 0 || requests != 0) {
		rt.Fatalf("%d proposals and %d requests pending after committing everything", proposals, requests)
	}
	m.c.Deactivate()
	for _, call := range m.calls {
		if call.answers != 1 {
			rt.Fatalf("%s answered %d times", call.name, call.answers)
		}
	}
}
