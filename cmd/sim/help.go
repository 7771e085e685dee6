package main

// helpText is what --help prints. It is written by hand rather than by the
// flag package so that it can explain the modes, and so that it does not
// depend on the machine (the default of --parallel is the number of CPUs);
// TestHelpNamesEveryFlag keeps it in step with the flags.
const helpText = `sim runs a kafkasim broker and its clients inside a deterministic simulator.

From one seed it derives a whole run: one broker or, with the cluster
fault, for half the seeds a cluster of 3 to 5 nodes with 3 controller
voters; the topic's partitions (1 to 4, up to 16 in some clusters), the
producers (acks, idempotence, compression, rate), the consumers (groups,
delivery mode) and a rate for every enabled fault. With --faults all each
seed enables a random subset of the fault classes (swarm testing), printed
with the other options; a list runs every fault it names. The run has a safety phase in which the
faults strike (crashes, power loss, disk errors, full disks, bit flips,
network faults, network partitions between nodes, client crashes, clock
jumps, pauses, aggressive retention), then heals everything and requires
progress, then reads every partition back. A checker judges what the
clients observed: linearizable partitions, no lost acknowledged write, no
duplicates where idempotence promises none, ordered polls and commits, and
more; in a cluster another judges what the nodes recorded of the
controller quorum (docs/checker.md).

The same seed always replays the same run: standard output is identical
byte for byte; wall-clock times and progress go to standard error.

Usage:
  sim [--seed N] [--faults LIST] [--swarm=BOOL] [--quiet] [--trace FILE]
      [--history FILE] [--quorum-history FILE] [--html FILE] [--report FILE]
      [--shrink=false] [--fault-events LIST]
  sim --seeds COUNT [--seed FIRST] [--faults LIST] [--swarm=BOOL] [--parallel N]
      [--shard I/N]

Examples:
  sim --seed 7 --faults all
      one run with the seed's random subset of the fault classes
  sim --seed 7 --faults all --swarm=false
      one run with every fault class
  sim --seeds 100 --faults crash,powerloss,network
      seeds 1 to 100, one line each, on every core
  sim --seeds 10000 --seed 1 --shard 3/8
      the third of eight shares of seeds 1 to 10000 (one CI matrix job)
  sim --seed 42 --faults none --trace trace.txt --history history.json
      one fault-free run, with its event trace and recorded history
  sim --seed 7 --faults crash,network --fault-events crash#2,network#3
      seed 7 with only its second crash and third network fault striking

Flags of every mode:
  --seed N          the seed of a single run, or the first seed of a sweep (default 1)
  --faults LIST     none, all, or a comma-separated list of: bitflips, clients,
                    clock, cluster, corruption, crash, disk-errors, disk-full,
                    network, partition, pause, powerloss, retention (default all)
  --swarm           run each seed with a random subset of the faults, drawn
                    from the seed: each class is kept with chance 1/2,
                    cluster always, and at least one fault (default true
                    with --faults all, false with a list; --swarm=false runs
                    every fault of all in every seed)

Flags of a single run:
  --quiet           print only the verdict and the reproduce command
  --trace FILE      write the event trace of the run to FILE
  --history FILE    write the recorded history (JSON) to FILE
  --quorum-history FILE
                    in a cluster run, write what the nodes recorded of the
                    controller quorum (JSON) to FILE
  --html FILE       on failure, write porcupine's visualization of the first
                    non-linearizable partition to FILE
  --report FILE     on failure, write the full anomaly report to FILE; standard
                    output shows at most 20 anomalies (default: a file named
                    after the seed and faults in the temporary directory)
  --shrink          on failure, look for the smallest fault set that still
                    fails with this seed, then for the smallest schedule of
                    fault events, and print the command that replays it
                    (default true; --shrink=false to skip)
  --fault-events LIST
                    replay the seed with only these fault events striking:
                    none, or a comma-separated list of KIND#N, the N-th
                    firing of one fault's timer (kinds: client-crash,
                    clock-jump, crash, damage, disk-error, disk-full, network,
                    partition, pause); every other firing is suppressed, and
                    the rest of the run is pinned to the seed's own run,
                    which costs one run more

Flags of a sweep:
  --seeds COUNT     run COUNT seeds from --seed on, print one line per seed in
                    seed order, the reproduce command of every failing seed and
                    a summary
  --parallel N      run N seeds at once (default: the number of CPUs)
  --shard I/N       run only the I-th of N shares: the seeds s with
                    (s - first) mod N = I - 1, so N jobs together run every seed

Exit status: 0 when every property held in every run; 1 when a run failed
(an anomaly, or no progress after healing); 2 on bad arguments, or when an
output file could not be written.
`
