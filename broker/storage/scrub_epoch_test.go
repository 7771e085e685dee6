package storage

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestScrubFindsALeaderEpochChangedAtRest changes one byte of a stored
// batch's leader epoch, which its CRC does not cover, below the recovery
// point: the scrubber reports it as corruption at rest, since the epoch
// cache gives that offset another epoch (sim seed 80551: a follower kept
// such a batch, never reported, below the high watermark).
func TestScrubFindsALeaderEpochChangedAtRest(t *testing.T) {
	disk := newDisk(1)
	l := mustOpen(t, disk, smallConfig())
	var positions []int64
	position := int64(0)
	for i := range 3 {
		batch := makeBatch(uint64(i), 1, 10, 1000)
		positions = append(positions, position)
		position += int64(len(batch))
		mustAppend(t, l, batch, 0, epoch0)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Scrub(ScrubCursor{}, 1<<20); err != nil {
		t.Fatalf("scrub of an intact log: %v", err)
	}
	const leaderEpochLowByte = 15 // base offset 8, length 4, epoch 4 bytes
	segment := fmt.Sprintf("%s/%020d.log", testDir, 0)
	if err := disk.Corrupt(segment, positions[1]+leaderEpochLowByte, 1); err != nil {
		t.Fatal(err)
	}
	var err error
	cursor := ScrubCursor{}
	for range 10 {
		if cursor, _, err = l.Scrub(cursor, 1<<20); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrCorruption) || !strings.Contains(err.Error(), "leader epoch") {
		t.Fatalf("scrub after the epoch changed: %v, want corruption naming the leader epoch", err)
	}
}
