package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"

	"github.com/kafkasim/kafkasim/core"
)

// epochEntriesMax bounds the leader epoch cache. Each leader election adds
// at most one entry; when the cache is full the oldest entry is dropped, so
// EndOffsetForEpoch answers for ancient epochs as for unknown ones.
const epochEntriesMax = 1 << 16

// UndefinedEpoch and UndefinedOffset are EndOffsetForEpoch's answer for an
// epoch the log knows nothing about, as in Kafka's OffsetForLeaderEpoch.
const (
	UndefinedEpoch  int32 = -1
	UndefinedOffset int64 = -1
)

// EpochEntry records that leader epoch Epoch began at StartOffset.
type EpochEntry struct {
	Epoch       int32
	StartOffset int64
}

// epochCache is Kafka's LeaderEpochFileCache: the start offset of every
// leader epoch in the log, with epochs and start offsets strictly increasing.
type epochCache struct {
	entries []EpochEntry
}

// latest returns the newest entry, if any.
func (c *epochCache) latest() (EpochEntry, bool) {
	if len(c.entries) == 0 {
		return EpochEntry{}, false
	}
	return c.entries[len(c.entries)-1], true
}

// latestEpoch returns the newest epoch, or UndefinedEpoch.
func (c *epochCache) latestEpoch() int32 {
	if e, ok := c.latest(); ok {
		return e.Epoch
	}
	return UndefinedEpoch
}

// assign records that epoch starts at startOffset, if epoch is newer than the
// latest. It reports whether the cache changed.
func (c *epochCache) assign(epoch int32, startOffset int64) bool {
	assert(epoch >= 0 && startOffset >= 0, "negative epoch or offset assigned")
	if latest, ok := c.latest(); ok {
		if epoch <= latest.Epoch {
			return false
		}
		assert(startOffset >= latest.StartOffset, "epoch start offset moved backwards")
		if startOffset == latest.StartOffset {
			// The previous epoch wrote nothing; the newer one supersedes it.
			c.entries = c.entries[:len(c.entries)-1]
		}
	}
	if len(c.entries) == epochEntriesMax {
		c.entries = append(c.entries[:0], c.entries[1:]...)
	}
	c.entries = append(c.entries, EpochEntry{Epoch: epoch, StartOffset: startOffset})
	return true
}

// truncateFromEnd removes the entries of epochs that start at or after
// endOffset, because the log no longer holds their first batch.
func (c *epochCache) truncateFromEnd(endOffset int64) bool {
	n := len(c.entries)
	for n > 0 && c.entries[n-1].StartOffset >= endOffset {
		n--
	}
	changed := n != len(c.entries)
	c.entries = c.entries[:n]
	return changed
}

// truncateFromStart drops the epochs that end before startOffset and moves
// the start of the epoch covering startOffset up to it.
func (c *epochCache) truncateFromStart(startOffset int64) bool {
	covering := -1
	for i, e := range c.entries {
		if e.StartOffset <= startOffset {
			covering = i
		}
	}
	if covering < 0 || (covering == 0 && c.entries[0].StartOffset == startOffset) {
		return false
	}
	c.entries = append(c.entries[:0], c.entries[covering:]...)
	c.entries[0].StartOffset = startOffset
	return true
}

// endOffsetFor implements Kafka's LeaderEpochFileCache.endOffsetFor: the
// largest epoch <= requested that the log knows, and the offset where the
// next epoch starts (the log end offset for the latest epoch).
func (c *epochCache) endOffsetFor(requested int32, logEndOffset int64) (int32, int64) {
	latest, ok := c.latest()
	if requested < 0 || !ok {
		return UndefinedEpoch, UndefinedOffset
	}
	if requested == latest.Epoch {
		return requested, logEndOffset
	}
	higher := -1 // the first entry with an epoch above requested
	for i, e := range c.entries {
		if e.Epoch > requested {
			higher = i
			break
		}
	}
	switch {
	case higher < 0:
		return UndefinedEpoch, UndefinedOffset
	case higher == 0:
		return requested, c.entries[0].StartOffset
	}
	return c.entries[higher-1].Epoch, c.entries[higher].StartOffset
}

// agrees reports whether a batch at baseOffset carrying epoch agrees with the
// cache: it must carry the epoch of the entry covering baseOffset, if any.
// Every batch at or after the first entry's start does, since the cache is
// built from the batches' epochs; Read uses it to catch a flipped epoch.
func (c *epochCache) agrees(epoch int32, baseOffset int64) bool {
	low, high := 0, len(c.entries) // invariant: entries[:low] start <= baseOffset
	for low < high {
		middle := int(uint(low+high) >> 1)
		if c.entries[middle].StartOffset <= baseOffset {
			low = middle + 1
		} else {
			high = middle
		}
	}
	return low == 0 || c.entries[low-1].Epoch == epoch
}

// encode formats the cache as Kafka's leader-epoch-checkpoint file.
func (c *epochCache) encode() []byte {
	out := fmt.Appendf(nil, "%s\n%d\n", checkpointVersion, len(c.entries))
	for _, e := range c.entries {
		out = fmt.Appendf(out, "%d %d\n", e.Epoch, e.StartOffset)
	}
	return out
}

// readEpochCheckpoint loads the cache file. A missing file gives an empty
// cache; a garbled one errBadCheckpoint.
func readEpochCheckpoint(fsys core.FS, dir string) (epochCache, error) {
	data, err := readWholeFile(fsys, path.Join(dir, epochFile), checkpointBytesMax)
	if errors.Is(err, fs.ErrNotExist) {
		return epochCache{}, nil
	}
	if err != nil {
		return epochCache{}, err
	}
	return decodeEpochs(data)
}

func decodeEpochs(data []byte) (epochCache, error) {
	var c epochCache
	lines := bytes.Split(data, []byte("\n"))
	if len(lines) < 3 || string(lines[0]) != checkpointVersion || len(lines[len(lines)-1]) != 0 {
		return c, fmt.Errorf("%w: %s layout", errBadCheckpoint, epochFile)
	}
	count, err := strconv.Atoi(string(lines[1]))
	if err != nil || count != len(lines)-3 || count > epochEntriesMax {
		return c, fmt.Errorf("%w: %s count %q", errBadCheckpoint, epochFile, lines[1])
	}
	for _, line := range lines[2 : len(lines)-1] {
		fields := bytes.Fields(line)
		if len(fields) != 2 {
			return c, fmt.Errorf("%w: %s line %q", errBadCheckpoint, epochFile, line)
		}
		epoch, err1 := strconv.ParseInt(string(fields[0]), 10, 32)
		start, err2 := strconv.ParseInt(string(fields[1]), 10, 64)
		if err1 != nil || err2 != nil || epoch < 0 || start < 0 {
			return c, fmt.Errorf("%w: %s line %q", errBadCheckpoint, epochFile, line)
		}
		if latest, ok := c.latest(); ok && (int32(epoch) <= latest.Epoch || start <= latest.StartOffset) {
			return c, fmt.Errorf("%w: %s is not increasing at %q", errBadCheckpoint, epochFile, line)
		}
		c.entries = append(c.entries, EpochEntry{Epoch: int32(epoch), StartOffset: start})
	}
	return c, nil
}
