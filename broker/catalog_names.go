package broker

import (
	"encoding/hex"
	"strconv"
	"strings"
)

// Directory names of partitions on disk, in every state a partition
// directory passes through:
//
//   - live: <topic>-<partition>, as Kafka names it (at most 249+1+4 = 254
//     bytes, since topic names are at most topicNameBytesMax bytes and a
//     topic has at most partitionsPerTopicMax partitions);
//   - being deleted: <topic prefix>-<partition>.<topic id>.deleted, where the
//     topic part is cut so that the whole name fits fileNameBytesMax, as
//     Kafka's LocalLog.logDeleteDirName does, and the topic id keeps two
//     deletions of topics with the same name (or the same long prefix)
//     apart;
//   - set aside: <name prefix>-<partition>.orphaned, with -2, -3, ... added
//     when taken, cut the same way.
//
// Found by hand: a 249-character topic could be created and deleted, but
// the rename to <topic>-<partition>.deleted passed the limit, every later
// deletion hung, and the broker never started again.

// fileNameBytesMax is the limit on one component of a path that Linux file
// systems (ext4, XFS, btrfs, tmpfs) enforce: NAME_MAX.
const fileNameBytesMax = 255

// partitionIndexDigitsMax is the number of decimal digits of the largest
// partition index, partitionsPerTopicMax-1.
var partitionIndexDigitsMax = len(strconv.Itoa(partitionsPerTopicMax - 1))

// Every live partition directory name must fit; the limits above guarantee
// it, and a change to either limit that breaks it fails at startup.
var _ = mustFit(topicNameBytesMax + 1 + partitionIndexDigitsMax)

func mustFit(nameBytes int) bool {
	if nameBytes > fileNameBytesMax {
		panic("broker: a live partition directory name can exceed " + strconv.Itoa(fileNameBytesMax) + " bytes")
	}
	return true
}

// partitionDirName is the live directory name of a partition.
func partitionDirName(topicName string, index int32) string {
	return topicName + "-" + strconv.Itoa(int(index))
}

// deletedDirName is the name a partition directory of the topic with id is
// renamed to before it is removed.
func deletedDirName(topicName string, id [16]byte, index int32) string {
	return fitName(topicName, "-"+strconv.Itoa(int(index))+"."+hex.EncodeToString(id[:])+deletedSuffix)
}

// orphanedDirName is the name an unexplained directory called name is set
// aside under; attempt 1 is the plain name, later attempts add -<attempt>.
// The part after the last '-' of name (the partition index of a partition
// directory) is kept whole, and what comes before it is cut.
func orphanedDirName(name string, attempt int) string {
	suffix := orphanedSuffix
	if attempt > 1 {
		suffix += "-" + strconv.Itoa(attempt)
	}
	head, tail := name, ""
	if cut := strings.LastIndexByte(name, '-'); cut >= 0 && len(name)-cut+len(suffix) < fileNameBytesMax {
		head, tail = name[:cut], name[cut:]
	}
	return fitName(head, tail+suffix)
}

// fitName returns head+suffix with head cut short enough for the whole to
// fit fileNameBytesMax. Topic names are ASCII, so cutting bytes never splits
// a character of one (a leftover with another name may be cut inside a
// character, which Linux still accepts); suffix must leave room for at
// least one byte of head.
func fitName(head, suffix string) string {
	if len(suffix) >= fileNameBytesMax {
		panic("broker: a directory name suffix leaves no room: " + suffix)
	}
	return head[:min(len(head), fileNameBytesMax-len(suffix))] + suffix
}
