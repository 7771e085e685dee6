package broker

import (
	"fmt"
	"log/slog"

	"github.com/kafkasim/kafkasim/broker/metadata"
)

// metadataMachine is the metadata quorum's state machine (quorum.StateMachine)
// on this node: the committed image. The quorum host takes its snapshots
// (every quorum.Config.SnapshotIntervalEntries entries or
// SnapshotIntervalBytes bytes) and restores one at a restart and when this
// node fetched one from the leader; onUpdate applies the committed entries
// themselves.
//
// A restore replaces the image's contents in place (the controller and the
// catalog keep the same *metadata.Image): metadata.Load builds a new image
// from the snapshot and its value is copied over the old one, which nothing
// else then shares. Before that, an active controller is deactivated, since
// its working image and pending proposals were decided against the image
// being replaced; updateController activates it again only if this node
// still leads, from the restored image. The next onUpdate (the host calls it
// right after the restore, committed entries or not) then lets the catalog,
// the controller and the broker's lifecycle follow the restored image.
type metadataMachine struct {
	cluster *cluster
	// restored is set when Restore replaced the image, until onUpdate took
	// it (takeRestored).
	restored bool
}

// Snapshot implements quorum.StateMachine: the image as Kafka encodes a
// metadata snapshot.
func (m *metadataMachine) Snapshot() []byte { return m.cluster.image.Snapshot() }

// Restore implements quorum.StateMachine. A snapshot that does not load,
// or whose image claims entries at or after the snapshot's own offset or
// an epoch after its own, is an error and leaves the image as it was.
func (m *metadataMachine) Restore(offset int64, epoch int32, data []byte) error {
	loaded, err := metadata.Load(data)
	if err != nil {
		return fmt.Errorf("metadata snapshot %d-%d: %w", offset, epoch, err)
	}
	// The image's applied offset is the last entry it applied, below the
	// snapshot's end offset (entries it rejected leave it further back).
	if loaded.AppliedOffset() >= offset || loaded.AppliedEpoch() > epoch {
		return fmt.Errorf("metadata snapshot %d-%d holds an image applied up to offset %d in epoch %d", offset, epoch, loaded.AppliedOffset(), loaded.AppliedEpoch())
	}
	c := m.cluster
	if c.controller != nil && c.controller.Active() {
		c.node.log.Info("metadata snapshot restored; the controller steps down until it leads again", slog.Int64("offset", offset))
		c.controller.Deactivate()
	}
	*c.image = *loaded
	m.restored = true
	return nil
}

// takeRestored reports whether Restore replaced the image since the last
// call.
func (m *metadataMachine) takeRestored() bool {
	restored := m.restored
	m.restored = false
	return restored
}
