// Package sim is the deterministic simulator substrate: a single-threaded
// scheduler with virtual time, simulated nodes that crash, restart, pause and
// stall, per-node clocks with drift and jumps, and a simulated network with
// delay, loss, partitions and resets. Every node sees the world only through
// the core.Env its Node hands out, so the same broker and client code runs
// here and in production.
//
// # Scheduler
//
// NewScheduler(seed) owns the master random stream. The network forks the
// first stream from it, then every AddNode and ForkRand call forks the next,
// so components get the same streams on every run of the same program. Events
// sit in one priority queue ordered by (virtual time, insertion sequence);
// Step runs the next one and virtual time jumps to it. RunUntil, RunFor and
// RunWhile loop over Step within an event budget (SetEventsMax) that turns a
// livelock into ErrEventsMax instead of a hang.
//
// # Trace
//
// Every executed event contributes a line (time, sequence number, node and
// incarnation, label) to a running SHA-256, and Trace adds detail lines (the
// network records every frame's size and fate). TraceHash summarises a run:
// two runs of the same seed must produce the same hash. SetTraceWriter
// writes the same lines out for reading and diffing.
//
// # Nodes
//
// A Node runs its callbacks as events tagged with its incarnation. Crash
// discards every pending event of the incarnation, breaks its connections,
// closes its listeners and runs crash hooks (a simulated disk forgets
// unsynced data); Restart begins the next incarnation, whose state machine the
// harness rebuilds from Env. Pause holds a node's events until Resume; Stall
// makes a node busy so its next events run no earlier than the end of the
// busy period (the disk charges fsync latency this way). Deferred events keep
// their relative order.
//
// See docs/simulator.md for the fault model in full.
package sim
