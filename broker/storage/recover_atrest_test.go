package storage

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"path"
	"slices"
	"strings"

	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/core/record"
	"github.com/kafkasim/kafkasim/sim"
)

// Corruption at rest in TestCrashRecovery. For crashAtRestSeedsShare of the
// seeds, every disk crash is followed with chance crashAtRestProbability by
// one bit flipped in a stored byte of a batch that the log acknowledged as
// durable and whose offsets lie below the recovery point checkpointed on
// disk (recovery may cut unsynced or uncheckpointed tails, see
// judgeInvalidBatch). Those seeds also checkpoint the recovery point after
// every successful operation, as the broker does after each group commit.
// Recovery must report the damage, Open with ErrCorruption and not a byte
// changed, or Open succeeding and Scrub reporting it; then the test repairs
// the byte, as a replica would, and the run goes on. Bytes 12-15 (the
// partition leader epoch) are never flipped: neither the CRC nor anything
// else covers them, so such a flip goes unnoticed (a known limit).
const (
	crashAtRestSeedsShare  = 0.3
	crashAtRestProbability = 0.4
	// crashAtRestSeedMask derives the corruption stream from the seed, so
	// that the other seeds replay as before.
	crashAtRestSeedMask = 0xc0_44_07
	// crashCutSeedsShareMin is the smallest share of seeds in which
	// recovery must have cut a torn tail at least once, so that the test
	// keeps exercising the cut (power loss with unsynced appends).
	crashCutSeedsShareMin = 0.25
)

// crashStats counts what recovery did in TestCrashRecovery.
type crashStats struct {
	seeds, seedsWithCut    int
	cuts                   int
	injected               int
	reportedByOpen         int
	reportedByScrub        int
	removedBeforeDetection int
	offline                int
}

func (c *crashStats) add(o crashStats) {
	c.seeds++
	if o.cuts > 0 {
		c.seedsWithCut++
	}
	c.cuts += o.cuts
	c.injected += o.injected
	c.reportedByOpen += o.reportedByOpen
	c.reportedByScrub += o.reportedByScrub
	c.removedBeforeDetection += o.removedBeforeDetection
	c.offline += o.offline
}

func (c *crashStats) String() string {
	return fmt.Sprintf("recovery cut a torn tail %d times in %d seeds; %d corruptions at rest injected, %d reported by Open, %d by Scrub, %d deleted by retention first; %d runs offline after an unrecorded failed fsync",
		c.cuts, c.seedsWithCut, c.injected, c.reportedByOpen, c.reportedByScrub, c.removedBeforeDetection, c.offline)
}

// check fails when too few seeds cut a torn tail, or corruption was
// injected but never reached: the test would then prove little.
func (c *crashStats) check(seeds int) error {
	if seeds < 100 {
		return nil
	}
	if share := float64(c.seedsWithCut) / float64(seeds); share < crashCutSeedsShareMin {
		return fmt.Errorf("recovery cut a torn tail in only %.0f%% of the seeds, want at least %.0f%%", 100*share, 100*crashCutSeedsShareMin)
	}
	if c.reportedByOpen == 0 || c.reportedByScrub == 0 {
		return fmt.Errorf("corruption at rest was never reported by Open or never by Scrub: %s", c.String())
	}
	return nil
}

// atRestRun is one seed's corruption-at-rest state.
type atRestRun struct {
	rand    *core.Rand
	enabled bool
	// faults are the seed's fault rules and capacityBytes its disk
	// capacity, restored after a repair that bypassed them.
	faults        []sim.DiskFault
	capacityBytes int64
	corrupted     *atRestDamage
	// unrecorded is set once a failed fsync could not be recorded.
	unrecorded bool
}

// errPartitionOffline ends a run whose log recovery reported as corrupt
// after an unrecorded failed fsync: a broker keeps the partition offline.
var errPartitionOffline = errors.New("partition offline")

// noteErr notes an error the log returned.
func (a *atRestRun) noteErr(err error) {
	a.unrecorded = a.unrecorded || errors.Is(err, errSyncFailureUnrecorded)
}

// atRestDamage is one injected flip.
type atRestDamage struct {
	name     string
	position int64
	mask     byte
	base     int64 // the damaged file's segment base offset
}

func (a *atRestRun) init(seed uint64) {
	a.rand = core.NewRand(seed ^ crashAtRestSeedMask)
	a.enabled = a.rand.Chance(crashAtRestSeedsShare)
}

func (a *atRestRun) installFaults(disk *sim.Disk) {
	for _, f := range a.faults {
		disk.InjectFault(f)
	}
}

// checkpoint writes the recovery point checkpoint in the corruption seeds,
// as the broker does after each group commit.
func (r *crashRun) checkpoint() error {
	if !r.atRest.enabled {
		return nil
	}
	err := r.log.CheckpointRecoveryPoint()
	r.trace = append(r.trace, fmt.Sprintf("checkpoint %d: %v", r.log.RecoveryPoint(), err))
	if err == nil || (errors.Is(err, core.ErrNoSpace) && !errors.Is(err, ErrLogFailed)) {
		return nil
	}
	return r.failedRestart()
}

// atRestBatch is a batch found in a segment file.
type atRestBatch struct {
	name     string
	base     int64
	position int64
	header   record.Header
}

// maybeCorrupt flips one bit of a synced batch, after a crash.
func (a *atRestRun) maybeCorrupt(r *crashRun) error {
	if !a.enabled || a.corrupted != nil || !a.rand.Chance(crashAtRestProbability) {
		return nil
	}
	checkpointed, _, err := readOffsetCheckpoint(r.disk, testDir, recoveryPointFile)
	if err != nil {
		return fmt.Errorf("reading the recovery point: %w", err)
	}
	logStart, _, err := readOffsetCheckpoint(r.disk, testDir, logStartFile)
	if err != nil {
		return fmt.Errorf("reading the log start: %w", err)
	}
	limit := min(r.durable, checkpointed)
	var candidates []atRestBatch
	for _, b := range a.storedBatches(r.disk) {
		if b.header.LastOffset() < limit && b.header.BaseOffset >= max(r.model.start, logStart) {
			candidates = append(candidates, b)
		}
	}
	if len(candidates) == 0 {
		return nil
	}
	b := candidates[a.rand.IntN(len(candidates))]
	var byteInBatch int
	kind := a.rand.IntN(5)
	if kind == 0 && r.follower {
		// In a log with offset gaps a base offset that grows into a gap
		// keeps the order and cannot be told from a real gap (a known
		// limit, as in Kafka).
		kind = 3
	}
	switch kind {
	case 0:
		byteInBatch = 4 + a.rand.IntN(4) // base offset
	case 1:
		byteInBatch = 8 + a.rand.IntN(4) // length
	case 2:
		byteInBatch = 16 // magic
	case 3:
		byteInBatch = 17 + a.rand.IntN(4) // crc
	default:
		byteInBatch = 21 + a.rand.IntN(b.header.TotalBytes()-21) // covered by the CRC
	}
	d := &atRestDamage{name: b.name, position: b.position + int64(byteInBatch), mask: 1 << a.rand.IntN(8), base: b.base}
	if err := a.flip(r.disk, d); err != nil {
		return err
	}
	a.corrupted = d
	r.stats.injected++
	r.trace = append(r.trace, fmt.Sprintf("corrupt %s byte %d of batch [%d, %d] mask %#x", b.name, byteInBatch, b.header.BaseOffset, b.header.LastOffset(), d.mask))
	return nil
}

// storedBatches parses the segment files as they are on the disk.
func (a *atRestRun) storedBatches(disk *sim.Disk) []atRestBatch {
	var batches []atRestBatch
	// order-independent: the batches are sorted below.
	for name, data := range a.snapshot(disk).files {
		base, _, _ := parseSegmentFileName(path.Base(name))
		for position := 0; len(data)-position >= record.HeaderBytes; {
			h, err := record.ParseHeader(data[position:])
			if err != nil || h.TotalBytes() > len(data)-position {
				break
			}
			if _, err := record.Validate(data[position : position+h.TotalBytes()]); err != nil {
				break
			}
			batches = append(batches, atRestBatch{name: name, base: base, position: int64(position), header: h})
			position += h.TotalBytes()
		}
	}
	sortBatches(batches)
	return batches
}

func sortBatches(batches []atRestBatch) {
	slices.SortFunc(batches, func(a, b atRestBatch) int {
		return cmp.Or(cmp.Compare(a.base, b.base), cmp.Compare(a.position, b.position))
	})
}

// flip applies (or undoes) a damage durably, bypassing the seed's faults
// and capacity: the device changed, not the log.
func (a *atRestRun) flip(disk *sim.Disk, d *atRestDamage) error {
	disk.ClearFaults()
	disk.SetCapacity(0)
	defer func() {
		a.installFaults(disk)
		disk.SetCapacity(a.capacityBytes)
	}()
	data := readStably(disk, d.name)
	data[d.position] ^= d.mask
	file, err := disk.Create(d.name)
	if err != nil {
		return err
	}
	if _, err := file.Write(data); err != nil {
		return err
	}
	if err := file.Sync(); err != nil {
		return err
	}
	return file.Close()
}

// atRestSnapshot is the segment files and log start checkpoint before an
// Open.
type atRestSnapshot struct {
	files    map[string][]byte
	logStart int64
}

// snapshot reads every segment file (stable reads, so read flips do not
// show) and the log start checkpoint.
func (a *atRestRun) snapshot(disk *sim.Disk) atRestSnapshot {
	snap := atRestSnapshot{files: map[string][]byte{}}
	entries, err := disk.ReadDir(testDir)
	if err != nil {
		return snap
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name, logSuffix) {
			continue
		}
		name := path.Join(testDir, e.Name)
		snap.files[name] = readStably(disk, name)
	}
	snap.logStart, _, _ = readOffsetCheckpoint(disk, testDir, logStartFile)
	return snap
}

// readStably reads a whole file until three reads agree, retrying when
// read flips keep them from agreeing (readWholeFile gives up after 12).
func readStably(disk *sim.Disk, name string) []byte {
	for attempt := 0; ; attempt++ {
		data, err := readWholeFile(disk, name, math.MaxInt32)
		if err == nil {
			return data
		}
		if attempt == 100 {
			panic(fmt.Sprintf("reading %s: %v", name, err))
		}
	}
}

// checkOpen checks what an Open did to the segment files: every file left
// is a prefix of what it was (recovery only truncates, and copies
// byte for byte), new files are empty, and an Open that reported
// corruption removed only segments below the log start.
func (a *atRestRun) checkOpen(r *crashRun, before atRestSnapshot, openErr error) error {
	after := a.snapshot(r.disk)
	corruption := errors.Is(openErr, ErrCorruption)
	// order-independent: every file must pass; only which failure is named
	// first could differ, and a failure ends the run.
	for name, data := range after.files {
		old, existed := before.files[name]
		switch {
		case !existed && len(data) > 0:
			return fmt.Errorf("Open (%v) created %s with %d bytes", openErr, name, len(data))
		case existed && corruption && !bytes.Equal(data, old):
			return fmt.Errorf("Open reported corruption (%v) but changed %s", openErr, name)
		case existed && !bytes.HasPrefix(old, data):
			return fmt.Errorf("Open (%v) changed %s instead of truncating it", openErr, name)
		}
	}
	if !corruption {
		return nil
	}
	// order-independent: as above.
	for name := range before.files {
		if _, kept := after.files[name]; !kept && !below(name, before) {
			return fmt.Errorf("Open reported corruption (%v) but removed %s", openErr, name)
		}
	}
	return nil
}

// below reports whether the segment file name is followed by a segment
// that starts at or before the log start, so that Open deletes it.
func below(name string, snap atRestSnapshot) bool {
	base, _, _ := parseSegmentFileName(path.Base(name))
	for other := range snap.files {
		// order-independent: any match decides.
		if otherBase, _, _ := parseSegmentFileName(path.Base(other)); otherBase > base && otherBase <= snap.logStart {
			return true
		}
	}
	return false
}

// scrub runs after an Open that succeeded with injected corruption: Scrub
// must report it, unless Open deleted the damaged segment below the log
// start (an interrupted retention run had already decided to).
func (a *atRestRun) scrub(r *crashRun) (bool, error) {
	d := a.corrupted
	err := scrubAll(r.log)
	if errors.Is(err, ErrCorruption) {
		r.stats.reportedByScrub++
		return true, a.checkReported(err)
	}
	if err != nil {
		return false, fmt.Errorf("Scrub: %w", err)
	}
	if len(r.log.Segments()) > 0 && r.log.Segments()[0].BaseOffset > d.base {
		r.stats.removedBeforeDetection++
		a.corrupted = nil
		return false, nil
	}
	return false, fmt.Errorf("corruption at rest in %s at byte %d went unreported by Open and Scrub", d.name, d.position)
}

// checkReported checks that the report names the damaged file or the one
// after it (a base offset that grew shows where the next segment starts).
func (a *atRestRun) checkReported(err error) error {
	var c *CorruptionError
	if !errors.As(err, &c) {
		return fmt.Errorf("corruption reported without a *CorruptionError: %w", err)
	}
	base, _, ok := parseSegmentFileName(path.Base(c.File))
	if !ok || base < a.corrupted.base || (base > a.corrupted.base && c.Position != 0 && !strings.Contains(c.Reason, "recovery point")) {
		return fmt.Errorf("corruption injected in %s at byte %d, reported as %w", a.corrupted.name, a.corrupted.position, err)
	}
	return nil
}

// repair undoes the injected damage after recovery reported it.
func (a *atRestRun) repair(r *crashRun) error {
	d := a.corrupted
	if d == nil {
		return errors.New("corruption reported, but none was injected")
	}
	r.trace = append(r.trace, fmt.Sprintf("repair %s byte %d", d.name, d.position))
	a.corrupted = nil
	return a.flip(r.disk, d)
}
