package storage

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/kafkasim/kafkasim/core"
)

// File names inside a partition directory.
const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	tempSuffix      = core.TempSuffix

	recoveryPointFile = "recovery-point-offset-checkpoint"
	logStartFile      = "log-start-offset-checkpoint"
	epochFile         = "leader-epoch-checkpoint"

	// offsetDigits is the width of a segment's zero-padded base offset, as
	// in Kafka: enough for any non-negative int64.
	offsetDigits = 20
)

// segmentFileName returns the path of the file with the given suffix of the
// segment starting at base.
func segmentFileName(dir string, base int64, suffix string) string {
	assert(base >= 0, "negative segment base offset")
	return path.Join(dir, fmt.Sprintf("%020d%s", base, suffix))
}

// parseSegmentFileName splits a segment file name into its base offset and
// suffix. ok is false for names that are not segment files.
func parseSegmentFileName(name string) (base int64, suffix string, ok bool) {
	if len(name) <= offsetDigits {
		return 0, "", false
	}
	digits, suffix := name[:offsetDigits], name[offsetDigits:]
	switch suffix {
	case logSuffix, indexSuffix, timeIndexSuffix:
	default:
		return 0, "", false
	}
	if strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return 0, "", false
	}
	base, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return 0, "", false
	}
	return base, suffix, true
}

// assert panics when an internal invariant is broken. It is never used for
// bad input, which gets an error.
func assert(ok bool, message string) {
	if !ok {
		panic("storage: invariant broken: " + message)
	}
}
