// Package core is the shared vocabulary of every node: the environment
// interfaces through which a node sees time, randomness, its disk and the
// network, and the identifiers they use.
//
// Everything that makes a run non-deterministic enters a node through the
// interfaces in this package. The production runtime (packages disk and net,
// wired together in cmd/broker) implements them with real files, real TCP and
// the wall clock; package sim implements them with a virtual clock, an
// in-memory disk that forgets unsynced data on a crash, and a lossy network,
// all driven from one seed.
//
// Deterministic packages (core, broker, client, checker, and the simulator's
// scheduler) must not read the wall clock, sleep, start goroutines, use select,
// use math/rand or crypto/rand, or import os or net;
// core/lint_test.go enforces this.
//
// # Execution model
//
// A node is a single-threaded state machine. Its code runs only inside
// callbacks: a timer fired (Clock.AfterFunc), a connection opened, a frame
// arrived or a connection closed (ConnHandler). Callbacks of one node never run
// concurrently, and a callback never blocks waiting for another event. Disk
// calls are synchronous: they return when the operation has completed (the
// simulator may charge virtual time for them).
package core
