package sim

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The simulated disk's harsher faults: effect counters, corruption at rest,
// latent sector errors, pages dropped after a failed Sync, and crash points
// between two calls of one handler. docs/disk.md describes them for users.

// TornTail names what follows the surviving prefix of a torn write.
type TornTail int

// The kinds of torn tails, indexes of DiskStats.TornTails.
const (
	// TornTailClean: a non-empty prefix of the unsynced data survives and
	// the file ends there.
	TornTailClean TornTail = iota
	// TornTailZero: a prefix survives, followed by zeros up to a larger size.
	TornTailZero
	// TornTailGarbage: a prefix survives, followed by random bytes.
	TornTailGarbage

	// TornTailKinds is the number of kinds.
	TornTailKinds
)

// DiskStats counts what the disk's faults did, not what was armed: a strike
// test asserts on these that a fault class really struck. Every field only
// grows, also across crashes.
type DiskStats struct {
	// CallsFailed counts the calls that returned an error because of a
	// fault (an injected rule, a full disk, a latent sector error), by
	// operation kind. Errors a perfect disk returns too (a missing name, a
	// closed handle) are not counted.
	CallsFailed [DiskOpCount]int64
	// CallsFailedTookEffect counts failed calls of ambiguous rules
	// (DiskFault.Ambiguous) whose operation happened anyway.
	CallsFailedTookEffect int64
	// WritesNoSpace counts Write and Truncate calls cut short by a full
	// disk; WriteBytesRefused the bytes Write could not store for that.
	WritesNoSpace     int64
	WriteBytesRefused int64
	// SyncsNoSpace counts Syncs that failed with core.ErrNoSpace because the
	// disk was full (DiskOptions.SyncNoSpaceProbability).
	SyncsNoSpace int64
	// SyncsLostData counts failed Syncs whose unsynced data did not reach
	// the device.
	SyncsLostData int64
	// PagesDropped counts failed Syncs after which the page cache forgot the
	// unsynced data; BytesDropped the bytes whose content reads changed.
	PagesDropped int64
	BytesDropped int64
	// ReadBitFlips counts transient bit flips (ReadBitFlipProbability).
	ReadBitFlips int64
	// ReadsCorrupted counts ReadAt calls that returned bytes corrupted at
	// rest; BytesReadCorrupted the number of such bytes.
	ReadsCorrupted     int64
	BytesReadCorrupted int64
	// LatentReadsFailed counts ReadAt calls failed by a latent sector error.
	LatentReadsFailed int64
	// TornTails counts torn writes at crashes by kind; TornTailBytes the
	// zero or garbage bytes they added.
	TornTails     [TornTailKinds]int64
	TornTailBytes int64
	// CrashPointsHit counts crash points reached (see SetCrashPoint).
	CrashPointsHit int64
	// Crashes counts calls of Crash.
	Crashes int64
}

// Stats returns the effect counters so far.
func (d *Disk) Stats() DiskStats { return d.stats }

// DiskDamageKind names a lasting fault of the medium.
type DiskDamageKind int

// The kinds of DiskDamage.
const (
	// DamageCorruption: bytes of durable content were changed at rest.
	DamageCorruption DiskDamageKind = iota + 1
	// DamageLatent: reads of the range fail with core.ErrIO until it is cut
	// off by a Truncate or the file is removed.
	DamageLatent
)

// String returns "corruption" or "latent".
func (k DiskDamageKind) String() string {
	switch k {
	case DamageCorruption:
		return "corruption"
	case DamageLatent:
		return "latent"
	}
	return fmt.Sprintf("DiskDamageKind(%d)", int(k))
}

// DiskDamage is the disk's own record of one lasting fault it made: which
// file (by the name it had then), which byte range, and when (virtual time,
// or 0 for a disk that is not bound to a node). A checker may use it as the
// simulator's evidence of what was damaged, independently of the system
// under test.
type DiskDamage struct {
	Kind         DiskDamageKind
	Name         string
	Offset       int64
	LengthBytes  int64
	At           time.Duration
	DurableBytes int64 // the file's durable size when it was damaged
}

// Damage returns every damage record so far, in the order they were made.
func (d *Disk) Damage() []DiskDamage { return slices.Clone(d.damage) }

// Bind ties the disk to the node it serves without wiring crashes: the node's
// Stall pays for sync latency, damage records get the virtual time, and crash
// points crash that node. SetDisk calls it; call it directly for a disk
// installed with SetFS (whose process crashes keep the page cache).
func (d *Disk) Bind(n *Node) {
	if n == nil {
		panic("sim: Disk.Bind(nil)")
	}
	d.owner = n
	d.Stall = n.Stall
}

func (d *Disk) diskNow() time.Duration {
	if d.owner == nil {
		return 0
	}
	return d.owner.s.now
}

// Corrupt flips bytes in [offset, offset+lengthBytes) of the durable content
// of the file name, and in the cached content where it still holds the same
// bytes: every later read and every crash keeps the damage. Every byte of the
// range changes. The range must lie within the part of the file whose cached
// and durable content agree.
func (d *Disk) Corrupt(name string, offset, lengthBytes int64) error {
	inode, err := d.diskDamageTarget(name, offset, lengthBytes)
	if err != nil {
		return err
	}
	from, to := offset, offset+lengthBytes
	durable := slices.Clone(inode.durable)
	current := slices.Clone(inode.current)
	for i := from; i < to; i++ {
		flip := byte(1 + d.rand.IntN(255))
		durable[i] ^= flip
		current[i] ^= flip
	}
	inode.durable = durable
	inode.current = current[:len(current):len(current)]
	inode.corrupt = diskAddRange(inode.corrupt, diskRange{from, to})
	d.diskRecordDamage(DamageCorruption, name, inode, from, to)
	return nil
}

// AddLatentError makes reads overlapping [offset, offset+lengthBytes) of the
// file name fail with core.ErrIO until a Truncate cuts the range off or the
// file is removed, as a bad sector does. The range must lie within the part
// of the file whose cached and durable content agree.
func (d *Disk) AddLatentError(name string, offset, lengthBytes int64) error {
	inode, err := d.diskDamageTarget(name, offset, lengthBytes)
	if err != nil {
		return err
	}
	inode.latent = diskAddRange(inode.latent, diskRange{offset, offset + lengthBytes})
	d.diskRecordDamage(DamageLatent, name, inode, offset, offset+lengthBytes)
	return nil
}

// CorruptRandom corrupts a random range of 1 to lengthMax bytes of a random
// file whose name starts with pathPrefix, drawn from the disk's stream. It
// reports false when no file has durable content to damage.
func (d *Disk) CorruptRandom(pathPrefix string, lengthMax int64) (DiskDamage, bool) {
	return d.diskDamageRandom(DamageCorruption, pathPrefix, lengthMax)
}

// LatentErrorRandom adds a latent sector error over a random range of 1 to
// lengthMax bytes of a random file whose name starts with pathPrefix. It
// reports false when no file has durable content to damage.
func (d *Disk) LatentErrorRandom(pathPrefix string, lengthMax int64) (DiskDamage, bool) {
	return d.diskDamageRandom(DamageLatent, pathPrefix, lengthMax)
}

func (d *Disk) diskDamageRandom(kind DiskDamageKind, pathPrefix string, lengthMax int64) (DiskDamage, bool) {
	if lengthMax < 1 {
		panic("sim: disk damage with lengthMax < 1")
	}
	var names []string
	var sizes []int64
	d.diskWalkFiles(d.root, "", func(name string, inode *diskInode) {
		if size := diskStableBytes(inode); size > 0 && strings.HasPrefix(name, pathPrefix) {
			names = append(names, name)
			sizes = append(sizes, size)
		}
	})
	if len(names) == 0 {
		return DiskDamage{}, false
	}
	i := d.rand.IntN(len(names))
	length := d.rand.Int64Range(1, min(lengthMax, sizes[i]))
	offset := d.rand.Int64Range(0, sizes[i]-length)
	var err error
	if kind == DamageCorruption {
		err = d.Corrupt(names[i], offset, length)
	} else {
		err = d.AddLatentError(names[i], offset, length)
	}
	if err != nil {
		panic(fmt.Sprintf("sim: disk damage of a checked range failed: %v", err))
	}
	return d.damage[len(d.damage)-1], true
}

// StableFile is a file with content that damage at rest may hit.
type StableFile struct {
	Name string
	// StableBytes is the length of the file's leading part whose cached
	// and durable content agree.
	StableBytes int64
}

// StableFiles lists, in name order, the files whose names start with
// pathPrefix and that have stable content (see StableContent). It makes no
// file system call: a fault injector uses it to aim damage.
func (d *Disk) StableFiles(pathPrefix string) []StableFile {
	var files []StableFile
	d.diskWalkFiles(d.root, "", func(name string, inode *diskInode) {
		if size := diskStableBytes(inode); size > 0 && strings.HasPrefix(name, pathPrefix) {
			files = append(files, StableFile{Name: name, StableBytes: size})
		}
	})
	return files
}

// StableContent returns a copy of the leading part of file name whose
// cached and durable content agree: what Corrupt and AddLatentError may
// hit. It makes no file system call, so it counts as no read and meets no
// fault: a fault injector uses it to aim damage at whole records.
func (d *Disk) StableContent(name string) ([]byte, error) {
	if err := diskCheckName("stable content", name, false); err != nil {
		return nil, err
	}
	inode, err := d.diskLookup(name)
	if err != nil {
		return nil, diskError("stable content", name, err)
	}
	if inode.isDir {
		return nil, diskError("stable content", name, errDiskIsDir)
	}
	return slices.Clone(inode.current[:diskStableBytes(inode)]), nil
}

// diskWalkFiles calls f for every file of the current tree, in sorted order.
func (d *Disk) diskWalkFiles(dir *diskInode, prefix string, f func(string, *diskInode)) {
	for _, name := range diskSortedNames(dir.entries) {
		inode := dir.entries[name]
		if inode.isDir {
			d.diskWalkFiles(inode, prefix+name+"/", f)
		} else {
			f(prefix+name, inode)
		}
	}
}

// diskStableBytes returns the length of the leading part of a file whose
// cached and durable content agree: what damage at rest may hit.
func diskStableBytes(inode *diskInode) int64 {
	n := min(len(inode.current), len(inode.durable))
	if inode.extendsDurable && len(inode.lost) == 0 {
		return int64(n)
	}
	for i := range n {
		if inode.current[i] != inode.durable[i] {
			return int64(i)
		}
	}
	return int64(n)
}

// diskDamageTarget checks that name is a file and the range lies within its
// stable content.
func (d *Disk) diskDamageTarget(name string, offset, lengthBytes int64) (*diskInode, error) {
	if err := diskCheckName("damage", name, false); err != nil {
		return nil, err
	}
	inode, err := d.diskLookup(name)
	if err != nil {
		return nil, diskError("damage", name, err)
	}
	if inode.isDir {
		return nil, diskError("damage", name, errDiskIsDir)
	}
	if stable := diskStableBytes(inode); offset < 0 || lengthBytes < 1 || offset+lengthBytes > stable {
		return nil, diskError("damage", name, fmt.Errorf(
			"%w: range [%d, %d) outside the %d stable bytes", errDiskInvalid, offset, offset+lengthBytes, stable))
	}
	return inode, nil
}

func (d *Disk) diskRecordDamage(kind DiskDamageKind, name string, inode *diskInode, from, to int64) {
	record := DiskDamage{Kind: kind, Name: name, Offset: from, LengthBytes: to - from,
		At: d.diskNow(), DurableBytes: int64(len(inode.durable))}
	d.damage = append(d.damage, record)
	if d.owner != nil {
		d.owner.s.Trace("disk-damage %s %s %s [%d,%d)", d.owner.name, kind, name, from, to)
	}
}

// diskAddRange adds r to a list of ranges, merging overlapping neighbours so
// that the list stays short and its overlap counts stay exact.
func diskAddRange(ranges []diskRange, r diskRange) []diskRange {
	merged := make([]diskRange, 0, len(ranges)+1)
	for _, other := range ranges {
		if other.to < r.from || r.to < other.from {
			merged = append(merged, other)
			continue
		}
		r = diskRange{min(r.from, other.from), max(r.to, other.to)}
	}
	merged = append(merged, r)
	slices.SortFunc(merged, func(a, b diskRange) int { return cmp.Compare(a.from, b.from) })
	return merged
}

// diskOverlap returns how many bytes of r the ranges cover (they are
// disjoint).
func diskOverlap(ranges []diskRange, r diskRange) int64 {
	var total int64
	for _, other := range ranges {
		if from, to := max(other.from, r.from), min(other.to, r.to); from < to {
			total += to - from
		}
	}
	return total
}

// diskDropPages makes the cache forget a file's unsynced content after a
// failed Sync: reads return the durable content and zeros past it, the size
// stays. The lost ranges are zeros in the cache now, so no longer special.
func (d *Disk) diskDropPages(inode *diskInode) {
	size := len(inode.current)
	content := make([]byte, size)
	copy(content, inode.durable)
	var changed int64
	for i := range size {
		if content[i] != inode.current[i] {
			changed++
		}
	}
	if changed == 0 {
		return
	}
	d.stats.PagesDropped++
	d.stats.BytesDropped += changed
	inode.current = content
	inode.lost = nil
	inode.extendsDurable = size >= len(inode.durable)
}

// CrashPoint arms a crash between two calls of one handler: the disk lets
// CallsBefore more calls through, and the next call does not happen: the
// node that owns the disk (see Bind) crashes there, inside its handler,
// which does not continue. Only calls made while an event runs and the
// owner is alive count.
type CrashPoint struct {
	// CallsBefore is how many calls still happen before the crash.
	CallsBefore int
	// PowerLoss makes the disk lose what was not synced (Disk.Crash), as a
	// machine crash does, when the node's crash hooks have not done so
	// already (SetDisk wires Disk.Crash as one). Without it, and without
	// SetDisk, the crash is a process crash that keeps the page cache.
	PowerLoss bool
	// OnHit, if set, runs after the node crashed, for the harness to note
	// the crash and schedule a restart.
	OnHit func()
}

type diskCrashPoint struct {
	point     CrashPoint
	callsLeft int
}

// crashPointHit is the panic value that unwinds a handler from a crash point
// to the scheduler, which recovers it and crashes the node.
type crashPointHit struct {
	disk *Disk
	node *Node
	op   DiskOp
	name string
	// point is the crash point that was hit.
	point CrashPoint
}

// SetCrashPoint arms p, replacing any armed crash point. The disk must be
// bound to a node (Bind or SetDisk).
func (d *Disk) SetCrashPoint(p CrashPoint) {
	if d.owner == nil {
		panic("sim: SetCrashPoint on a disk bound to no node")
	}
	if p.CallsBefore < 0 {
		panic("sim: SetCrashPoint with a negative CallsBefore")
	}
	d.crashPoint = &diskCrashPoint{point: p, callsLeft: p.CallsBefore}
	d.owner.s.Trace("crash-point-armed %s calls=%d", d.owner.name, p.CallsBefore)
}

// ClearCrashPoint disarms the crash point, if any.
func (d *Disk) ClearCrashPoint() { d.crashPoint = nil }

// CrashPointArmed reports whether a crash point is armed and not yet hit.
func (d *Disk) CrashPointArmed() bool { return d.crashPoint != nil }

// diskCall is the first thing every FS and File method does: it counts the
// call toward an armed crash point and, when the point is reached, unwinds
// the handler with a panic that the scheduler recovers. While that panic
// unwinds, deferred calls of the handler hit it again, so that none of them
// happens either.
func (d *Disk) diskCall(op DiskOp, name string) {
	if d.crashHit != nil {
		panic(*d.crashHit)
	}
	p := d.crashPoint
	if p == nil || !d.owner.alive || !d.owner.s.executing {
		return
	}
	if p.callsLeft > 0 {
		p.callsLeft--
		return
	}
	d.crashPoint = nil
	d.stats.CrashPointsHit++
	hit := crashPointHit{disk: d, node: d.owner, op: op, name: name, point: p.point}
	d.crashHit = &hit
	panic(hit)
}

// crashAtPoint runs in the scheduler after a crash point unwound a handler:
// the owner crashes (its events are dropped, its connections treated as by
// Node.Crash), the disk loses unsynced data if asked, then the harness hears.
func (s *Scheduler) crashAtPoint(hit crashPointHit) {
	d, n := hit.disk, hit.node
	d.crashHit = nil
	s.Trace("crash-point %s op=%s name=%q power-loss=%v", n.name, hit.op, hit.name, hit.point.PowerLoss)
	generation := d.generation
	n.Crash()
	if hit.point.PowerLoss && d.generation == generation {
		d.Crash()
	}
	if hit.point.OnHit != nil {
		hit.point.OnHit()
	}
}

// LeaveFree makes the disk full but for freeBytes (0: completely full): the
// capacity becomes what the disk holds now plus freeBytes, and stays so until
// SetCapacity changes it. Space comes back only as files shrink or are
// removed (or a crash drops unsynced data), as on a disk that another tenant
// filled, so a long or permanent full disk lasts until the harness frees it.
func (d *Disk) LeaveFree(freeBytes int64) {
	if freeBytes < 0 {
		panic("sim: LeaveFree with negative bytes")
	}
	d.SetCapacity(d.usedBytes + freeBytes)
	if d.owner != nil {
		d.owner.s.Trace("disk-leave-free %s bytes=%d", d.owner.name, freeBytes)
	}
}

// FreeBytes returns the room left under the capacity, or -1 when the
// capacity is unlimited.
func (d *Disk) FreeBytes() int64 {
	if d.options.CapacityBytes == 0 {
		return -1
	}
	return max(d.options.CapacityBytes-d.usedBytes, 0)
}
