package sim

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/kafkasim/kafkasim/core"
)

// stallMax bounds one Stall, so that a bad latency model cannot push a node
// beyond any sensible horizon.
const stallMax = time.Hour

// NodeOptions configures a node when it is added.
type NodeOptions struct {
	// ClockOffset is how far the node's clock is ahead of true virtual time
	// at the start (negative: behind).
	ClockOffset time.Duration
	// ClockDriftPPM is the rate skew of the node's clock in parts per million:
	// +1000 makes its clock run 0.1% fast. See Clock.SetDrift for the bound.
	ClockDriftPPM int64
}

// Node is one simulated process: a broker, a controller or a client. It has a
// name (also its host name on the network), a clock, a random stream, an
// optional file system and a view of the network. Its callbacks run as events
// of the scheduler, tagged with its incarnation number: a crash discards
// every pending event of the incarnation that crashed, and Restart starts the
// next one.
type Node struct {
	s    *Scheduler
	name string

	incarnation uint64
	alive       bool
	poweredOff  bool // crashed by PowerOff and not restarted yet
	paused      bool
	parked      []*event
	busyUntil   time.Duration

	rand       *core.Rand
	envRand    *core.Rand
	clock      *Clock
	fs         core.FS
	net        *nodeNetwork
	log        *slog.Logger
	crashHooks []func()

	listeners []*listener
	portNext  int
}

// AddNode adds a live node named name, in its first incarnation. Names must be
// unique, non-empty, at most 64 bytes, and free of ':' and whitespace (they
// are host names). AddNode panics on a bad name: building a simulation is the
// harness's job and a bad name is a bug in the harness.
func (s *Scheduler) AddNode(name string, opts NodeOptions) *Node {
	if err := checkNodeName(name); err != nil {
		panic(err)
	}
	if _, ok := s.nodesByName[name]; ok {
		panic(fmt.Sprintf("sim: duplicate node name %q", name))
	}
	if len(s.nodes) >= nodesMax {
		panic(fmt.Sprintf("sim: more than %d nodes", nodesMax))
	}
	n := &Node{s: s, name: name, incarnation: 1, alive: true, portNext: portEphemeralFirst}
	n.rand = s.rand.Fork()
	n.envRand = n.rand.Fork()
	n.clock = &Clock{node: n}
	if err := n.clock.SetOffset(opts.ClockOffset); err != nil {
		panic(err)
	}
	if err := n.clock.SetDrift(opts.ClockDriftPPM); err != nil {
		panic(err)
	}
	n.net = &nodeNetwork{nw: s.network, node: n}
	n.log = slog.New(&logHandler{node: n})
	s.nodes = append(s.nodes, n)
	s.nodesByName[name] = n
	s.Trace("add-node %s", name)
	return n
}

func checkNodeName(name string) error {
	if name == "" || len(name) > nodeNameBytesMax {
		return fmt.Errorf("sim: node name %q must have 1 to %d bytes", name, nodeNameBytesMax)
	}
	if strings.ContainsAny(name, ": \t\r\n/") {
		return fmt.Errorf("sim: node name %q must not contain ':', '/' or whitespace", name)
	}
	return nil
}

// Node returns the node named name, or nil.
func (s *Scheduler) Node(name string) *Node { return s.nodesByName[name] }

// Name returns the node's name, which is also its host name.
func (n *Node) Name() string { return n.name }

// Incarnation returns the node's incarnation number: 1 at first, plus one per
// Restart.
func (n *Node) Incarnation() uint64 { return n.incarnation }

// Alive reports whether the node is running (not crashed).
func (n *Node) Alive() bool { return n.alive }

// Paused reports whether the node is paused.
func (n *Node) Paused() bool { return n.paused }

// Clock returns the node's clock, to inject drift and jumps.
func (n *Node) Clock() *Clock { return n.clock }

// Rand returns the node's own random stream, from which each incarnation's
// environment stream is forked. Fork from it (for example for a disk) in a
// fixed order.
func (n *Node) Rand() *core.Rand { return n.rand }

// SetFS installs the file system that Env returns. Prefer SetDisk for a
// simulated disk, which also wires crashes and stalls.
func (n *Node) SetFS(fs core.FS) { n.fs = fs }

// OnCrash registers f to run, in registration order, whenever the node
// crashes, after its events and connections are gone.
func (n *Node) OnCrash(f func()) {
	if f == nil {
		panic("sim: OnCrash(nil)")
	}
	n.crashHooks = append(n.crashHooks, f)
}

// Env returns the environment of the node's current incarnation: its clock,
// its random stream (a fresh fork per incarnation), its file system and its
// network. Build the node's state machine from it after AddNode and again
// after every Restart.
func (n *Node) Env() core.Env {
	return core.Env{Clock: n.clock, Rand: n.envRand, FS: n.fs, Net: n.net, Log: n.log}
}

// AfterFunc is shorthand for n.Clock().AfterFunc, for harness code.
func (n *Node) AfterFunc(d time.Duration, f func()) core.Timer { return n.clock.AfterFunc(d, f) }

// Crash kills the node at once: none of its pending events or timers will
// ever run, its connections break (peers see core.ErrConnReset), its
// listeners close, a pause or stall ends, and the crash hooks run (a disk
// forgets what was not synced). Crashing a crashed node is a no-op.
func (n *Node) Crash() { n.crash(false) }

// PowerOff crashes the node as a host that loses power: like Crash, except
// that its peers get no reset. Their established connections stay open, the
// frames they send vanish, and they learn only through their own timeouts
// (or from a reset once the host is restarted and they send to it); dials
// to the host time out instead of being refused until Restart. Like Crash,
// it runs the crash hooks (SetDisk's disk forgets what was not synced).
func (n *Node) PowerOff() { n.crash(true) }

func (n *Node) crash(silent bool) {
	if !n.alive {
		return
	}
	if silent {
		n.s.Trace("power-off %s/%d", n.name, n.incarnation)
	} else {
		n.s.Trace("crash %s/%d", n.name, n.incarnation)
	}
	n.alive = false
	n.poweredOff = silent
	n.paused = false
	for _, ev := range n.parked {
		if ev.state == eventParked {
			ev.state = eventDropped
		}
	}
	n.parked = nil
	n.busyUntil = 0
	n.s.network.crashNode(n, silent)
	for _, hook := range n.crashHooks {
		hook()
	}
}

// Restart starts the next incarnation of a crashed node with a fresh random
// stream. The caller rebuilds the node's state machine from Env. Restarting
// a live node panics.
func (n *Node) Restart() {
	if n.alive {
		panic(fmt.Sprintf("sim: restart of live node %s", n.name))
	}
	n.incarnation++
	n.alive = true
	n.poweredOff = false
	n.envRand = n.rand.Fork()
	n.s.Trace("restart %s/%d", n.name, n.incarnation)
}

// Pause freezes the node: its events are held, not dropped, until Resume,
// like a process stopped with SIGSTOP or a long garbage collection pause.
func (n *Node) Pause() {
	if !n.alive || n.paused {
		return
	}
	n.s.Trace("pause %s", n.name)
	n.paused = true
}

// Resume unfreezes a paused node. The events it held run from now on, in
// their original order.
func (n *Node) Resume() {
	if !n.paused {
		return
	}
	n.s.Trace("resume %s parked=%d", n.name, len(n.parked))
	n.paused = false
	parked := n.parked
	n.parked = nil
	for _, ev := range parked {
		if ev.state == eventParked {
			n.s.requeue(ev)
		}
	}
}

// Stall makes the node busy for d more virtual time: none of its events run
// before the busy period ends. It models a slow fsync or a CPU-bound stretch;
// the simulated disk calls it to charge for its latency.
func (n *Node) Stall(d time.Duration) {
	if d < 0 || d > stallMax {
		panic(fmt.Sprintf("sim: Stall(%v) outside [0, %v]", d, stallMax))
	}
	if !n.alive {
		return
	}
	base := max(n.busyUntil, n.s.now)
	n.busyUntil = base + d
}

// BusyUntil returns the virtual time until which the node is busy.
func (n *Node) BusyUntil() time.Duration { return n.busyUntil }

// SetDisk installs a simulated disk as the node's file system and wires it
// to the node: a crash makes the disk forget what was not synced (after the
// node's events and connections are gone), and the disk's sync latency
// stalls the node. Call it once per node, before the first Env.
func (n *Node) SetDisk(d *Disk) {
	if d == nil {
		panic("sim: SetDisk(nil)")
	}
	if n.fs != nil {
		panic(fmt.Sprintf("sim: node %s already has a file system", n.name))
	}
	n.fs = d
	d.Bind(n)
	n.OnCrash(d.Crash)
}
