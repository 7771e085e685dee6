package client

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kafkasim/kafkasim/core"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ClusterConfig configures the connections and metadata shared by a
// producer, consumer or admin client. Zero fields take the defaults given.
type ClusterConfig struct {
	// Bootstrap lists "host:port" addresses to start from
	// (bootstrap.servers). Required.
	Bootstrap []string
	// ClientID is sent with every request (client.id). Default "kafkasim".
	ClientID string
	// RequestTimeout bounds the wait for each response (request.timeout.ms).
	// Default 30s.
	RequestTimeout time.Duration
	// MetadataMaxAge is the period of metadata refreshes
	// (metadata.max.age.ms). Default 5m.
	MetadataMaxAge time.Duration
	// ReconnectBackoff and ReconnectBackoffMax bound the exponential backoff
	// between connection attempts to one broker (reconnect.backoff.ms,
	// reconnect.backoff.max.ms); each wait is jittered by ±20%. Defaults 50ms
	// and 1s.
	ReconnectBackoff    time.Duration
	ReconnectBackoffMax time.Duration
	// ConnectionSetupTimeout bounds how long a connection may take from
	// the dial to the end of its ApiVersions handshake
	// (socket.connection.setup.timeout.ms, KIP-601). A connection that
	// gets no further, because the broker or the path to it went silent,
	// is closed and redialed after the backoff. Default 10s.
	ConnectionSetupTimeout time.Duration
}

func (cfg *ClusterConfig) applyDefaults() error {
	if len(cfg.Bootstrap) == 0 {
		return fmt.Errorf("%w: no bootstrap addresses", ErrInvalidConfig)
	}
	for _, addr := range cfg.Bootstrap {
		if addr == "" {
			return fmt.Errorf("%w: empty bootstrap address", ErrInvalidConfig)
		}
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "kafkasim"
	}
	setDefault(&cfg.RequestTimeout, requestTimeoutDefault)
	setDefault(&cfg.MetadataMaxAge, metadataMaxAgeDefault)
	setDefault(&cfg.ReconnectBackoff, reconnectBackoffDefault)
	setDefault(&cfg.ReconnectBackoffMax, reconnectBackoffMaxDefault)
	setDefault(&cfg.ConnectionSetupTimeout, connectionSetupTimeoutDefault)
	if cfg.RequestTimeout < 0 || cfg.MetadataMaxAge < 0 || cfg.ReconnectBackoff < 0 || cfg.ReconnectBackoffMax < cfg.ReconnectBackoff || cfg.ConnectionSetupTimeout < 0 {
		return fmt.Errorf("%w: negative duration or backoff max below backoff", ErrInvalidConfig)
	}
	return nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

// TopicMetadata is what the cluster knows about one topic.
type TopicMetadata struct {
	Topic string
	// Err is the topic's error from the last Metadata response (for example
	// kerr.UnknownTopicOrPartition), nil if none.
	Err        error
	Partitions []PartitionMetadata
}

// PartitionMetadata is what the cluster knows about one partition.
type PartitionMetadata struct {
	Partition int32
	// Leader is the leader's node id, -1 when there is none.
	Leader      int32
	LeaderEpoch int32
	Replicas    []int32
	ISR         []int32
	Err         error
}

// Cluster holds the connections to the brokers and the cluster metadata. A
// Producer, a Consumer and an Admin may share one Cluster.
type Cluster struct {
	env       core.Env
	cfg       ClusterConfig
	formatter *kmsg.RequestFormatter
	conns     map[connKey]*brokerConn
	brokers   map[int32]string
	// controller is the node id of the controller, -1 when unknown.
	controller int32
	topics     map[string]*TopicMetadata
	// interest counts, per topic, the users that want its metadata.
	interest     map[string]int
	anyNext      int
	coordinators map[string]int32
	meta         metadataState
	// listeners run after every metadata update, in registration order.
	listeners []func()
	owners    uint64
	closed    bool
}

// metadataState coalesces metadata refreshes: waiters that arrive while a
// request is in flight wait for the next one, which will ask for the topics
// they added.
type metadataState struct {
	inflight bool
	current  []func(error)
	next     []func(error)
	ageTimer core.Timer
}

// NewCluster returns a Cluster that starts from cfg.Bootstrap. It connects
// lazily, on the first request.
func NewCluster(env core.Env, cfg ClusterConfig) (*Cluster, error) {
	if env.Clock == nil || env.Rand == nil || env.Net == nil {
		return nil, fmt.Errorf("%w: env needs Clock, Rand and Net", ErrInvalidConfig)
	}
	if err := cfg.applyDefaults(); err != nil {
		return nil, err
	}
	cfg.Bootstrap = slices.Clone(cfg.Bootstrap)
	return &Cluster{
		env:          env,
		cfg:          cfg,
		formatter:    kmsg.NewRequestFormatter(kmsg.FormatterClientID(cfg.ClientID)),
		conns:        make(map[connKey]*brokerConn),
		brokers:      make(map[int32]string),
		controller:   -1,
		topics:       make(map[string]*TopicMetadata),
		interest:     make(map[string]int),
		coordinators: make(map[string]int32),
	}, nil
}

// encode returns the frame for req: the request without Kafka's 4-byte size
// prefix, which the network's framing adds.
func (c *Cluster) encode(req kmsg.Request, correlation int32) []byte {
	return c.formatter.AppendRequest(nil, req, correlation)[4:]
}

// backoff returns the wait before redialing after failures consecutive
// connection failures: exponential from ReconnectBackoff, capped at
// ReconnectBackoffMax, jittered by ±20%.
func (c *Cluster) backoff(failures int) time.Duration {
	return jittered(c.env.Rand, c.cfg.ReconnectBackoff, c.cfg.ReconnectBackoffMax, failures)
}

// jittered returns base·2^(attempt-1), capped at ceiling, times a random
// factor in [0.8, 1.2).
func jittered(rand *core.Rand, base, ceiling time.Duration, attempt int) time.Duration {
	shift := min(max(attempt-1, 0), backoffShiftMax)
	d := base << shift
	if d > ceiling || d <= 0 {
		d = ceiling
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func (c *Cluster) onConnFailed(addr string) {
	// A node whose connection failed may no longer lead or coordinate
	// anything; forget cached coordinators on it so the next lookup asks.
	for group, node := range c.coordinators { // order-independent: only deletes
		if c.brokers[node] == addr {
			delete(c.coordinators, group)
		}
	}
}

// connClass separates requests that may wait long at the broker onto their
// own connections: a broker handles one request per connection at a time, so
// a JoinGroup waiting for a rebalance, or a Fetch long poll, would otherwise
// hold back heartbeats, commits and produce requests queued behind it.
type connClass uint8

const (
	classNormal connClass = iota
	classFetch
	classGroup
)

// connKey names one connection: a broker address and a class.
type connKey struct {
	addr  string
	class connClass
	// owner separates the group connections of consumers sharing a Cluster:
	// one member's JoinGroup must not wait behind another's.
	owner uint64
}

func classOf(req kmsg.Request) connClass {
	switch req.Key() {
	case keyFetch:
		return classFetch
	case keyJoinGroup, keySyncGroup:
		return classGroup
	}
	return classNormal
}

// conn returns the connection of a class to addr, creating it.
func (c *Cluster) conn(addr string, class connClass, owner uint64) *brokerConn {
	key := connKey{addr, class, owner}
	bc, ok := c.conns[key]
	if !ok {
		bc = newBrokerConn(c, addr)
		c.conns[key] = bc
	}
	return bc
}

// requestAddr sends req to addr. done runs later, exactly once.
func (c *Cluster) requestAddr(addr string, req kmsg.Request, timeout time.Duration, done func(kmsg.Response, error)) {
	if timeout <= 0 {
		timeout = c.cfg.RequestTimeout
	}
	if c.closed {
		c.env.Clock.AfterFunc(0, func() { done(nil, errNotSent(ErrClosed)) })
		return
	}
	c.requestAddrOwned(addr, 0, req, timeout, done)
}

// requestAddrOwned is requestAddr with the owner of group-class requests.
func (c *Cluster) requestAddrOwned(addr string, owner uint64, req kmsg.Request, timeout time.Duration, done func(kmsg.Response, error)) {
	if timeout <= 0 {
		timeout = c.cfg.RequestTimeout
	}
	if c.closed {
		c.env.Clock.AfterFunc(0, func() { done(nil, errNotSent(ErrClosed)) })
		return
	}
	class := classOf(req)
	if class != classGroup {
		owner = 0
	}
	c.conn(addr, class, owner).enqueue(req, timeout, done)
}

// requestNode sends req to the broker with id node.
func (c *Cluster) requestNode(node int32, req kmsg.Request, timeout time.Duration, done func(kmsg.Response, error)) {
	addr, ok := c.brokers[node]
	if !ok {
		c.env.Clock.AfterFunc(0, func() { done(nil, errNotSent(fmt.Errorf("%w: node %d", ErrNoBroker, node))) })
		return
	}
	c.requestAddr(addr, req, timeout, done)
}

// requestNodeOwned sends req to node on owner's group connection.
func (c *Cluster) requestNodeOwned(node int32, owner uint64, req kmsg.Request, timeout time.Duration, done func(kmsg.Response, error)) {
	addr, ok := c.brokers[node]
	if !ok {
		c.env.Clock.AfterFunc(0, func() { done(nil, errNotSent(fmt.Errorf("%w: node %d", ErrNoBroker, node))) })
		return
	}
	c.requestAddrOwned(addr, owner, req, timeout, done)
}

// newOwner returns a fresh owner id for a consumer's group connections.
func (c *Cluster) newOwner() uint64 {
	c.owners++
	return c.owners
}

// requestAny sends req to some broker: one with a ready connection if there
// is one, else the next candidate in turn.
func (c *Cluster) requestAny(req kmsg.Request, timeout time.Duration, done func(kmsg.Response, error)) {
	candidates := c.candidates()
	for _, addr := range candidates {
		if bc, ok := c.conns[connKey{addr, classNormal, 0}]; ok && bc.state == connReady {
			c.requestAddr(addr, req, timeout, done)
			return
		}
	}
	addr := candidates[c.anyNext%len(candidates)]
	c.anyNext++
	c.requestAddr(addr, req, timeout, done)
}

// candidates lists known broker addresses by node id, then bootstrap
// addresses, without duplicates.
func (c *Cluster) candidates() []string {
	nodes := make([]int32, 0, len(c.brokers))
	for node := range c.brokers { // order-independent: sorted below
		nodes = append(nodes, node)
	}
	slices.Sort(nodes)
	out := make([]string, 0, len(nodes)+len(c.cfg.Bootstrap))
	for _, node := range nodes {
		out = append(out, c.brokers[node])
	}
	for _, addr := range c.cfg.Bootstrap {
		if !slices.Contains(out, addr) {
			out = append(out, addr)
		}
	}
	return out
}

// Close closes every connection; outstanding requests fail with ErrClosed.
func (c *Cluster) Close() {
	if c.closed {
		return
	}
	c.closed = true
	if c.meta.ageTimer != nil {
		c.meta.ageTimer.Stop()
	}
	keys := make([]connKey, 0, len(c.conns))
	for key := range c.conns { // order-independent: sorted below
		keys = append(keys, key)
	}
	slices.SortFunc(keys, func(a, b connKey) int {
		if a.addr != b.addr {
			return compareStrings(a.addr, b.addr)
		}
		if a.class != b.class {
			return int(a.class) - int(b.class)
		}
		return int(a.owner) - int(b.owner)
	})
	for _, key := range keys {
		c.conns[key].close()
	}
}

// brokerAddr joins a host and port, bracketing IPv6 hosts.
func brokerAddr(host string, port int32) string {
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(int(port))
}
