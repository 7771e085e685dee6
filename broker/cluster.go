package broker

import (
	"fmt"
	"log/slog"
	"path"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/broker/controller"
	"github.com/kafkasim/kafkasim/broker/metadata"
	"github.com/kafkasim/kafkasim/broker/quorum"
	"github.com/kafkasim/kafkasim/broker/raft"
	"github.com/kafkasim/kafkasim/core"
)

// metadataLogDirName is the metadata log's directory under log.dirs, as
// KRaft names it.
const metadataLogDirName = raft.MetadataTopic + "-0"

// controllerTickInterval is how often the active controller looks at broker
// sessions and its rebalance timer.
const controllerTickInterval = 100 * time.Millisecond

// controllerRetryBackoff is how long a request for the controller waits
// before it is sent again after NOT_CONTROLLER or a broken connection.
const controllerRetryBackoff = 100 * time.Millisecond

// cluster is the node's part in a cluster (cluster mode, cfg.QuorumVoters
// set): the metadata quorum's host, the image every broker builds by
// applying the committed metadata log, the controller when this node is a
// voter, and the broker's lifecycle towards the active controller
// (registration, heartbeats). The image is the truth about brokers, topics
// and leaders; the catalog follows it (cluster_catalog.go).
type cluster struct {
	node       *Node
	host       *quorum.Host
	image      *metadata.Image
	controller *controller.Controller
	// monotonic is the controller's clock: the time its ticker has
	// counted since this node started. It advances only with timers, never
	// with the wall clock, which an NTP step (a simulated clock fault) can
	// move back by hours: sessions measured against it once never
	// expired, and every restarted broker was refused as a duplicate
	// forever (cluster seeds 61, 170 and 196).
	monotonic        time.Duration
	controllerTicker core.Timer
	// channels are the lines to each voter's controller listener, by id.
	channels  map[int32]*quorum.Channel
	lifecycle lifecycle
	// offsetsTopicAsked is set once this broker asked the controller to
	// create __consumer_offsets, so that it asks once per life.
	offsetsTopicAsked bool
	// producerIDs hands out producer ids from the controller's blocks.
	producerIDs producerIDBlocks
	// observeCommitted, if set, sees every batch of committed entries
	// after the image applied it (a history recorder, see ObserveQuorum).
	observeCommitted func(committed []raft.Entry)
	// fetchers copy partitions from their leaders, by leader id
	// (replica_fetcher.go).
	fetchers map[int32]*replicaFetcher
	// ticks counts the ticker's turns, for the leaders' ISR checks.
	ticks int64
}

// newCluster opens the metadata quorum's log and builds the controller.
func newCluster(n *Node) (*cluster, error) {
	cfg := n.cfg
	qc := quorum.DefaultConfig()
	qc.NodeID, qc.Voters, qc.ClusterID = cfg.NodeID, cfg.QuorumVoters, cfg.ClusterID
	qc.Dir = path.Join(cfg.LogDir, metadataLogDirName)
	qc.ElectionTimeout = time.Duration(cfg.QuorumElectionTimeoutMs) * time.Millisecond
	qc.FetchTimeout = time.Duration(cfg.QuorumFetchTimeoutMs) * time.Millisecond
	qc.RequestTimeout = time.Duration(cfg.QuorumRequestTimeoutMs) * time.Millisecond
	qc.SnapshotIntervalBytes = cfg.MetadataSnapshotBytes
	env := n.env
	env.Log = n.log
	c := &cluster{
		node:     n,
		image:    metadata.NewImage(),
		channels: make(map[int32]*quorum.Channel),
		fetchers: make(map[int32]*replicaFetcher),
	}
	// The host loads the newest metadata snapshot into the image while it
	// opens (cluster_snapshot.go).
	machine := &metadataMachine{cluster: c}
	host, err := quorum.New(env, qc, machine)
	if err != nil {
		return nil, err
	}
	c.host = host
	for _, v := range cfg.QuorumVoters {
		c.channels[v.ID] = quorum.NewChannel(n.env, n.log, v.Address, fmt.Sprintf("broker-%d", cfg.NodeID), qc.RequestTimeout)
	}
	if cfg.IsController() {
		c.controller, err = controller.New(controller.Config{
			NodeID:                       cfg.NodeID,
			ClusterID:                    cfg.ClusterID,
			SessionTimeout:               time.Duration(cfg.BrokerSessionTimeoutMs) * time.Millisecond,
			DefaultPartitions:            cfg.NumPartitions,
			DefaultReplicationFactor:     cfg.DefaultReplicationFactor,
			UncleanLeaderElection:        cfg.UncleanLeaderElection,
			AutoLeaderRebalance:          cfg.AutoLeaderRebalance,
			LeaderImbalanceCheckInterval: time.Duration(cfg.LeaderImbalanceCheckIntervalMs) * time.Millisecond,
			Rand:                         n.env.Rand.Fork(),
			TopicConfigs:                 n.alteredTopicConfigs,
		}, c.image, host)
		if err != nil {
			host.Stop()
			return nil, err
		}
	}
	host.OnUpdate = func(committed []raft.Entry) { c.onUpdate(committed, machine.takeRestored()) }
	host.OnHalt = n.halt
	c.lifecycle.init(c)
	c.producerIDs.cluster = c
	return c, nil
}

// start begins the quorum's ticks, the controller's and the broker's
// registration.
func (c *cluster) start() {
	c.host.Start()
	c.scheduleTick()
	c.lifecycle.start()
}

// stop stops every timer and connection of the cluster side.
func (c *cluster) stop() {
	c.lifecycle.stop()
	if c.controllerTicker != nil {
		c.controllerTicker.Stop()
	}
	c.stopFetchers()
	if c.controller != nil && c.controller.Active() {
		c.controller.Deactivate()
	}
	for _, v := range c.node.cfg.QuorumVoters {
		c.channels[v.ID].Close()
	}
	c.host.Stop()
}

// elapsed is the controller's clock (monotonic), to a tick's precision.
func (c *cluster) elapsed() time.Duration { return c.monotonic }

// scheduleTick arms the cluster's ticker: it advances the monotonic clock,
// ticks the controller on a voter, and runs the leaders' ISR check every
// half replica.lag.time.max.ms, as Kafka's ReplicaManager does.
func (c *cluster) scheduleTick() {
	c.controllerTicker = c.node.env.Clock.AfterFunc(controllerTickInterval, func() {
		if c.node.stopped {
			return
		}
		c.monotonic += controllerTickInterval
		c.ticks++
		if c.controller != nil {
			c.controller.Tick(c.elapsed())
		}
		checkEvery := max(int64(time.Duration(c.node.cfg.ReplicaLagTimeMaxMs)*time.Millisecond/2/controllerTickInterval), 1)
		if c.ticks%checkEvery == 0 {
			c.checkReplicas()
		}
		c.scheduleTick()
	})
}

// onUpdate applies what the quorum committed to the image, lets the
// catalog follow it, answers the controller's waiting requests and
// (de)activates the controller with the quorum's leadership. restored says
// that a metadata snapshot replaced the image since the last call.
func (c *cluster) onUpdate(committed []raft.Entry, restored bool) {
	if c.node.stopped {
		return
	}
	for _, e := range committed {
		if err := c.image.Apply(e.Offset, e.Epoch, e.Data); err != nil {
			// Every replica rejects the same entry the same way; the
			// image stays as it was and only the applied offset moves.
			c.node.log.Warn("metadata record rejected", slog.Int64("offset", e.Offset), slog.Any("err", err))
		}
	}
	if len(committed) > 0 && c.observeCommitted != nil {
		c.observeCommitted(committed)
	}
	changed := restored || len(committed) > 0
	if changed {
		c.reconcile()
	}
	if c.controller != nil {
		c.updateController()
	}
	if changed {
		c.lifecycle.metadataApplied()
	}
}

// updateController activates the controller once this node leads the
// quorum and the image has applied its epoch's leader-change entry, and
// deactivates it when the node stops leading.
func (c *cluster) updateController() {
	leads := c.host.Role() == raft.RoleLeader
	switch {
	case leads && !c.controller.Active() && c.image.AppliedEpoch() == c.host.Epoch():
		c.node.log.Info("active controller", slog.Int("epoch", int(c.host.Epoch())))
		c.controller.Activate(c.elapsed())
	case !leads && c.controller.Active():
		c.node.log.Info("no longer the active controller", slog.Int("epoch", int(c.host.Epoch())))
		c.controller.Deactivate()
	case c.controller.Active():
		c.controller.Applied(c.elapsed())
	}
}

// activeController is the id of the node that leads the quorum as far as
// this node knows, or -1.
func (c *cluster) activeController() int32 { return c.host.Leader() }

// sendToController sends req to the active controller and calls done with
// its answer: at once through this node's own controller when it is the
// one, else over the channel to the leader's controller listener. A
// request that finds no controller, a broken line or NOT_CONTROLLER is
// sent again after a backoff until budget has passed, measured by a timer
// (the node's clock may be stepped), then done gets REQUEST_TIMED_OUT.
// done is called exactly once, within budget even when an attempt is
// never answered, as Kafka's clients end a request at request.timeout.ms:
// an AllocateProducerIds that went unanswered while later requests on the
// same line were answered once left the broker waiting for its producer
// id block for good, and every InitProducerID answered
// COORDINATOR_LOAD_IN_PROGRESS (sim seed 1901378; the simulator's
// blackhole then dropped single frames of a live connection, which TCP
// never does, but a controller that loses a request must not stall the
// broker either). A late answer is dropped.
func (c *cluster) sendToController(req kmsg.Request, budget time.Duration, done func(kmsg.Response, error)) {
	expired, finished := false, false
	var timer core.Timer
	finish := func(resp kmsg.Response, err error) {
		if finished {
			return
		}
		finished = true
		timer.Stop()
		done(resp, err)
	}
	timer = c.node.env.Clock.AfterFunc(budget, func() {
		expired = true
		finish(nil, kerr.RequestTimedOut)
	})
	c.attemptController(req, &expired, finish)
}

// attemptController is one attempt of sendToController.
func (c *cluster) attemptController(req kmsg.Request, expired *bool, done func(kmsg.Response, error)) {
	if c.node.stopped {
		done(nil, kerr.NotController)
		return
	}
	retry := func() {
		if *expired {
			done(nil, kerr.RequestTimedOut)
			return
		}
		c.node.env.Clock.AfterFunc(controllerRetryBackoff, func() { c.attemptController(req, expired, done) })
	}
	answer := func(resp kmsg.Response, err error) {
		if c.node.stopped {
			return
		}
		if err != nil || notController(resp) {
			retry()
			return
		}
		done(resp, nil)
	}
	leader := c.activeController()
	switch {
	case leader < 0:
		retry()
	case leader == c.node.cfg.NodeID && c.controller != nil:
		if !c.controller.Active() {
			retry()
			return
		}
		c.controller.Handle(c.elapsed(), req, func(resp kmsg.Response) { answer(resp, nil) })
	default:
		ch, ok := c.channels[leader]
		if !ok {
			retry()
			return
		}
		ch.Send(req, answer)
	}
}

// notController reports whether a controller's answer says it is not the
// active controller, so that the request should go to the next one.
func notController(resp kmsg.Response) bool {
	code := kerr.NotController.Code
	switch r := resp.(type) {
	case *kmsg.BrokerRegistrationResponse:
		return r.ErrorCode == code
	case *kmsg.BrokerHeartbeatResponse:
		return r.ErrorCode == code
	case *kmsg.AlterPartitionResponse:
		return r.ErrorCode == code
	case *kmsg.AllocateProducerIDsResponse:
		return r.ErrorCode == code
	case *kmsg.ElectLeadersResponse:
		return r.ErrorCode == code
	case *kmsg.DescribeQuorumResponse:
		return r.ErrorCode == code || r.ErrorCode == kerr.NotLeaderForPartition.Code ||
			(len(r.Topics) > 0 && len(r.Topics[0].Partitions) > 0 && r.Topics[0].Partitions[0].ErrorCode == kerr.NotLeaderForPartition.Code)
	case *kmsg.CreateTopicsResponse:
		return slices.ContainsFunc(r.Topics, func(t kmsg.CreateTopicsResponseTopic) bool { return t.ErrorCode == code })
	case *kmsg.DeleteTopicsResponse:
		return slices.ContainsFunc(r.Topics, func(t kmsg.DeleteTopicsResponseTopic) bool { return t.ErrorCode == code })
	case *kmsg.CreatePartitionsResponse:
		return slices.ContainsFunc(r.Topics, func(t kmsg.CreatePartitionsResponseTopic) bool { return t.ErrorCode == code })
	case *kmsg.IncrementalAlterConfigsResponse:
		return slices.ContainsFunc(r.Resources, func(t kmsg.IncrementalAlterConfigsResponseResource) bool { return t.ErrorCode == code })
	}
	return false
}

// forwardToController answers a client's request with the active
// controller's answer (KIP-590's forwarding, without the envelope: the
// controller listener takes the request itself). If no controller answers
// within the request's timeout, every item gets REQUEST_TIMED_OUT.
func (n *Node) forwardToController(r *request, req kmsg.Request, timeout time.Duration) {
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	n.cluster.sendToController(req, timeout, func(resp kmsg.Response, err error) {
		if err != nil {
			resp = controllerErrorResponse(req, kerr.RequestTimedOut)
		}
		r.respond(resp)
	})
}

// controllerErrorResponse is the answer to a request for the controller or
// the quorum that none answered: err for every item, as the controller
// itself answers (controller.ErrorResponse); DescribeQuorum and the quorum
// RPCs, which the controller does not serve, get it at the top level where
// they have one.
func controllerErrorResponse(req kmsg.Request, err *kerr.Error) kmsg.Response {
	if controller.Serves(req.Key()) {
		return controller.ErrorResponse(req, err)
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if q, ok := resp.(*kmsg.DescribeQuorumResponse); ok {
		q.ErrorCode = err.Code
	}
	return resp
}
