// Package storage is a partition's segment log: the append-only sequence of
// record batches that a broker stores for one topic partition, split into
// segment files named by their base offset, with sparse offset and time
// indexes, checkpoints for the recovery point, the log start offset and the
// leader epochs, and crash recovery. The layout, recovery algorithm and
// durability rules follow Apache Kafka's LogSegment, UnifiedLog, LogLoader and
// LeaderEpochFileCache; docs/storage.md describes them in detail.
//
// The package is deterministic: it reaches the disk only through core.FS, gets
// the time as arguments, starts no goroutines and never lets map order decide
// anything. The same code runs on real files (package disk) and on the
// simulator's disk (package sim), which forgets unsynced data on a crash.
//
// # Files in a partition directory
//
//	00000000000000000000.log        batches exactly as stored
//	00000000000000000000.index      sparse: relative offset -> file position
//	00000000000000000000.timeindex  max timestamp so far -> relative offset
//	recovery-point-offset-checkpoint
//	log-start-offset-checkpoint
//	leader-epoch-checkpoint
//
// # Durability
//
// A batch is durable once Sync returns (or once FlushIntervalMessages forced a
// sync inside Append). Recovery trusts nothing after the recovery point: it
// validates every batch there (CRC included) and truncates at the first
// invalid byte. Every segment except the last is synced, indexes included,
// when the next segment is rolled, so after a crash only the last segment can
// have lost data. Destructive operations are ordered so that a crash between
// any two steps leaves a state that recovery turns into a prefix of the log:
// checkpoints that shrink what recovery trusts are written first, files are
// removed newest first with a directory sync after each segment.
//
// # Errors
//
// Bad input (a malformed batch, an offset out of range, a bad Config) returns
// an error wrapping one of the sentinels below and changes nothing. A disk
// error during a write or sync marks the log failed (ErrLogFailed): it keeps
// serving reads of what it knew was written but refuses writes until it is
// closed and reopened, because after a failed fsync the durable contents are
// unknown. A full disk (core.ErrNoSpace) during an append is rolled back and
// leaves the log writable.
//
// A Log is not safe for concurrent use; like every node component it runs on
// its node's single event loop.
package storage
