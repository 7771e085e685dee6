package scenario

import (
	"time"

	"github.com/kafkasim/kafkasim/checker"
)

// recordBytesMax bounds the log bytes of one record of this workload alone
// in its batch, besides its key: the v2 batch header (61 bytes), the
// record's framing (at most 36 bytes of varints and attributes), a value
// of at most 20 bytes ("p2.999-999999"), no headers, and 64 bytes for any
// codec's framing of one small record (gzip, snappy, LZ4 and zstd all need
// less). An oversize record's key is refused by the broker and never
// stored; other keys are Workload.KeyBytes long, and incompressible data
// grows by well under 1/16 under any of the codecs.
const recordBytesMax = 256

// timeRetentionHorizon is how far the broker's clock must stay from
// log.retention.ms for time retention to be unable to act in a run: a run
// lasts minutes of virtual time, and clock faults move a clock by seconds.
const timeRetentionHorizon = time.Hour

// describeRetention tells the checker what retention may delete in this
// run, from the configuration alone: log.retention.bytes, whether
// log.retention.ms can expire anything within the run, and whether a fault
// can take away bytes that retention counted. It is recorded with the
// history, once.
func describeRetention(r *run) {
	if r.recorder.retention != nil {
		return
	}
	keyBytes := int64(r.cfg.Workload.KeyBytes)
	retention := &checker.Retention{Bytes: -1, RecordBytesMax: recordBytesMax + keyBytes + keyBytes/16}
	if r.brokerCfg.RetentionBytes >= 0 {
		retention.Bytes = r.brokerCfg.RetentionBytes
	}
	retentionMs := r.brokerCfg.RetentionMs
	retention.TimeCanAct = retentionMs >= 0 && time.Duration(retentionMs)*time.Millisecond < timeRetentionHorizon
	// Retention counts only the bytes below the high watermark (docs/
	// storage.md): in durable mode they are synced on every in-sync
	// replica, so neither power loss nor a failed fsync that drops pages
	// takes them. Only in caching mode, where the high watermark runs
	// ahead of the fsync, can those faults take what retention counted;
	// and Derive gives caching mode a flush per message whenever they
	// strike, which syncs each record before it is counted.
	retention.TailLoss = r.cfg.WriteCaching && !r.cfg.FlushPerMessage && (r.cfg.Faults[FaultPowerLoss] || r.cfg.Faults[FaultDiskErrors])
	r.recorder.retention = retention
}
