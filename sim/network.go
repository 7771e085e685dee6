package sim

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/kafkasim/kafkasim/core"
)

// Limits and defaults of the simulated network.
const (
	// linkDelayMax bounds the one-way delay of a link.
	linkDelayMax = time.Minute

	// dialTimeoutDefault is how long a dial across a partition waits before
	// failing with core.ErrTimeout, like Kafka's
	// socket.connection.setup.timeout.ms.
	dialTimeoutDefault = 10 * time.Second

	// breakTimeoutDefault is how long after a frame is lost both ends learn
	// that the connection broke, like TCP giving up on retransmissions.
	breakTimeoutDefault = 2 * time.Second

	// connInflightBytesMaxDefault bounds the bytes in flight toward one end
	// of a connection (sent, not yet delivered, including frames queued
	// before the connection opened). Beyond it the connection breaks rather
	// than let memory grow without bound.
	connInflightBytesMaxDefault = 256 << 20

	// timeoutMax bounds the configurable network timeouts.
	timeoutMax = time.Hour

	// portEphemeralFirst and portEphemeralLast delimit the ports a node gives
	// to listeners on port 0 and to the local ends of its dials.
	portEphemeralFirst = 32768
	portEphemeralLast  = 60999
)

// LinkConfig describes one direction of the link between two nodes.
type LinkConfig struct {
	// DelayMin and DelayMax bound the one-way delay, drawn uniformly per
	// frame. Frames of one connection still arrive in the order sent.
	DelayMin, DelayMax time.Duration
	// LossProbability is the chance that a frame is lost, which breaks its
	// connection (see NetworkOptions.BreakTimeout).
	LossProbability float64
}

func (cfg LinkConfig) validate() error {
	if cfg.DelayMin < 0 || cfg.DelayMin > cfg.DelayMax || cfg.DelayMax > linkDelayMax {
		return fmt.Errorf("sim: link delay [%v, %v] must satisfy 0 <= min <= max <= %v",
			cfg.DelayMin, cfg.DelayMax, linkDelayMax)
	}
	if !(cfg.LossProbability >= 0 && cfg.LossProbability <= 1) {
		return fmt.Errorf("sim: loss probability %v outside [0, 1]", cfg.LossProbability)
	}
	return nil
}

// NetworkOptions are the network-wide timeouts and limits.
type NetworkOptions struct {
	// DialTimeout: a dial across a cut link fails with core.ErrTimeout after
	// this long. Default 10s.
	DialTimeout time.Duration
	// BreakTimeout: after a frame is lost, both ends see core.ErrConnReset
	// this long later. Default 2s.
	BreakTimeout time.Duration
	// ConnInflightBytesMax bounds the bytes in flight toward one end of a
	// connection. Default 256 MiB.
	ConnInflightBytesMax int
}

// linkKey names one direction of a link by node names.
type linkKey struct{ from, to string }

// Network is the simulated network shared by the nodes of a scheduler. Each
// node reaches it through its Env().Net. Faults are injected through the
// methods below: per-link delay and loss, one-way and symmetric partitions,
// connection resets; a crashed node's connections break by themselves.
//
// Every random decision is drawn from the network's own stream, in the order
// the events that make them run, so a run is reproducible from its seed.
type Network struct {
	s    *Scheduler
	rand *core.Rand
	opts NetworkOptions

	linkDefault LinkConfig
	links       map[linkKey]LinkConfig
	cuts        map[linkKey]bool
	blackholes  map[linkKey]bool
	stats       NetworkStats

	listeners map[string]*listener // by "host:port"
	conns     []*conn              // in creation order, for deterministic sweeps
	connsDead int
	connNext  uint64
}

func newNetwork(s *Scheduler, rand *core.Rand) *Network {
	return &Network{
		s:    s,
		rand: rand,
		opts: NetworkOptions{
			DialTimeout:          dialTimeoutDefault,
			BreakTimeout:         breakTimeoutDefault,
			ConnInflightBytesMax: connInflightBytesMaxDefault,
		},
		linkDefault: LinkConfig{DelayMin: 100 * time.Microsecond, DelayMax: 2 * time.Millisecond},
		links:       make(map[linkKey]LinkConfig),
		cuts:        make(map[linkKey]bool),
		blackholes:  make(map[linkKey]bool),
		listeners:   make(map[string]*listener),
	}
}

// Configure replaces the network options; zero fields keep their defaults.
func (nw *Network) Configure(opts NetworkOptions) error {
	if opts.DialTimeout == 0 {
		opts.DialTimeout = dialTimeoutDefault
	}
	if opts.BreakTimeout == 0 {
		opts.BreakTimeout = breakTimeoutDefault
	}
	if opts.ConnInflightBytesMax == 0 {
		opts.ConnInflightBytesMax = connInflightBytesMaxDefault
	}
	if opts.DialTimeout < 0 || opts.DialTimeout > timeoutMax ||
		opts.BreakTimeout < 0 || opts.BreakTimeout > timeoutMax {
		return fmt.Errorf("sim: network timeouts must be within [0, %v]", timeoutMax)
	}
	if opts.ConnInflightBytesMax < 0 {
		return errors.New("sim: ConnInflightBytesMax must not be negative")
	}
	nw.opts = opts
	return nil
}

// SetDefaultLink sets the configuration of every link without its own.
func (nw *Network) SetDefaultLink(cfg LinkConfig) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	nw.linkDefault = cfg
	return nil
}

// SetLink sets the configuration of the link from one node to another (one
// direction only).
func (nw *Network) SetLink(from, to *Node, cfg LinkConfig) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	nw.links[linkKey{from.name, to.name}] = cfg
	nw.s.Trace("link %s->%s delay=[%v,%v] loss=%v", from.name, to.name,
		cfg.DelayMin, cfg.DelayMax, cfg.LossProbability)
	return nil
}

// ClearLink makes the link from one node to another use the default again.
func (nw *Network) ClearLink(from, to *Node) {
	delete(nw.links, linkKey{from.name, to.name})
	nw.s.Trace("link %s->%s default", from.name, to.name)
}

func (nw *Network) link(from, to *Node) LinkConfig {
	if cfg, ok := nw.links[linkKey{from.name, to.name}]; ok {
		return cfg
	}
	return nw.linkDefault
}

// Cut drops everything sent from one node to the other (one direction) until
// Heal: frames are lost, breaking their connections, and dials time out.
func (nw *Network) Cut(from, to *Node) {
	nw.cuts[linkKey{from.name, to.name}] = true
	nw.s.Trace("cut %s->%s", from.name, to.name)
}

// Blackhole stops everything sent from one node to the other (one
// direction) until Heal, without breaking connections: frames from `from`
// stop arriving while frames from `to` keep arriving, so each side learns
// only through its own timeouts, as with a one-way routing failure or a
// firewall that drops silently. Dials from `from` to `to` time out. It works
// on open connections, not only on new ones. As TCP retransmits, a frame
// sent on an open connection is held, not lost: Heal delivers it, in order
// and late, unless its connection ended first.
func (nw *Network) Blackhole(from, to *Node) {
	nw.blackholes[linkKey{from.name, to.name}] = true
	nw.s.Trace("blackhole %s->%s", from.name, to.name)
}

// Heal undoes Cut and Blackhole for one direction; the frames a blackhole
// held go on.
func (nw *Network) Heal(from, to *Node) {
	delete(nw.cuts, linkKey{from.name, to.name})
	delete(nw.blackholes, linkKey{from.name, to.name})
	nw.s.Trace("heal %s->%s", from.name, to.name)
	nw.releaseHeld()
}

// Partition cuts both directions between a and b.
func (nw *Network) Partition(a, b *Node) {
	nw.Cut(a, b)
	nw.Cut(b, a)
}

// Isolate cuts node n off from every other node, in both directions.
func (nw *Network) Isolate(n *Node) {
	for _, other := range nw.s.nodes {
		if other != n {
			nw.Partition(n, other)
		}
	}
}

// HealAll removes every cut and blackhole.
func (nw *Network) HealAll() {
	nw.cuts = make(map[linkKey]bool)
	nw.blackholes = make(map[linkKey]bool)
	nw.s.Trace("heal-all")
	nw.releaseHeld()
}

// IsCut reports whether the direction from one node to the other is cut or
// blackholed.
func (nw *Network) IsCut(from, to *Node) bool {
	key := linkKey{from.name, to.name}
	return nw.cuts[key] || nw.blackholes[key]
}

// IsBlackholed reports whether the direction from one node to the other is
// blackholed.
func (nw *Network) IsBlackholed(from, to *Node) bool {
	return nw.blackholes[linkKey{from.name, to.name}]
}

// NetworkStats counts what the network's faults did, not what was armed, so
// that a strike test can assert that each fault class struck.
type NetworkStats struct {
	// FramesLostCut counts frames lost to a Cut (each breaks its connection).
	FramesLostCut int64
	// FramesLostRandom counts frames lost to LinkConfig.LossProbability.
	FramesLostRandom int64
	// FramesBlackholed counts frames a Blackhole held back while their
	// connection stayed open (delivered at Heal unless it ended first).
	FramesBlackholed int64
	// Crashes counts Node.Crash calls of live nodes; ConnsResetByCrash the
	// connections they broke with a reset toward the peer.
	Crashes           int64
	ConnsResetByCrash int64
	// PowerOffs counts Node.PowerOff calls of live nodes;
	// ConnsLeftOpenByPowerOff the connections whose peer got no reset;
	// FramesToPoweredOff the frames peers then sent into the void; and
	// DialsToPoweredOff the dials that timed out at a powered-off host.
	PowerOffs               int64
	ConnsLeftOpenByPowerOff int64
	FramesToPoweredOff      int64
	DialsToPoweredOff       int64
}

// Stats returns the effect counters so far.
func (nw *Network) Stats() NetworkStats { return nw.stats }

// delay draws a one-way delay for a frame from one node to another.
func (nw *Network) delay(from, to *Node) time.Duration {
	cfg := nw.link(from, to)
	if cfg.DelayMax == cfg.DelayMin {
		return cfg.DelayMin
	}
	return time.Duration(nw.rand.Int64Range(int64(cfg.DelayMin), int64(cfg.DelayMax)))
}

// splitAddr splits "host:port" and checks the port.
func splitAddr(addr string) (host string, port int, err error) {
	i := len(addr) - 1
	for i >= 0 && addr[i] != ':' {
		i--
	}
	if i < 0 {
		return "", 0, fmt.Errorf("sim: address %q has no port", addr)
	}
	port, err = strconv.Atoi(addr[i+1:])
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("sim: address %q has a bad port", addr)
	}
	return addr[:i], port, nil
}

func joinAddr(host string, port int) string { return host + ":" + strconv.Itoa(port) }

// nextPort returns the node's next ephemeral port, skipping ports that have
// a listener.
func (n *Node) nextPort() (int, bool) {
	span := portEphemeralLast - portEphemeralFirst + 1
	for range span {
		port := n.portNext
		n.portNext++
		if n.portNext > portEphemeralLast {
			n.portNext = portEphemeralFirst
		}
		if _, used := n.s.network.listeners[joinAddr(n.name, port)]; !used {
			return port, true
		}
	}
	return 0, false
}

// crashNode breaks every connection of a node that just crashed and closes
// its listeners. The node's own ends end silently (its incarnation gets no
// more callbacks). With silent false each peer sees core.ErrConnReset once
// the reset reaches it; with silent true (a power-off) established
// connections stay open at the peer, which learns only through its own
// timeouts, and dials in progress toward the node time out.
func (nw *Network) crashNode(n *Node, silent bool) {
	for _, l := range n.listeners {
		l.closed = true
		delete(nw.listeners, l.addr)
	}
	n.listeners = nil
	if silent {
		nw.stats.PowerOffs++
	} else {
		nw.stats.Crashes++
	}
	for _, c := range nw.conns {
		if c.dead {
			continue
		}
		involved := c.target == n
		for _, e := range c.ends {
			if e != nil && e.node == n {
				involved = true
				e.state = endDone
				e.queued, e.queuedBytes = nil, 0
			}
		}
		if !involved {
			continue
		}
		if silent {
			nw.crashConnSilently(c, n)
		} else {
			nw.crashConn(c, n)
		}
		nw.retire(c)
	}
}

// crashConn breaks a connection of a crashed node: every peer end gets a
// reset.
func (nw *Network) crashConn(c *conn, n *Node) {
	if !c.broken {
		nw.stats.ConnsResetByCrash++
	}
	c.broken = true
	for _, e := range c.ends {
		if e != nil && e.node != n {
			nw.scheduleReset(e, nw.resetDelay(n, e.node))
		}
	}
}

// crashConnSilently handles a connection of a node that lost power: no
// reset leaves the node. An established connection stays open at the peer
// (half-open); a dial toward the node times out; a dial from it dies with it.
func (nw *Network) crashConnSilently(c *conn, n *Node) {
	if c.broken {
		return
	}
	dialer, acceptor := c.ends[0], c.ends[1]
	switch {
	case acceptor == nil && dialer.node == n:
		c.broken = true // The SYN in flight finds the connection broken.
	case acceptor == nil:
		wait := max(c.dialAt+nw.opts.DialTimeout-nw.s.now, 0)
		nw.stats.DialsToPoweredOff++
		nw.failDial(dialer, wait, fmt.Errorf("sim: dial %q: %w: host powered off", dialer.remote, core.ErrTimeout))
	default:
		c.halfOpen = true
		nw.stats.ConnsLeftOpenByPowerOff++
	}
}

// resetDelay is how long a reset sent from one node takes to reach another:
// one link delay, or the break timeout when the link is cut.
func (nw *Network) resetDelay(from, to *Node) time.Duration {
	if nw.IsCut(from, to) {
		return nw.opts.BreakTimeout
	}
	return nw.delay(from, to)
}

// ResetConnections resets every open connection between a and b (either
// direction), as a middlebox or a peer's RST would. Both ends see
// core.ErrConnReset after the frames already in flight toward them. It
// returns how many connections it reset.
func (nw *Network) ResetConnections(a, b *Node) int {
	count := 0
	for _, c := range nw.conns {
		if !nw.resettable(c) {
			continue
		}
		x, y := c.ends[0].node, c.ends[1].node
		if (x == a && y == b) || (x == b && y == a) {
			nw.breakConn(c, 0)
			count++
		}
	}
	return count
}

// ResetRandom resets one open connection chosen at random, and reports
// whether there was one.
func (nw *Network) ResetRandom() bool {
	count := 0
	for _, c := range nw.conns {
		if nw.resettable(c) {
			count++
		}
	}
	if count == 0 {
		return false
	}
	chosen := nw.rand.IntN(count)
	for _, c := range nw.conns {
		if !nw.resettable(c) {
			continue
		}
		if chosen == 0 {
			nw.s.Trace("reset conn=%d", c.id)
			nw.breakConn(c, 0)
			return true
		}
		chosen--
	}
	panic("sim: ResetRandom lost its choice")
}

// OpenConns returns how many connections are established and unbroken.
func (nw *Network) OpenConns() int {
	count := 0
	for _, c := range nw.conns {
		if nw.resettable(c) {
			count++
		}
	}
	return count
}

func (nw *Network) resettable(c *conn) bool {
	return !c.dead && !c.broken && c.ends[1] != nil
}
