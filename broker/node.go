package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/broker/group"
	"github.com/kafkasim/kafkasim/core"
)

// Node is one broker: a single-threaded state machine driven by connection
// events and timers, reaching disk, network, time and randomness only through
// its core.Env. All methods run on the node's event loop.
type Node struct {
	env core.Env
	cfg Config
	log *slog.Logger

	listeners  []core.Listener
	conns      map[uint64]*conn
	nextConnID uint64
	// connections holds the connection limits, the idle sweep and the
	// rate-limited connection log lines (conn.go).
	connections connBookkeeping
	// storageLog rate-limits the "storage error" lines: a full disk fails
	// every append, and each producer retries every retry.backoff.ms.
	storageLog logLimiter

	catalog     *catalog
	producerIDs *producerIDAllocator
	// groups is the group coordinator. In cluster mode it is nil until
	// __consumer_offsets has local partitions (cluster_catalog.go).
	groups *group.Coordinator
	// cluster is the node's part in a controller quorum, or nil for a
	// standalone broker (cluster.go).
	cluster *cluster

	io      core.IO
	metrics nodeMetrics
	// writeCaching is the durability mode (see durability.go).
	writeCaching bool
	// startupPartitionsMax is how many partitions New opens; the rest open
	// after Start (startup.go). Tests lower it.
	startupPartitionsMax int

	retentionTimer  core.Timer
	flushTimer      core.Timer
	checkpointTimer core.Timer
	stopped         bool
	// halted is the fatal error that stopped the node, if any.
	halted error

	// OnHalt, if set, is called once when a fatal storage error halts the
	// node. The runtime should exit (production) or crash and later restart
	// the node (simulator), so that recovery runs on what the disk holds.
	OnHalt func(error)
}

// New opens (or creates) the broker's data directory and recovers its state:
// the topic catalog, every partition log (validating what a crash may have
// torn), and idempotent producer state rebuilt from the logs. It does not
// listen yet; call Start.
func New(env core.Env, cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if env.Clock == nil || env.Rand == nil || env.FS == nil || env.Net == nil {
		return nil, errors.New("broker: incomplete environment")
	}
	log := env.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Node{
		env:   env,
		cfg:   cfg,
		log:   log.With(slog.Int("node", int(cfg.NodeID))),
		conns: make(map[uint64]*conn),
		io:    newIO(env),
		// The durability mode is fixed for the node's life: changing it
		// would move the high watermark backwards.
		writeCaching: cfg.WriteCaching,

		startupPartitionsMax: startupPartitionsMaxDefault,
	}
	n.connections.node = n
	if err := env.FS.MkdirAll(cfg.LogDir); err != nil {
		return nil, fmt.Errorf("broker: create log dir %s: %w", cfg.LogDir, err)
	}
	ids, err := openProducerIDAllocator(env.FS, cfg.LogDir)
	if err != nil {
		return nil, err
	}
	n.producerIDs = ids
	catalog, err := openCatalog(n)
	if err != nil {
		return nil, err
	}
	n.catalog = catalog
	if cfg.ClusterMode() {
		if n.cluster, err = newCluster(n); err != nil {
			catalog.close()
			return nil, fmt.Errorf("broker: open the metadata quorum: %w", err)
		}
		return n, nil
	}
	if err := n.openGroups(); err != nil {
		catalog.close()
		return nil, fmt.Errorf("broker: restore consumer groups: %w", err)
	}
	return n, nil
}

// Start listens on every configured listener and starts the periodic
// retention and flush timers.
func (n *Node) Start() error {
	clientListeners := n.cfg.Listeners
	if !n.cfg.IsBroker() {
		// A controller-only node serves the quorum and the controller on
		// its controller listeners, and no client.
		clientListeners = nil
	}
	for _, addr := range clientListeners {
		l, err := n.env.Net.Listen(addr, n.accept)
		if err != nil {
			n.closeListeners()
			return fmt.Errorf("broker: listen on %s: %w", addr, err)
		}
		n.listeners = append(n.listeners, l)
		n.log.Info("listening", slog.String("addr", l.Addr()))
	}
	for _, addr := range n.cfg.ControllerListeners {
		l, err := n.env.Net.Listen(addr, n.acceptController)
		if err != nil {
			n.closeListeners()
			return fmt.Errorf("broker: listen on controller listener %s: %w", addr, err)
		}
		n.listeners = append(n.listeners, l)
		n.log.Info("listening for the controller quorum", slog.String("addr", l.Addr()))
	}
	if n.cluster != nil {
		n.cluster.start()
	}
	n.scheduleRetention()
	n.scheduleFlush()
	n.scheduleCheckpoints()
	n.catalog.openLoadingPartitions()
	n.connections.scheduleIdleSweep()
	return nil
}

// Addrs returns the addresses the node listens on (useful with port 0).
func (n *Node) Addrs() []string {
	addrs := make([]string, len(n.listeners))
	for i, l := range n.listeners {
		addrs[i] = l.Addr()
	}
	return addrs
}

// Stop shuts the node down cleanly: it stops accepting, closes connections
// (answers to parked requests are dropped), syncs every partition and writes
// its checkpoints. Stop is what SIGTERM runs; a crash skips it, and New
// recovers either way.
func (n *Node) Stop() error {
	if n.stopped {
		return nil
	}
	n.stopped = true
	n.closeListeners()
	for _, id := range n.sortedConnIDs() {
		n.conns[id].close()
	}
	if n.retentionTimer != nil {
		n.retentionTimer.Stop()
	}
	if n.flushTimer != nil {
		n.flushTimer.Stop()
	}
	if n.checkpointTimer != nil {
		n.checkpointTimer.Stop()
	}
	n.connections.stop()
	if n.cluster != nil {
		n.cluster.stop()
	}
	if n.groups != nil {
		n.groups.Close()
	}
	return n.catalog.close()
}

// controlledShutdownTimeout bounds how long Shutdown waits for the
// controller to move this broker's leaderships away.
const controlledShutdownTimeout = 30 * time.Second

// Shutdown shuts the node down as SIGTERM asks and calls done with Stop's
// result. In cluster mode it first runs a controlled shutdown (KIP-841): the
// broker tells the active controller it wants to shut down, the controller
// moves its leaderships away and removes it from ISRs, and only then (or
// after controlledShutdownTimeout) does the broker stop; a node that leads
// the metadata quorum then resigns, so that the others elect a successor at
// once instead of waiting out a fetch timeout. A standalone broker stops at
// once. done runs on the loop, never inside Shutdown.
func (n *Node) Shutdown(done func(error)) {
	if n.cluster == nil || n.stopped {
		n.env.Clock.AfterFunc(0, func() { done(n.Stop()) })
		return
	}
	n.cluster.lifecycle.beginShutdown(controlledShutdownTimeout, func() {
		n.cluster.host.Resign()
		// Give the resignation's EndQuorumEpoch a moment to leave.
		n.env.Clock.AfterFunc(controllerRetryBackoff, func() { done(n.Stop()) })
	})
}

// halt stops the node after a storage error that leaves files in an unknown
// state (a failed fsync): continuing could acknowledge writes that a crash
// later loses, so the node stops serving without syncing anything, and only
// a restart's recovery touches the disk again. This is Kafka's behaviour for
// a failed log directory, and PostgreSQL's for a failed fsync.
func (n *Node) halt(err error) {
	if n.halted != nil {
		return
	}
	n.halted = err
	n.log.Error("halting after a fatal storage error", slog.Any("err", err))
	n.stopped = true
	if n.cluster != nil {
		n.cluster.stop()
	}
	n.closeListeners()
	for _, id := range n.sortedConnIDs() {
		n.conns[id].close()
	}
	if n.OnHalt != nil {
		n.OnHalt(err)
	}
}

// Halted returns the error that halted the node, or nil.
func (n *Node) Halted() error { return n.halted }

func (n *Node) closeListeners() {
	for _, l := range n.listeners {
		l.Close()
	}
	n.listeners = nil
}

func (n *Node) sortedConnIDs() []uint64 {
	ids := make([]uint64, 0, len(n.conns))
	for id := range n.conns { // order-independent: sorted below
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

func (n *Node) accept(nc core.Conn) core.ConnHandler {
	n.nextConnID++
	c := &conn{node: n, id: n.nextConnID, net: nc}
	if n.stopped || !n.connections.admit(c) {
		c.closed = true
		nc.Close()
		return c
	}
	n.conns[c.id] = c
	return c
}

// acceptController accepts a connection on a controller listener: it
// serves the quorum's and the controller's requests only.
func (n *Node) acceptController(nc core.Conn) core.ConnHandler {
	handler := n.accept(nc)
	handler.(*conn).controlPlane = true
	return handler
}

func (n *Node) forgetConn(c *conn) {
	delete(n.conns, c.id)
	n.connections.forget(c)
}

// now returns the node's current time.
func (n *Node) now() time.Time { return n.env.Clock.Now() }

// handleFrame decodes one request, which arrived at arrived, registers it
// with its connection (which orders its answer among the connection's
// requests in flight; conn.go) and dispatches it. Every path ends in
// exactly one c.respond (possibly later) or closes the connection, after
// the answers of the requests before it have left.
func (n *Node) handleFrame(c *conn, frame []byte, arrived time.Time) {
	supported, table := supportedVersions, apis
	if c.controlPlane {
		supported, table = controllerSupportedVersions, controllerAPIs
	}
	header, req, err := decodeRequest(frame, supported)
	switch {
	case errors.Is(err, errUnsupportedVersion) && header.apiKey == apiKeyAPIVersions:
		// KIP-511: answer a too-new ApiVersions with a v0 response that
		// carries our range, so the client retries with a version we speak.
		r := &request{conn: c, header: header, arrived: arrived}
		c.started(r)
		n.metrics.requestStarted(header.apiKey, n.now().Sub(arrived))
		r.respond(apiVersionsDowngrade())
		return
	case err != nil:
		c.closeMalformedInOrder(fmt.Errorf("client %q: %w", header.clientID, err))
		return
	}
	r := &request{conn: c, header: header, arrived: arrived}
	c.started(r)
	n.metrics.requestStarted(header.apiKey, n.now().Sub(arrived))
	table[header.apiKey].handle(n, r, req)
}

// request is one request in progress. States: running (its handler has
// not answered; parked if cancel is set, and pipelined once a Produce's
// appends are done and it only waits for durability), ready (answered; its
// answer waits in response for the requests before it) and sent (removed
// from its connection's inFlight; terminal).
type request struct {
	conn     *conn
	header   requestHeader
	arrived  time.Time // when its frame arrived, for latency
	answered bool
	// pipelined is set on an acks=all Produce parked for durability after
	// its appends: the connection's next Produce may start (conn.go,
	// rule 2).
	pipelined bool
	// cancel withdraws the parked request from what it waits on, if the
	// connection closes first; nil once answered.
	cancel func()
	// ready is set once answered. response is the encoded answer (nil for
	// none) waiting for the requests before it to leave, and slot its
	// connection frame slot (-1 for a frame of its own).
	ready    bool
	response []byte
	slot     int
	// countAtSend asks the connection to count answer in the request
	// metrics when it leaves, so that the latency includes the wait
	// behind earlier requests. respondFetch counts its own metrics.
	countAtSend bool
	answer      kmsg.Response
}

// respond answers the request. Exactly one call per request; nil sends
// nothing (acks=0 produce) but still lets the connection move on. The
// answer leaves, and is counted in the request metrics, once the requests
// before it on the connection have been answered.
func (r *request) respond(resp kmsg.Response) {
	if r.answered {
		panic(fmt.Sprintf("broker: %s answered twice", kmsg.NameForKey(r.header.apiKey)))
	}
	r.answered = true
	r.conn.respond(r, resp)
}

func (n *Node) scheduleRetention() {
	n.retentionTimer = n.env.Clock.AfterFunc(n.cfg.retentionCheckInterval(), func() {
		if n.stopped {
			return
		}
		n.catalog.enforceRetention(n.now())
		n.scheduleRetention()
	})
}

func (n *Node) scheduleFlush() {
	if n.cfg.FlushIntervalMs < 0 {
		return
	}
	n.flushTimer = n.env.Clock.AfterFunc(time.Duration(n.cfg.FlushIntervalMs)*time.Millisecond, func() {
		if n.stopped {
			return
		}
		n.catalog.syncAll()
		n.scheduleFlush()
	})
}

// scheduleCheckpoints writes the recovery point of every partition whose
// durable end moved, every log.flush.offset.checkpoint.interval.ms.
func (n *Node) scheduleCheckpoints() {
	interval := time.Duration(n.cfg.RecoveryPointCheckpointIntervalMs) * time.Millisecond
	n.checkpointTimer = n.env.Clock.AfterFunc(interval, func() {
		if n.stopped {
			return
		}
		n.catalog.checkpointRecoveryPoints()
		n.scheduleCheckpoints()
	})
}
