package quorum

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/broker/raft"
	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/core/planted"
)

// Host runs one raft.Node on a node's core.Env: it persists each Ready
// through core.IO before anything in it leaves, carries messages over
// core.Network as Kafka request and response frames, ticks Raft from
// core.Clock and hands committed entries to the node. All methods run on the
// node's event loop.
type Host struct {
	env   core.Env
	cfg   Config
	log   *slog.Logger
	io    core.IO
	raft  *raft.Node
	store *store

	peers map[int32]*peer
	// inbound holds the answer callbacks of requests other nodes sent us,
	// by the correlation id the host gave each one when it stepped Raft.
	inbound       map[int32]func(kmsg.Response)
	nextInboundID int32

	// busy is set while a Ready's I/O or a snapshot's is in flight: Raft
	// hands out one Ready at a time, and a snapshot is taken between two.
	busy bool
	// machine is the node's state machine; snapshots are its images.
	machine StateMachine
	// appliedOffset is the offset after the last entry handed to OnUpdate
	// (or the restored snapshot's), appliedEpoch that entry's epoch: the
	// id a snapshot taken now gets.
	appliedOffset int64
	appliedEpoch  int32
	// sinceSnapshotEntries and sinceSnapshotBytes count the entries (and
	// their data) applied since the last snapshot, against the thresholds.
	sinceSnapshotEntries int
	sinceSnapshotBytes   int64
	// snapshotting is set while a snapshot is being written and compacted.
	snapshotting bool
	// persistedHard is the quorum state last made durable.
	persistedHard raft.HardState
	ticker        core.Timer
	stopped       bool
	halted        error

	// OnUpdate, if set, is called after every Ready the host completed, with
	// the entries it committed (maybe none), in offset order. The node
	// applies them to its StateMachine and looks at Role and Leader again.
	// After a snapshot fetched from the leader the entries start at its
	// offset: the host has already called StateMachine.Restore.
	OnUpdate func(committed []raft.Entry)
	// OnPersisted, if set, is called after each Ready's writes are durable
	// and before its messages leave, with the quorum state now on disk and
	// the durable log end (the offset after the last synced entry): what a
	// recorder of the quorum's history needs (checker.QuorumRecorder).
	OnPersisted func(hard raft.HardState, durableLogEnd int64)
	// OnSnapshot, if set, is called when a snapshot becomes the node's log
	// start: one it took, once it is durable and Raft accepted it (the log
	// below it may still be on disk for a moment), or one fetched from the
	// leader, once it is durable and the state machine was restored from it
	// (before OnUpdate hands out the entries after it). A snapshot loaded
	// at a restart is the one at LogStartOffset when New returns.
	OnSnapshot func(offset int64, epoch int32, source SnapshotSource)
	// OnHalt, if set, is called once when a write or sync of the metadata
	// log or quorum state failed. The node must stop: what the disk holds
	// is no longer known, and a restart rereads it (KRaft exits too).
	OnHalt func(error)
}

// New opens the metadata log directory, loads the newest snapshot into
// machine (StateMachine.Restore) and restores the Raft node from the
// snapshot and the log after it. It does not tick or send until Start; the
// first entries OnUpdate hands out continue the snapshot.
func New(env core.Env, cfg Config, machine StateMachine) (*Host, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if machine == nil {
		return nil, errors.New("quorum: no state machine")
	}
	store, restored, err := openStore(env.FS, cfg.Dir, cfg.ClusterID)
	if err != nil {
		return nil, err
	}
	if snapshot := restored.Snapshot; snapshot.Offset > 0 {
		if err := machine.Restore(snapshot.Offset, snapshot.Epoch, snapshot.Data); err != nil {
			store.close()
			return nil, fmt.Errorf("quorum: load snapshot %s: %w", checkpointName(snapshot.Offset, snapshot.Epoch), err)
		}
	}
	voters := make([]int32, len(cfg.Voters))
	for i, v := range cfg.Voters {
		voters[i] = v.ID
	}
	node, err := raft.New(raft.Config{
		ID:                   cfg.NodeID,
		Voters:               voters,
		ClusterID:            cfg.ClusterID,
		ElectionTimeoutTicks: cfg.ticks(cfg.ElectionTimeout),
		FetchTimeoutTicks:    cfg.ticks(cfg.FetchTimeout),
		RequestTimeoutTicks:  cfg.ticks(cfg.RequestTimeout),
		Rand:                 env.Rand.Fork(),
	}, restored)
	if err != nil {
		store.close()
		return nil, fmt.Errorf("quorum: restore: %w", err)
	}
	log := env.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	io := env.IO
	if io == nil {
		io = core.InlineIO{Clock: env.Clock}
	}
	h := &Host{
		env:     env,
		cfg:     cfg,
		log:     log.With(slog.String("component", "quorum")),
		io:      io,
		raft:    node,
		store:   store,
		peers:   make(map[int32]*peer),
		inbound: make(map[int32]func(kmsg.Response)),

		persistedHard: restored.HardState,
		machine:       machine,
		appliedOffset: restored.Snapshot.Offset,
		appliedEpoch:  restored.Snapshot.Epoch,
	}
	for _, v := range cfg.Voters {
		if v.ID != cfg.NodeID {
			h.peers[v.ID] = &peer{host: h, id: v.ID, channel: NewChannel(env, h.log, v.Address, h.clientID(), cfg.RequestTimeout)}
		}
	}
	h.log.Info("metadata quorum restored", slog.Int("epoch", int(restored.HardState.Epoch)),
		slog.Int("leader", int(restored.HardState.LeaderID)),
		slog.Int64("snapshot", restored.Snapshot.Offset), slog.Int64("log_end", store.endOffset()))
	return h, nil
}

// Start begins ticking. Entries restored from disk are committed again as
// the node learns the high watermark; OnUpdate hands them out.
func (h *Host) Start() {
	h.scheduleTick()
	h.pump()
}

// Stop stops ticking, closes the connections to peers and releases the log.
// Requests waiting for Raft's answer are never answered; their connections
// close with the node.
func (h *Host) Stop() {
	if h.stopped {
		return
	}
	h.stopped = true
	if h.ticker != nil {
		h.ticker.Stop()
	}
	for _, id := range h.peerIDs() {
		h.peers[id].close()
	}
	if !h.busy {
		h.store.close()
	}
}

// Role, Epoch, Leader and HighWatermark describe the node's view of the
// quorum, for the node and for DescribeQuorum-like tools.
func (h *Host) Role() raft.Role { return h.raft.Role() }

// IsObserver reports whether the node follows the quorum without being a
// voter (a broker-only node).
func (h *Host) IsObserver() bool { return h.raft.IsObserver() }

// HardState is the node's quorum state (epoch, vote, leader) as Raft
// holds it; the durable one is what OnPersisted last reported.
func (h *Host) HardState() raft.HardState { return h.raft.HardState() }

// Epoch is the node's current epoch.
func (h *Host) Epoch() int32 { return h.raft.HardState().Epoch }

// Leader is the leader the node knows in its epoch, or raft.NoNode.
func (h *Host) Leader() int32 { return h.raft.HardState().LeaderID }

// HighWatermark is the offset past the last entry the node knows committed.
func (h *Host) HighWatermark() int64 { return h.raft.HighWatermark() }

// LogStartOffset is the offset of the node's first log entry: its
// snapshot's offset, 0 without one.
func (h *Host) LogStartOffset() int64 { return h.raft.LogStartOffset() }

// EndOffset is the offset past the node's last log entry.
func (h *Host) EndOffset() int64 { return h.raft.EndOffset() }

// Propose appends data to the metadata log if this node leads, and returns
// the offset it will commit at (if it commits at all: a leader that loses
// its epoch first may see it truncated).
func (h *Host) Propose(data []byte) (int64, error) {
	if h.stopped || h.halted != nil {
		return 0, errors.New("quorum: stopped")
	}
	offset, err := h.raft.Propose(data)
	if err == nil {
		h.pump()
	}
	return offset, err
}

// Resign gives up leadership at a controlled shutdown.
func (h *Host) Resign() {
	h.raft.Resign()
	h.pump()
}

// HandleRequest steps Raft with a quorum request that arrived from the
// network (Vote, BeginQuorumEpoch, EndQuorumEpoch, DescribeQuorum, or a
// Fetch or FetchSnapshot of the metadata topic) and answers it through respond, exactly once,
// when Raft answers. A request Raft refuses as malformed is answered at once
// with INVALID_REQUEST.
func (h *Host) HandleRequest(req kmsg.Request, respond func(kmsg.Response)) {
	if h.stopped || h.halted != nil {
		respond(errorResponse(req, kerr.NotController))
		return
	}
	h.nextInboundID++
	id := h.nextInboundID
	h.inbound[id] = respond
	body, ok := req.(raft.Body)
	if !ok {
		delete(h.inbound, id)
		respond(errorResponse(req, kerr.InvalidRequest))
		return
	}
	err := h.raft.Step(raft.Message{From: requestSender(req), To: h.cfg.NodeID, CorrelationID: id, Body: body})
	if err != nil {
		h.log.Debug("quorum request refused", slog.String("api", kmsg.NameForKey(req.Key())), slog.Any("err", err))
		if respond, waiting := h.inbound[id]; waiting {
			delete(h.inbound, id)
			respond(errorResponse(req, kerr.InvalidRequest))
		}
	}
	h.pump()
}

// requestSender is the node id a quorum request claims to come from, which
// Raft checks against the request's own fields.
func requestSender(req kmsg.Request) int32 {
	switch r := req.(type) {
	case *kmsg.VoteRequest:
		if len(r.Topics) > 0 && len(r.Topics[0].Partitions) > 0 {
			return r.Topics[0].Partitions[0].CandidateID
		}
	case *kmsg.BeginQuorumEpochRequest:
		if len(r.Topics) > 0 && len(r.Topics[0].Partitions) > 0 {
			return r.Topics[0].Partitions[0].LeaderID
		}
	case *kmsg.EndQuorumEpochRequest:
		if len(r.Topics) > 0 && len(r.Topics[0].Partitions) > 0 {
			return r.Topics[0].Partitions[0].LeaderID
		}
	case *kmsg.FetchRequest:
		return r.ReplicaID
	case *kmsg.FetchSnapshotRequest:
		return r.ReplicaID
	}
	return raft.NoNode
}

// errorResponse is the answer to a quorum request the host cannot pass to
// Raft: the request's response with err as its top-level error.
func errorResponse(req kmsg.Request, err *kerr.Error) kmsg.Response {
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	switch r := resp.(type) {
	case *kmsg.VoteResponse:
		r.ErrorCode = err.Code
	case *kmsg.BeginQuorumEpochResponse:
		r.ErrorCode = err.Code
	case *kmsg.EndQuorumEpochResponse:
		r.ErrorCode = err.Code
	case *kmsg.DescribeQuorumResponse:
		r.ErrorCode = err.Code
	case *kmsg.FetchResponse:
		r.ErrorCode = err.Code
	case *kmsg.FetchSnapshotResponse:
		r.ErrorCode = err.Code
	}
	return resp
}

// step hands Raft a response from a peer.
func (h *Host) step(m raft.Message) {
	if h.stopped || h.halted != nil {
		return
	}
	if err := h.raft.Step(m); err != nil {
		h.log.Debug("quorum response dropped", slog.String("message", m.String()), slog.Any("err", err))
	}
	h.pump()
}

func (h *Host) scheduleTick() {
	h.ticker = h.env.Clock.AfterFunc(h.cfg.TickInterval, func() {
		if h.stopped || h.halted != nil {
			return
		}
		h.raft.Tick()
		h.pump()
		h.scheduleTick()
	})
}

// pump takes Raft's next Ready, if any and if none is in flight, and
// performs it: persist, then send, then advance and hand out what
// committed. A Ready with nothing to persist is done at once.
func (h *Host) pump() {
	for !h.busy && !h.stopped && h.halted == nil && h.raft.HasReady() {
		ready := h.raft.Ready()
		if !ready.HardStateChanged && ready.TruncateToOffset < 0 && len(ready.Entries) == 0 && !ready.MustSync {
			h.complete(ready)
			continue
		}
		h.busy = true
		store := h.store
		// Planted: the Ready's messages leave before its state is durable.
		early := planted.Is("send-before-persist")
		if early {
			h.complete(ready)
		}
		h.io.Submit(func() error { return persist(store, ready) }, func(err error) {
			h.busy = false
			if h.stopped {
				store.close()
				return
			}
			if err != nil {
				h.halt(fmt.Errorf("quorum: persist the metadata log: %w", err))
				return
			}
			if ready.HardStateChanged {
				h.persistedHard = ready.HardState
			}
			if h.OnPersisted != nil && (ready.HardStateChanged || ready.MustSync) {
				h.OnPersisted(h.persistedHard, store.endOffset())
			}
			if !early {
				h.complete(ready)
			}
			h.pump()
		})
	}
}

// persist performs a Ready's durable steps in Raft's order: quorum state,
// a fetched snapshot (which replaces the whole log), truncation, append,
// sync. It runs as I/O work and touches only the store.
func persist(s *store, ready raft.Ready) error {
	if ready.HardStateChanged {
		if err := s.writeQuorumState(ready.HardState); err != nil {
			return err
		}
	}
	if ready.Snapshot != nil {
		if err := s.install(*ready.Snapshot); err != nil {
			return err
		}
	}
	if ready.TruncateToOffset >= 0 {
		if err := s.truncate(ready.TruncateToOffset); err != nil {
			return err
		}
	}
	if err := s.append(ready.Entries); err != nil {
		return err
	}
	if ready.MustSync {
		return s.sync()
	}
	return nil
}

// complete sends a persisted Ready's messages, advances Raft, replaces the
// state machine with a fetched snapshot, hands out the committed entries
// and then takes a snapshot if enough were applied since the last.
func (h *Host) complete(ready raft.Ready) {
	for _, m := range ready.Messages {
		h.send(m)
	}
	h.raft.Advance()
	if snapshot := ready.Snapshot; snapshot != nil {
		assertf(snapshot.Offset > h.appliedOffset, "fetched snapshot %d is not beyond the applied offset %d", snapshot.Offset, h.appliedOffset)
		if err := h.machine.Restore(snapshot.Offset, snapshot.Epoch, snapshot.Data); err != nil {
			h.halt(fmt.Errorf("quorum: load the snapshot fetched from the leader (%d-%d): %w", snapshot.Offset, snapshot.Epoch, err))
			return
		}
		h.log.Info("installed a metadata snapshot from the leader", slog.Int64("offset", snapshot.Offset), slog.Int("epoch", int(snapshot.Epoch)))
		h.appliedOffset, h.appliedEpoch = snapshot.Offset, snapshot.Epoch
		h.sinceSnapshotEntries, h.sinceSnapshotBytes = 0, 0
		if h.OnSnapshot != nil {
			h.OnSnapshot(snapshot.Offset, snapshot.Epoch, SnapshotInstalled)
		}
	}
	for _, e := range ready.CommittedEntries {
		assertf(e.Offset == h.appliedOffset, "committed entry %d handed out at applied offset %d", e.Offset, h.appliedOffset)
		h.appliedOffset, h.appliedEpoch = e.Offset+1, e.Epoch
		h.sinceSnapshotEntries++
		h.sinceSnapshotBytes += int64(len(e.Data))
	}
	if h.OnUpdate != nil {
		h.OnUpdate(ready.CommittedEntries)
	}
	h.maybeSnapshot()
}

// send delivers one message: a response goes back to the request it
// answers, a request goes to its peer.
func (h *Host) send(m raft.Message) {
	if resp, ok := m.Body.(kmsg.Response); ok {
		respond, waiting := h.inbound[m.CorrelationID]
		if !waiting {
			return
		}
		delete(h.inbound, m.CorrelationID)
		respond(resp)
		return
	}
	p, ok := h.peers[m.To]
	req, isRequest := m.Body.(kmsg.Request)
	if !ok || !isRequest {
		h.log.Warn("quorum message has no route", slog.String("message", m.String()))
		return
	}
	p.send(m.CorrelationID, req)
}

// halt stops the host after a failed write and tells the node.
func (h *Host) halt(err error) {
	if h.halted != nil {
		return
	}
	h.halted = err
	h.log.Error("metadata log write failed; halting", slog.Any("err", err))
	if h.ticker != nil {
		h.ticker.Stop()
	}
	if h.OnHalt != nil {
		h.OnHalt(err)
	}
}

// peerIDs returns the peers' ids in order.
func (h *Host) peerIDs() []int32 {
	ids := make([]int32, 0, len(h.peers))
	for _, v := range h.cfg.Voters {
		if _, ok := h.peers[v.ID]; ok {
			ids = append(ids, v.ID)
		}
	}
	return ids
}
