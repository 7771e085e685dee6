package sim

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/kafkasim/kafkasim/core"
)

// This file holds the determinism workload: a few nodes written only against
// core.Env that listen, dial each other, exchange request/response frames of
// random sizes, set and stop timers, and append and sync a file, while a
// driver injects crashes, restarts, partitions, loss, resets, stalls, pauses
// and clock faults. The nodes also check the network and timer contracts as
// they go, so the workload doubles as a randomized test of the simulator.

const (
	wlPort            = 9000
	wlRequestBytesMax = 2000
	wlRequestTimeout  = 200 * time.Millisecond
	wlPendingMax      = 64 // outstanding requests per connection before we stop sending
)

// wlStats counts what happened in a run, to show the sweep is not vacuous.
type wlStats struct {
	requests, responses, timeouts, stops    int
	opens, dialFailures, resets, crashes    int
	syncs, partitions, losses, stalls, jump int
}

// wlHarness is the test's view of a run: the violations the nodes reported,
// the statistics, and how many bytes of its log each node synced.
type wlHarness struct {
	s          *Scheduler
	violations []string
	stats      wlStats
	synced     map[string]int64 // node name -> bytes of its log synced
}

func (h *wlHarness) violate(format string, args ...any) {
	if len(h.violations) < 20 {
		h.violations = append(h.violations, fmt.Sprintf("t=%v ", h.s.Now())+fmt.Sprintf(format, args...))
	}
}

// wlNode is one workload process. It sees the world only through env.
type wlNode struct {
	h       *wlHarness
	env     core.Env
	name    string
	peers   []string
	clients []*wlClient // by peer index; nil when not connected
	file    core.File
	size    int64
	nextID  uint64
}

// wlClient is the dialing side of one connection to a peer.
type wlClient struct {
	n       *wlNode
	conn    core.Conn
	open    bool
	closed  bool
	pending []*wlRequest
}

type wlRequest struct {
	id    uint64
	timer core.Timer
	fired bool
}

func newWLNode(h *wlHarness, env core.Env, name string, peers []string) *wlNode {
	n := &wlNode{h: h, env: env, name: name, peers: peers, clients: make([]*wlClient, len(peers))}
	if _, err := env.Net.Listen(fmt.Sprintf("%s:%d", name, wlPort), n.accept); err != nil {
		h.violate("%s: listen: %v", name, err)
	}
	n.openFile()
	env.Clock.AfterFunc(time.Duration(env.Rand.IntN(10))*time.Millisecond, n.tick)
	return n
}

// openFile opens (or creates, durably) the file "log" and checks that everything
// the previous incarnations synced survived.
func (n *wlNode) openFile() {
	f, err := n.env.FS.Open("log")
	if err != nil {
		if f, err = n.env.FS.Create("log"); err == nil {
			err = f.Sync()
		}
		if err == nil {
			err = n.env.FS.SyncDir(".")
		}
	}
	if err != nil {
		n.h.violate("%s: open log: %v", n.name, err)
		return
	}
	size, err := f.Size()
	if err != nil || size < n.h.synced[n.name] {
		n.h.violate("%s: log has %d bytes after restart, %d were synced (%v)",
			n.name, size, n.h.synced[n.name], err)
	}
	n.file, n.size = f, size
	n.h.s.Trace("%s log size=%d", n.name, size)
}

func (n *wlNode) tick() {
	r := n.env.Rand
	switch k := r.IntN(100); {
	case k < 60:
		n.request(r.IntN(len(n.peers)))
	case k < 75:
		n.scratchTimer()
	case k < 90:
		n.appendLog()
	case k < 95:
		if c := n.clients[r.IntN(len(n.peers))]; c != nil && !c.closed {
			c.conn.Close()
		}
	default:
		n.env.Log.Info("tick", "now", n.env.Clock.Now())
	}
	n.env.Clock.AfterFunc(time.Duration(1+r.IntN(20))*time.Millisecond, n.tick)
}

// scratchTimer sets a timer and maybe stops it at once or from another timer,
// checking that Stop reports correctly whether the call was cancelled.
func (n *wlNode) scratchTimer() {
	fired := false
	t := n.env.Clock.AfterFunc(time.Duration(n.env.Rand.IntN(30))*time.Millisecond, func() { fired = true })
	stopAfter := time.Duration(n.env.Rand.IntN(30)) * time.Millisecond
	n.env.Clock.AfterFunc(stopAfter, func() {
		if stopped := t.Stop(); stopped == fired {
			n.h.violate("%s: Stop returned %v for a timer that fired=%v", n.name, stopped, fired)
		}
		n.h.stats.stops++
	})
}

func (n *wlNode) appendLog() {
	if n.file == nil {
		return
	}
	record := make([]byte, 1+n.env.Rand.IntN(512))
	if _, err := n.file.Write(record); err != nil {
		n.h.violate("%s: write: %v", n.name, err)
		return
	}
	n.size += int64(len(record))
	if n.env.Rand.Chance(0.5) {
		if err := n.file.Sync(); err != nil {
			n.h.violate("%s: sync: %v", n.name, err)
			return
		}
		n.h.synced[n.name] = n.size
		n.h.stats.syncs++
	}
}

func (n *wlNode) request(peer int) {
	c := n.clients[peer]
	if c == nil {
		c = &wlClient{n: n}
		n.clients[peer] = c
		c.conn = n.env.Net.Dial(n.peers[peer], c)
	}
	if c.closed || len(c.pending) >= wlPendingMax {
		return
	}
	req := &wlRequest{id: n.nextID}
	n.nextID++
	req.timer = n.env.Clock.AfterFunc(wlRequestTimeout, func() {
		req.fired = true
		n.h.stats.timeouts++
	})
	c.pending = append(c.pending, req)
	frame := make([]byte, 8+n.env.Rand.IntN(wlRequestBytesMax))
	binary.BigEndian.PutUint64(frame, req.id)
	c.conn.Send(frame)
	n.h.stats.requests++
}

func (c *wlClient) OnOpen(conn core.Conn) {
	if c.open || c.closed || conn != c.conn {
		c.n.h.violate("%s: OnOpen out of place", c.n.name)
	}
	c.open = true
	c.n.h.stats.opens++
}

// OnFrame checks that responses come back in request order, and that the
// request's timer can be stopped exactly when it has not fired.
func (c *wlClient) OnFrame(conn core.Conn, frame []byte) {
	if !c.open || c.closed || len(frame) < 8 || len(c.pending) == 0 {
		c.n.h.violate("%s: unexpected response (open=%v closed=%v len=%d pending=%d)",
			c.n.name, c.open, c.closed, len(frame), len(c.pending))
		return
	}
	req := c.pending[0]
	c.pending = c.pending[1:]
	if id := binary.BigEndian.Uint64(frame); id != req.id {
		c.n.h.violate("%s: response %d, want %d", c.n.name, id, req.id)
	}
	if req.timer.Stop() == req.fired {
		c.n.h.violate("%s: request timer Stop disagrees with fired=%v", c.n.name, req.fired)
	}
	c.n.h.stats.responses++
}

func (c *wlClient) OnClose(conn core.Conn, err error) {
	if c.closed {
		c.n.h.violate("%s: second OnClose", c.n.name)
	}
	c.closed = true
	if err != nil {
		if c.open {
			c.n.h.stats.resets++
		} else {
			c.n.h.stats.dialFailures++
		}
	}
	for i, other := range c.n.clients {
		if other == c {
			c.n.clients[i] = nil
		}
	}
}

// wlServer is the accepting side of one connection: it answers each request
// with a response of random size carrying the request's id.
type wlServer struct {
	n      *wlNode
	closed bool
}

func (n *wlNode) accept(core.Conn) core.ConnHandler { return &wlServer{n: n} }

func (v *wlServer) OnOpen(core.Conn) { v.n.h.violate("%s: OnOpen on an accepted conn", v.n.name) }

func (v *wlServer) OnFrame(conn core.Conn, frame []byte) {
	if v.closed || len(frame) < 8 {
		v.n.h.violate("%s: bad request frame (closed=%v)", v.n.name, v.closed)
		return
	}
	response := make([]byte, 8+v.n.env.Rand.IntN(wlRequestBytesMax))
	copy(response, frame[:8])
	conn.Send(response)
	if v.n.env.Rand.Chance(0.01) {
		conn.Close()
	}
}

func (v *wlServer) OnClose(core.Conn, error) {
	if v.closed {
		v.n.h.violate("%s: second OnClose on an accepted conn", v.n.name)
	}
	v.closed = true
}

// wlRun builds the cluster for seed, runs it with faults for the given
// virtual duration, and returns the harness. trace, when not nil, receives
// the readable trace.
func wlRun(seed uint64, duration time.Duration, trace io.Writer) *wlHarness {
	s := NewScheduler(seed)
	s.SetTraceWriter(trace)
	s.SetEventsMax(5_000_000)
	h := &wlHarness{s: s, synced: make(map[string]int64)}
	const nodeCount = 4
	var names []string
	for i := range nodeCount {
		names = append(names, fmt.Sprintf("n%d", i))
	}
	var nodes []*Node
	for _, name := range names {
		node := s.AddNode(name, NodeOptions{})
		node.SetDisk(NewDisk(node.Rand().Fork(), DiskOptions{
			TornWriteProbability: 0.5,
			SyncLatency:          time.Duration(node.Rand().IntN(2000)) * time.Microsecond,
		}))
		nodes = append(nodes, node)
	}
	start := func(i int) {
		var peers []string
		for j, name := range names {
			if j != i {
				peers = append(peers, fmt.Sprintf("%s:%d", name, wlPort))
			}
		}
		newWLNode(h, nodes[i].Env(), names[i], peers)
	}
	for i := range nodes {
		start(i)
	}
	d := &wlDriver{h: h, s: s, rand: s.ForkRand(), nodes: nodes, start: start}
	d.next()
	if err := s.RunUntil(duration); err != nil {
		h.violate("run: %v", err)
	}
	return h
}

// wlDriver injects one random fault at a time, at random intervals.
type wlDriver struct {
	h     *wlHarness
	s     *Scheduler
	rand  *core.Rand
	nodes []*Node
	start func(i int)
}

func (d *wlDriver) next() {
	d.s.After(time.Duration(5+d.rand.IntN(60))*time.Millisecond, "fault", d.inject)
}

func (d *wlDriver) inject() {
	defer d.next()
	r, nw := d.rand, d.s.Network()
	i := r.IntN(len(d.nodes))
	node, other := d.nodes[i], d.nodes[(i+1+r.IntN(len(d.nodes)-1))%len(d.nodes)]
	heal := time.Duration(20+r.IntN(300)) * time.Millisecond
	switch k := r.IntN(9); k {
	case 0:
		if !node.Alive() {
			return
		}
		d.h.stats.crashes++
		node.Crash()
		d.s.After(time.Duration(1+r.IntN(200))*time.Millisecond, "restart", func() {
			node.Restart()
			d.start(i)
		})
	case 1, 2:
		d.h.stats.partitions++
		if k == 1 {
			nw.Partition(node, other)
		} else {
			nw.Cut(node, other)
		}
		d.s.After(heal, "heal", func() { nw.Heal(node, other); nw.Heal(other, node) })
	case 3:
		d.h.stats.losses++
		cfg := LinkConfig{DelayMin: time.Millisecond, DelayMax: 20 * time.Millisecond, LossProbability: r.Float64() * 0.2}
		if err := nw.SetLink(node, other, cfg); err != nil {
			d.h.violate("SetLink: %v", err)
		}
		d.s.After(heal, "clear-link", func() { nw.ClearLink(node, other) })
	case 4:
		nw.ResetRandom()
	case 5:
		d.h.stats.stalls++
		node.Stall(time.Duration(r.IntN(50)) * time.Millisecond)
	case 6:
		node.Pause()
		d.s.After(heal, "resume", node.Resume)
	case 7:
		d.h.stats.jump++
		if err := node.Clock().Jump(time.Duration(r.Int64Range(-int64(time.Minute), int64(time.Minute)))); err != nil {
			d.h.violate("Jump: %v", err)
		}
	case 8:
		if err := node.Clock().SetDrift(r.Int64Range(-1000, 1000)); err != nil {
			d.h.violate("SetDrift: %v", err)
		}
	}
}
