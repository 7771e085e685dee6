package quorum

import (
	"fmt"
	"log/slog"
)

// StateMachine is what the metadata log builds on a node (the cluster's
// metadata image). The node applies committed entries itself, in OnUpdate;
// the host only needs to save the machine's state and to put one back.
type StateMachine interface {
	// Snapshot returns an image of the state after every entry OnUpdate has
	// handed out so far. The host keeps the returned slice and sends it to
	// lagging followers: the machine must not modify it afterwards.
	Snapshot() []byte
	// Restore replaces the whole state with a snapshot's data: the state
	// after every entry below offset, where epoch is the epoch of the entry
	// at offset-1. The host calls it in New with the newest snapshot on
	// disk and when it installs one fetched from the leader, each time
	// before any later entry is handed out. An error leaves the state as it
	// was: New fails with it, and a fetched snapshot halts the host.
	Restore(offset int64, epoch int32, data []byte) error
}

// SnapshotSource says how a snapshot became a node's (Host.OnSnapshot).
type SnapshotSource int8

// The ways a snapshot becomes a node's.
const (
	// SnapshotTaken: the host wrote it from its own state machine, which
	// is unchanged.
	SnapshotTaken SnapshotSource = iota
	// SnapshotInstalled: the node fetched it from the leader and the state
	// machine was replaced with it.
	SnapshotInstalled
)

// String names the source as checker.SnapshotSource does.
func (s SnapshotSource) String() string {
	if s == SnapshotInstalled {
		return "installed"
	}
	return "taken"
}

// snapshotDue reports whether enough was applied since the last snapshot
// for a new one (either threshold crossed; a zero threshold never is).
func (h *Host) snapshotDue() bool {
	entries, bytes := h.cfg.SnapshotIntervalEntries, h.cfg.SnapshotIntervalBytes
	return (entries > 0 && h.sinceSnapshotEntries >= entries) || (bytes > 0 && h.sinceSnapshotBytes >= bytes)
}

// maybeSnapshot takes a snapshot of the state machine at the applied offset
// when one is due and no Ready is in flight, following Raft's Compact
// contract: the checkpoint file is made durable first (one I/O job), then
// Raft is told (Compact), and only when it accepted does a second job drop
// the log below the snapshot and the older snapshots. No Ready is taken
// meanwhile, so the log the second job rewrites is exactly the durable one.
func (h *Host) maybeSnapshot() {
	if h.busy || h.stopped || h.halted != nil || !h.snapshotDue() || h.appliedOffset <= h.raft.LogStartOffset() {
		return
	}
	offset, epoch := h.appliedOffset, h.appliedEpoch
	data := h.machine.Snapshot()
	store := h.store
	h.busy, h.snapshotting = true, true
	h.io.Submit(func() error { return store.writeSnapshot(offset, epoch, data) }, func(err error) {
		if h.snapshotDone(store, err) {
			return
		}
		if err := h.raft.Compact(offset, epoch, data); err != nil {
			// The checkpoint stays: every snapshot of applied entries is
			// valid at a restart. Only the log keeps what it held.
			h.log.Warn("raft refused a metadata snapshot", slog.Int64("offset", offset), slog.Any("err", err))
			h.busy, h.snapshotting = false, false
			h.pump()
			return
		}
		h.sinceSnapshotEntries, h.sinceSnapshotBytes = 0, 0
		if h.OnSnapshot != nil {
			h.OnSnapshot(offset, epoch, SnapshotTaken)
		}
		h.io.Submit(func() error { return store.compact(offset, epoch) }, func(err error) {
			if h.snapshotDone(store, err) {
				return
			}
			h.busy, h.snapshotting = false, false
			h.log.Debug("metadata snapshot taken", slog.Int64("offset", offset), slog.Int("epoch", int(epoch)), slog.Int("bytes", len(data)))
			h.pump()
		})
	})
}

// snapshotDone handles the end of a snapshot's I/O job that stopped it: the
// host was stopped meanwhile (the store is released now) or the job failed
// (the host halts). It reports whether the snapshot must go no further.
func (h *Host) snapshotDone(store *store, err error) bool {
	switch {
	case h.stopped:
		h.busy, h.snapshotting = false, false
		store.close()
		return true
	case err != nil:
		h.busy, h.snapshotting = false, false
		h.halt(fmt.Errorf("quorum: write a metadata snapshot: %w", err))
		return true
	}
	return false
}

// assertf crashes the node when an invariant of the host does not hold: a
// broken invariant means the state machine or the log is no longer what
// Raft committed, and the simulator turns the crash into a failing seed.
func assertf(ok bool, format string, args ...any) {
	if !ok {
		panic(fmt.Sprintf("quorum: invariant broken: "+format, args...))
	}
}
