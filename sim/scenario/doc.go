// Package scenario builds a whole simulation from one seed: a broker, its
// clients and a fault schedule, all inside package sim's single-threaded
// scheduler; it runs the workload, records every client operation with its
// outcome, heals everything, drains every partition, and hands the history
// to package checker for a verdict.
//
// Derive turns (seed, faults) into a Config, "swarm" style: every option
// (partition count, flush policy, each producer's acks, idempotence, codec
// and rate, each consumer's mode, every fault rate) is drawn from the seed,
// so that different seeds explore different corners while one seed always
// replays the same run, byte for byte. Run executes a Config.
//
// Phases:
//
//  1. setup (no faults): the topic is created;
//  2. safety: producers and consumers run while faults strike;
//  3. heal: faults stop, crashed nodes restart, producers flush and stop;
//     every in-flight produce must complete within a bound (liveness);
//  4. drain: the end offsets are read and a fresh consumer reads every
//     partition from its start to its end, recorded as Final polls.
//
// What the run promises, and so what the checker holds it to, follows from
// the configuration: an acknowledged write is durable when acks >= 1 and
// either every append is synced before its acknowledgement
// (log.flush.interval.messages=1) or no fault can lose unsynced data (no
// power loss). Derive forces the flush when power loss is enabled, so every
// acknowledged write of a run is promised durable.
package scenario
