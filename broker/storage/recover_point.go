package storage

// RecoveryReport says what Open's recovery did, for the broker's log.
type RecoveryReport struct {
	// SyncFailureRecorded is true when a failed fsync was recorded (see
	// RecordSyncFailure): segments holding data past the recovery point were
	// copied into new files, and the record was then removed.
	SyncFailureRecorded bool
	// CopiedSegments counts the segments copied into new files.
	CopiedSegments int
	// TruncatedFile is the segment whose torn tail was cut, or "" if none;
	// TruncatedPosition is where it now ends. TruncatedBytes counts the bytes
	// cut, including RemovedSegments later segments that held nothing valid.
	TruncatedFile     string
	TruncatedPosition int64
	TruncatedBytes    int64
	RemovedSegments   int
}

// CheckpointRecoveryPoint writes the recovery point checkpoint if it differs
// from the durable end offset (RecoveryPoint), leader epochs first when they
// changed: recovery rebuilds epochs only from batches after the checkpoint.
//
// Recovery treats any invalid batch below the checkpointed recovery point as
// corruption (the partition goes offline, every byte kept), while an invalid
// batch above it with nothing valid after it is a torn tail and is cut. The
// log itself rewrites the checkpoint only when the recovery point moves to a
// new segment; a caller that checkpoints soon after each successful sync
// lets recovery tell more corruption from torn writes, at the cost of a
// small atomic file write (write, fsync, rename, directory fsync) each time.
//
// A full disk returns an error wrapping core.ErrNoSpace and leaves the log
// writable and the old checkpoint in place (safe: recovery validates more).
// Any other error fails the log, as other disk errors do.
func (l *Log) CheckpointRecoveryPoint() error {
	if err := l.writable(); err != nil {
		return err
	}
	assert(l.recoveryPoint <= l.LogEndOffset(), "recovery point beyond the log end")
	if l.recoveryPoint == l.recoveryPointCheckpointed {
		return nil
	}
	if l.epochsDirty {
		if err := l.saveEpochs(); err != nil {
			return err
		}
	}
	return l.writeRecoveryPoint(l.recoveryPoint)
}
