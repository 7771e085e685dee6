package controller

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/kafkasim/kafkasim/broker/metadata"
	"github.com/kafkasim/kafkasim/broker/raft"
	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/core/planted"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Config is the controller's configuration, with the Kafka settings each
// field mirrors.
type Config struct {
	// NodeID is this node's node.id, for messages.
	NodeID int32
	// ClusterID is the cluster's ID (meta.properties' cluster.id); a
	// BrokerRegistration naming another is INCONSISTENT_CLUSTER_ID.
	ClusterID string
	// SessionTimeout is broker.session.timeout.ms (Kafka's default 9 s): a
	// broker that sends no heartbeat for that long is fenced.
	SessionTimeout time.Duration
	// DefaultPartitions is num.partitions, used when CreateTopics asks for
	// -1 partitions.
	DefaultPartitions int32
	// DefaultReplicationFactor is default.replication.factor, used when
	// CreateTopics asks for -1.
	DefaultReplicationFactor int16
	// UncleanLeaderElection is unclean.leader.election.enable as the
	// brokers' static default; a topic's ConfigRecord, then the cluster-wide
	// dynamic broker default, override it.
	UncleanLeaderElection bool
	// AutoLeaderRebalance is auto.leader.rebalance.enable: every
	// LeaderImbalanceCheckInterval (leader.imbalance.check.interval.seconds)
	// the controller hands partitions back to their preferred replicas.
	AutoLeaderRebalance          bool
	LeaderImbalanceCheckInterval time.Duration
	// Rand is the only source of randomness (topic IDs).
	Rand *core.Rand
	// TopicConfigs validates topic configurations (CreateTopics' and
	// IncrementalAlterConfigs'); the broker supplies it. Without it,
	// CreateTopics checks only unclean.leader.election.enable and
	// IncrementalAlterConfigs is refused.
	TopicConfigs TopicConfigs
}

// Proposer appends an entry to the metadata log: raft.Node.Propose. The
// controller relies on two properties of it, which raft.Node has: an entry
// it accepts gets the next offset of the leader's log, so that successive
// accepted proposals get consecutive offsets, the first one after Activate
// the offset after the epoch's leader-change entry; and while this node
// stays leader, every accepted entry is eventually committed in order.
type Proposer interface {
	Propose(data []byte) (offset int64, err error)
}

// Limits that keep one request from building an unbounded entry.
const (
	// partitionsPerTopicMax bounds the partitions CreateTopics and
	// CreatePartitions may give one topic (INVALID_PARTITIONS beyond).
	partitionsPerTopicMax = 10_000
	// recordsPerRequestMax bounds the records one request may propose;
	// topics that would pass it are refused with INVALID_REQUEST.
	recordsPerRequestMax = 100_000
	// rebalanceElectionsMax bounds the preferred-leader elections of one
	// periodic rebalance, as Kafka's controller bounds its batches.
	rebalanceElectionsMax = 1_000
)

// uncleanConfigName is the topic and broker configuration that enables
// unclean leader election.
const uncleanConfigName = "unclean.leader.election.enable"

// Controller is the active controller's state machine. The host owns the
// committed image and the Raft node; the controller reads the former and
// proposes through the latter. It is not safe for concurrent use: the host
// calls every method from its one event loop.
type Controller struct {
	config    Config
	committed *metadata.Image
	raft      Proposer

	active bool
	// epoch is the Raft epoch this controller is active in: the epoch of
	// the leader-change entry that activated it and of all its proposals.
	epoch int32
	// working is committed plus every proposal of this epoch not yet
	// committed, applied in order; decisions are taken against it.
	working *metadata.Image
	// proposals are this epoch's proposals not yet committed, in offset
	// order; working is rebuilt from committed and them.
	proposals []proposal
	// waiting are the requests decided but not yet answered, in the order
	// of the offsets they wait for.
	waiting []waiter
	// sessions holds each broker's last heartbeat (or registration).
	sessions map[int32]time.Duration
	// nextRebalance is when the next preferred-leader rebalance is due.
	nextRebalance time.Duration
}

type proposal struct {
	offset int64
	data   []byte
}

// waiter is a request whose answer is ready and may leave once the entry
// at offset is committed: then the working image it was decided against is.
type waiter struct {
	offset   int64
	request  kmsg.Request
	response kmsg.Response
	done     func(kmsg.Response)
}

// New returns an inactive controller over the host's committed image.
func New(config Config, committed *metadata.Image, proposer Proposer) (*Controller, error) {
	switch {
	case committed == nil || proposer == nil || config.Rand == nil:
		return nil, errors.New("controller: the committed image, the proposer and Rand are required")
	case config.SessionTimeout <= 0:
		return nil, fmt.Errorf("controller: broker.session.timeout.ms must be positive, have %v", config.SessionTimeout)
	case config.DefaultPartitions < 1 || config.DefaultPartitions > partitionsPerTopicMax:
		return nil, fmt.Errorf("controller: num.partitions must be 1 to %d, have %d", partitionsPerTopicMax, config.DefaultPartitions)
	case config.DefaultReplicationFactor < 1:
		return nil, fmt.Errorf("controller: default.replication.factor must be positive, have %d", config.DefaultReplicationFactor)
	case config.AutoLeaderRebalance && config.LeaderImbalanceCheckInterval <= 0:
		return nil, fmt.Errorf("controller: leader.imbalance.check.interval.seconds must be positive, have %v", config.LeaderImbalanceCheckInterval)
	}
	return &Controller{config: config, committed: committed, raft: proposer}, nil
}

// Active reports whether this node is the active controller.
func (c *Controller) Active() bool { return c.active }

// Activate makes this controller active. The host calls it when its Raft
// node leads and the committed image has applied the epoch's leader-change
// entry (and nothing after it: only this controller proposes in its epoch).
// Every registered broker gets a fresh session, so that no broker is fenced
// for heartbeats it sent to an earlier controller.
func (c *Controller) Activate(now time.Duration) {
	c.Deactivate()
	c.active = true
	c.epoch = c.committed.AppliedEpoch()
	c.working = c.committed.Clone()
	c.sessions = map[int32]time.Duration{}
	for _, broker := range c.committed.Brokers() {
		c.sessions[broker.ID] = now
	}
	c.nextRebalance = now + c.config.LeaderImbalanceCheckInterval
}

// Deactivate drops the working state; the host calls it when its Raft node
// stops leading. Every request not yet answered gets NOT_CONTROLLER: its
// entry may or may not commit under the next leader, and the client retries
// against the new controller, which decides again from what committed.
func (c *Controller) Deactivate() {
	waiting := c.waiting
	c.active, c.working, c.proposals, c.waiting, c.sessions = false, nil, nil, nil, nil
	for _, w := range waiting {
		w.done(ErrorResponse(w.request, kerr.NotController))
	}
}

// Applied answers the requests whose entries the committed image has now
// applied. Once every proposal is committed, the working image must equal
// the committed one: the controller decided against exactly what committed.
func (c *Controller) Applied(now time.Duration) {
	if !c.active {
		return
	}
	if c.committed.AppliedEpoch() != c.epoch {
		// Entries of a later epoch are another leader's: the host missed a
		// Deactivate. Nothing proposed here can be trusted to commit.
		c.Deactivate()
		return
	}
	applied := c.committed.AppliedOffset()
	committedSome := false
	for len(c.proposals) > 0 && c.proposals[0].offset <= applied {
		c.proposals = c.proposals[1:]
		committedSome = true
	}
	// The check runs before the answers go out: an answer's callback may
	// send the next request at once (a broker heartbeating right after
	// its registration), and its proposal is not committed yet.
	if committedSome && len(c.proposals) == 0 {
		assert(bytes.Equal(c.working.Snapshot(), c.committed.Snapshot()),
			"the working image differs from the committed image with nothing pending")
	}
	for len(c.waiting) > 0 && c.waiting[0].offset <= applied && c.active {
		w := c.waiting[0]
		c.waiting = c.waiting[1:]
		w.done(w.response)
	}
}

// Tick runs the controller's timers: it fences every broker whose session
// expired, and rebalances leaders when that is due and enabled.
func (c *Controller) Tick(now time.Duration) {
	if !c.active {
		return
	}
	c.expireSessions(now)
	if c.config.AutoLeaderRebalance && now >= c.nextRebalance {
		c.nextRebalance = now + c.config.LeaderImbalanceCheckInterval
		c.rebalance()
	}
}

// Serves reports whether Handle answers requests with the API key.
func Serves(key int16) bool {
	switch key {
	case kmsg.BrokerRegistration.Int16(), kmsg.BrokerHeartbeat.Int16(), kmsg.CreateTopics.Int16(),
		kmsg.DeleteTopics.Int16(), kmsg.CreatePartitions.Int16(), kmsg.ElectLeaders.Int16(),
		kmsg.IncrementalAlterConfigs.Int16(), kmsg.AllocateProducerIDs.Int16(), kmsg.AlterPartition.Int16():
		return true
	}
	return false
}

// Handle decides a request and calls done exactly once with its response:
// at once when the controller is inactive, when the request is refused
// before any record, or when what it was decided against is already
// committed; otherwise once the entry it waits for is committed (Applied)
// or the controller deactivates (NOT_CONTROLLER). A request whose entry
// cannot be proposed gets NOT_CONTROLLER (this node no longer leads) or
// REQUEST_TIMED_OUT (too many entries await commit; retriable). The host
// passes only requests for which Serves is true.
func (c *Controller) Handle(now time.Duration, request kmsg.Request, done func(kmsg.Response)) {
	assert(Serves(request.Key()), fmt.Sprintf("the host passed request key %d, which the controller does not serve", request.Key()))
	if !c.active {
		done(ErrorResponse(request, kerr.NotController))
		return
	}
	response, records := c.decide(now, request)
	if len(records) > 0 {
		if _, err := c.propose(records); err != nil {
			done(ErrorResponse(request, proposeError(err)))
			return
		}
	}
	c.answerWhenCommitted(request, response, done)
}

func (c *Controller) decide(now time.Duration, request kmsg.Request) (kmsg.Response, []metadata.Record) {
	switch request := request.(type) {
	case *kmsg.BrokerRegistrationRequest:
		return c.register(now, request)
	case *kmsg.BrokerHeartbeatRequest:
		return c.heartbeat(now, request)
	case *kmsg.CreateTopicsRequest:
		return c.createTopics(request)
	case *kmsg.DeleteTopicsRequest:
		return c.deleteTopics(request)
	case *kmsg.CreatePartitionsRequest:
		return c.createPartitions(request)
	case *kmsg.ElectLeadersRequest:
		return c.electLeaders(request)
	case *kmsg.IncrementalAlterConfigsRequest:
		return c.alterConfigs(request)
	case *kmsg.AllocateProducerIDsRequest:
		return c.allocateProducerIDs(request)
	case *kmsg.AlterPartitionRequest:
		return c.alterPartition(request)
	}
	panic(fmt.Sprintf("controller: no decision for %T", request))
}

// answerWhenCommitted answers now if the working image is committed, and
// otherwise once it is. A request that proposed nothing waits too: its
// answer may state what an earlier proposal decided (a broker's fencing, a
// topic's existence), and no answer may state what could still be lost.
func (c *Controller) answerWhenCommitted(request kmsg.Request, response kmsg.Response, done func(kmsg.Response)) {
	offset := c.working.AppliedOffset()
	if offset <= c.committed.AppliedOffset() {
		done(response)
		return
	}
	c.waiting = append(c.waiting, waiter{offset: offset, request: request, response: response, done: done})
}

// propose commits records as one batch entry. The working image applies it
// first, at the offset Raft will give it, which validates it against all
// that precedes it; if Raft refuses it, the working image is rebuilt
// without it.
func (c *Controller) propose(records []metadata.Record) (int64, error) {
	assert(len(records) > 0 && len(records) <= metadata.BatchRecordsMax, "a proposal of no records or too many")
	offset := c.working.AppliedOffset() + 1
	data := metadata.Encode(&metadata.BatchRecord{Records: records})
	if err := c.working.Apply(offset, c.epoch, data); err != nil {
		panic(fmt.Sprintf("controller: the working image rejected the controller's own decision: %v", err))
	}
	got, err := c.raft.Propose(data)
	if err != nil {
		c.rebuildWorking()
		return -1, err
	}
	assert(got == offset, fmt.Sprintf("raft gave offset %d to a proposal expected at %d", got, offset))
	c.proposals = append(c.proposals, proposal{offset: offset, data: data})
	return offset, nil
}

func (c *Controller) rebuildWorking() {
	c.working = c.committed.Clone()
	for _, p := range c.proposals {
		err := c.working.Apply(p.offset, c.epoch, p.data)
		assert(err == nil, fmt.Sprintf("a pending proposal no longer applies: %v", err))
	}
}

// proposeError maps a refused proposal to the error its request gets.
func proposeError(err error) *kerr.Error {
	if errors.Is(err, raft.ErrNotLeader) {
		return kerr.NotController
	}
	return kerr.RequestTimedOut
}

// expireSessions fences, in broker ID order, every unfenced broker whose
// last heartbeat is SessionTimeout old, each in its own entry. It stops at
// the first refused proposal; the next Tick tries again.
func (c *Controller) expireSessions(now time.Duration) {
	for _, broker := range c.working.Brokers() {
		last, ok := c.sessions[broker.ID]
		if !ok {
			c.sessions[broker.ID] = now
			continue
		}
		if broker.Fenced || now-last < c.config.SessionTimeout {
			continue
		}
		records, err := metadata.FenceBrokerRecords(c.working, broker.ID, c.uncleanFor)
		assert(err == nil, fmt.Sprintf("fencing an unfenced broker: %v", err))
		if _, err := c.propose(records); err != nil {
			return
		}
	}
}

// uncleanFor says whether unclean leader election is enabled for a topic:
// the topic's configuration, else the cluster-wide dynamic broker default,
// else the static default. A value other than true or false is ignored
// (CreateTopics refuses one, so only a hand-made record could hold it).
func (c *Controller) uncleanFor(topicName string) bool {
	if planted.Is("unclean-without-config") {
		return true
	}
	for _, resource := range []metadata.ConfigResource{
		{Type: kmsg.ConfigResourceTypeTopic, Name: topicName},
		{Type: kmsg.ConfigResourceTypeBroker, Name: ""},
	} {
		for _, entry := range c.working.Configs(resource) {
			if entry.Name == uncleanConfigName && (entry.Value == "true" || entry.Value == "false") {
				return entry.Value == "true"
			}
		}
	}
	return c.config.UncleanLeaderElection
}

// BrokerStatus is one registered broker as the committed image knows it,
// with its session at this controller when it is active.
type BrokerStatus struct {
	metadata.Broker
	// LastHeartbeat is when the active controller last heard from it (or
	// activated); HasSession is false when this controller is inactive.
	LastHeartbeat time.Duration
	HasSession    bool
}

// Brokers returns every registered broker of the committed image, by ID,
// for DescribeCluster and kctl.
func (c *Controller) Brokers() []BrokerStatus {
	brokers := c.committed.Brokers()
	statuses := make([]BrokerStatus, 0, len(brokers))
	for _, broker := range brokers {
		last, ok := c.sessions[broker.ID]
		statuses = append(statuses, BrokerStatus{Broker: broker, LastHeartbeat: last, HasSession: ok && c.active})
	}
	return statuses
}

// Pending returns how many proposals await commit and how many requests
// await their answer, for tests and metrics.
func (c *Controller) Pending() (proposals, requests int) {
	return len(c.proposals), len(c.waiting)
}

// assert panics when an invariant does not hold: a bug, never bad input.
// The simulator turns the panic into a failing seed.
func assert(ok bool, message string) {
	if !ok {
		panic("controller: invariant violated: " + message)
	}
}
