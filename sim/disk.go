package sim

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/kafkasim/kafkasim/core"
)

// The simulated disk: an in-memory core.FS that remembers, for every file and
// directory, what is durable besides what is current, and that on Crash keeps
// only the durable state (plus torn writes). The model follows Pebble's
// vfs.MemFS with CrashClone; docs/disk.md describes it for users.
//
// Durability, precisely:
//   - A file's content is durable up to its last successful Sync. Write and
//     Truncate change only the current content.
//   - A directory entry (name -> file or subdirectory) is durable when SyncDir
//     of the directory holding it succeeds. MkdirAll creates directories whose
//     own entries in their parents are volatile, exactly like files: a created
//     directory survives a crash only once its parent is synced.
//   - The root "." always exists.
//   - A rename between two directories is one journal transaction: syncing
//     either directory makes both names of the rename durable as they are now.
//     (Renames within one directory need no special care: one SyncDir covers
//     both names.)
//   - On Crash the tree is rebuilt from the root through durable entries only.
//     A file or directory reachable by no durable entry is gone.

const (
	// diskRenamesPendingMax bounds the cross-directory renames remembered
	// until one of their directories is synced.
	diskRenamesPendingMax = 4096
	// diskLostRangesMax bounds the byte ranges a file remembers as lost by
	// failed Syncs; beyond it the last range is widened (losing more, which is
	// a legal outcome too).
	diskLostRangesMax = 16
	// diskNameBytesMax bounds a name, as PATH_MAX does on Linux.
	diskNameBytesMax = 4096
	// diskSyncFailureDurableProbability is the chance that the data a failed
	// Sync covered reached the device anyway.
	diskSyncFailureDurableProbability = 0.5
)

// DiskOptions configures a simulated disk. The zero value is a perfect,
// unlimited disk.
type DiskOptions struct {
	// CapacityBytes bounds the sum of the current sizes of all linked files; 0
	// means unlimited. A write beyond it writes the prefix that fits and fails
	// with core.ErrNoSpace.
	CapacityBytes int64
	// TornWriteProbability is, per file with unsynced appended data at a
	// Crash, the chance that a random prefix of that data survives instead of
	// none of it.
	TornWriteProbability float64
	// ReadBitFlipProbability is, per ReadAt call, the chance that one random
	// bit of the returned bytes is flipped. The stored data is unchanged, so
	// the flip is transient.
	ReadBitFlipProbability float64
	// SyncLatency is charged through Disk.Stall on every Sync and SyncDir, to
	// model a slow fsync.
	SyncLatency time.Duration

	// TornZeroTailProbability and TornGarbageTailProbability are, per torn
	// write, the chances that the surviving prefix is followed by a tail of
	// zeros or of random bytes (the new size reached the device but the data
	// did not, as with ext4's data=writeback after a power loss) instead of
	// ending cleanly. Their sum must not exceed 1.
	TornZeroTailProbability    float64
	TornGarbageTailProbability float64
	// SyncFailureDropPagesProbability is, per failed Sync whose unsynced data
	// did not reach the device, the chance that the kernel also drops that
	// data from its page cache, as Linux does after a writeback error: later
	// reads return the durable content, and zeros past it.
	SyncFailureDropPagesProbability float64
	// SyncNoSpaceProbability is, per Sync of a file with unsynced data while
	// the disk is full (CapacityBytes reached), the chance that the Sync fails
	// with core.ErrNoSpace, as fsync can with delayed allocation. Such a Sync
	// is a failed Sync in every other respect.
	SyncNoSpaceProbability float64
}

// validate checks the options' ranges.
func (opts DiskOptions) validate() error {
	if opts.CapacityBytes < 0 || opts.SyncLatency < 0 {
		return errors.New("sim: disk options with a negative capacity or sync latency")
	}
	probabilities := []float64{opts.TornWriteProbability, opts.ReadBitFlipProbability,
		opts.TornZeroTailProbability, opts.TornGarbageTailProbability,
		opts.SyncFailureDropPagesProbability, opts.SyncNoSpaceProbability,
		opts.TornZeroTailProbability + opts.TornGarbageTailProbability}
	for _, p := range probabilities {
		if !(p >= 0 && p <= 1) {
			return fmt.Errorf("sim: disk option probability %v outside [0, 1]", p)
		}
	}
	return nil
}

// DiskOp names a kind of disk operation, for fault injection.
type DiskOp int

// The operations a DiskFault can match. DiskOpAny is the zero value and
// matches every operation.
const (
	DiskOpAny DiskOp = iota
	DiskOpCreate
	DiskOpOpen
	DiskOpWrite
	DiskOpRead
	DiskOpSync
	DiskOpTruncate
	DiskOpRemove
	DiskOpRename
	DiskOpMkdir
	DiskOpReadDir
	DiskOpSyncDir
	DiskOpRemoveAll
	DiskOpSize
	DiskOpClose

	// DiskOpCount is the number of operation kinds, DiskOpAny included: the
	// length of per-kind counters such as DiskStats.CallsFailed.
	DiskOpCount
)

var diskOpNames = [DiskOpCount]string{
	DiskOpAny: "any", DiskOpCreate: "create", DiskOpOpen: "open",
	DiskOpWrite: "write", DiskOpRead: "read", DiskOpSync: "sync",
	DiskOpTruncate: "truncate", DiskOpRemove: "remove", DiskOpRename: "rename",
	DiskOpMkdir: "mkdir", DiskOpReadDir: "readdir", DiskOpSyncDir: "syncdir",
	DiskOpRemoveAll: "removeall", DiskOpSize: "size", DiskOpClose: "close",
}

// String returns the operation's lower-case name.
func (op DiskOp) String() string {
	if op < 0 || int(op) >= len(diskOpNames) {
		return fmt.Sprintf("DiskOp(%d)", int(op))
	}
	return diskOpNames[op]
}

// DiskFault is a fault rule: operations of kind Op (DiskOpAny for all) on a
// name starting with PathPrefix fail with Err. The first After matching
// operations pass; after that each match fails with chance Probability (0
// means always) until Count failures have been injected (0 means no limit).
// A rule for DiskOpRemove also matches RemoveAll (as it did before RemoveAll
// had a kind of its own); DiskOpRemoveAll matches RemoveAll only.
//
// What a failure does depends on the operation. A failed Write writes a random
// prefix of its data (possibly none) and reports how much. A failed Sync or
// SyncDir leaves durability unknown: whether the unsynced state reached the
// device is drawn, and data that did not stays lost even if a later Sync
// succeeds (Linux "fsyncgate"). A failed Close still releases the handle, as
// close(2) does. Create, Remove, RemoveAll, Rename, MkdirAll and Truncate
// have no effect when they fail, unless Ambiguous is set: then whether the
// operation took effect anyway is drawn (one half each), which core.FS allows
// (a failed Rename leaves the old or the new name, a failed Truncate the old
// or the new size, a failed Create maybe an empty file). Every other failed
// operation (Open, ReadAt, ReadDir, Size) has no effect.
type DiskFault struct {
	Op          DiskOp
	PathPrefix  string
	After       int
	Probability float64
	Count       int
	Err         error // core.ErrIO, core.ErrNoSpace, or any error
	Ambiguous   bool
}

// diskFaultRule is an installed DiskFault with its counters.
type diskFaultRule struct {
	fault    DiskFault
	matched  int
	injected int
}

// Disk is a simulated disk; *Disk implements core.FS. It is used by one node
// at a time and is not safe for concurrent use.
type Disk struct {
	// Stall, if set, is called with SyncLatency on every Sync and SyncDir
	// (only when SyncLatency > 0). The scheduler installs it to keep the node
	// busy for that long.
	Stall func(time.Duration)

	rand       *core.Rand
	options    DiskOptions
	root       *diskInode
	usedBytes  int64
	generation uint64 // incremented by Crash; older handles are invalid
	inodeNext  uint64 // id of the next inode, for Describe
	renames    []diskRename
	faults     []*diskFaultRule

	// owner is the node whose crash points this disk raises (see Bind).
	owner *Node
	// crashPoint is the armed crash point, nil if none; crashHit is the hit
	// being unwound, which every further call re-raises until the scheduler
	// has crashed the node.
	crashPoint *diskCrashPoint
	crashHit   *crashPointHit
	// stats counts the effects of faults; damage records the corruption at
	// rest and latent sector errors this disk made.
	stats  DiskStats
	damage []DiskDamage
}

var _ core.FS = (*Disk)(nil)

// diskInode is a file or a directory.
type diskInode struct {
	id     uint64
	isDir  bool
	linked bool // the current tree names it (its bytes count as used)

	// Files. current is what reads see. durable is what a crash keeps; it is
	// never modified in place, so it may share a backing array with current
	// (Truncate caps current's capacity so that later appends reallocate
	// rather than overwrite durable bytes).
	current []byte
	durable []byte
	// extendsDurable is true while current starts with durable, that is while
	// the unsynced part is only appended data: a crash may then keep a torn
	// prefix of it.
	extendsDurable bool
	lost           []diskRange // ranges a failed Sync lost; zero on the device
	// corrupt are the ranges corrupted at rest, latent the ranges whose reads
	// fail (latent sector errors); both in file offsets, both on the device,
	// so they survive crashes.
	corrupt []diskRange
	latent  []diskRange

	// Directories.
	entries        map[string]*diskInode
	durableEntries map[string]*diskInode
}

// diskRange is the half-open byte range [from, to).
type diskRange struct{ from, to int64 }

// diskRename links the two directories of a cross-directory rename so that
// syncing either makes both names durable.
type diskRename struct {
	source, target   *diskInode
	oldName, newName string
}

// NewDisk returns an empty simulated disk drawing all its randomness from
// rand.
func NewDisk(rand *core.Rand, opts DiskOptions) *Disk {
	if rand == nil {
		panic("sim: NewDisk with a nil rand")
	}
	if err := opts.validate(); err != nil {
		panic(err)
	}
	d := &Disk{rand: rand, options: opts}
	d.root = d.newInode(true)
	d.root.linked = true
	return d
}

func (d *Disk) newInode(isDir bool) *diskInode {
	d.inodeNext++
	inode := &diskInode{id: d.inodeNext, isDir: isDir, extendsDurable: true}
	if isDir {
		inode.entries = make(map[string]*diskInode)
		inode.durableEntries = make(map[string]*diskInode)
	}
	return inode
}

// InjectFault installs a fault rule. Rules are consulted in the order they
// were installed; the first that fires decides the error.
func (d *Disk) InjectFault(f DiskFault) {
	if f.Err == nil {
		panic("sim: DiskFault without an Err")
	}
	if f.Probability < 0 || f.Probability > 1 || f.After < 0 || f.Count < 0 {
		panic("sim: DiskFault with a probability outside [0, 1] or a negative count")
	}
	d.faults = append(d.faults, &diskFaultRule{fault: f})
}

// ClearFaults removes every fault rule.
func (d *Disk) ClearFaults() {
	d.faults = nil
}

// SetCapacity changes the capacity (0 means unlimited). Lowering it below
// UsedBytes makes every later growing write fail with core.ErrNoSpace.
func (d *Disk) SetCapacity(bytes int64) {
	if bytes < 0 {
		panic("sim: SetCapacity with a negative capacity")
	}
	d.options.CapacityBytes = bytes
}

// UsedBytes returns the sum of the current sizes of all files that have a
// name. Files removed while open are not counted.
func (d *Disk) UsedBytes() int64 {
	return d.usedBytes
}

// diskFault returns the injected error for op on name, or nil. The failure
// is counted in the stats.
func (d *Disk) diskFault(op DiskOp, name string) error {
	_, err := d.diskFaultAmbiguous(op, name)
	return err
}

// diskFaultAmbiguous is diskFault for the operations that may take effect
// although they fail (DiskFault.Ambiguous): tookEffect says whether this one
// did, and is drawn only for ambiguous rules.
func (d *Disk) diskFaultAmbiguous(op DiskOp, name string) (tookEffect bool, err error) {
	for _, rule := range d.faults {
		f := rule.fault
		matches := f.Op == DiskOpAny || f.Op == op || (f.Op == DiskOpRemove && op == DiskOpRemoveAll)
		if !matches || !strings.HasPrefix(name, f.PathPrefix) {
			continue
		}
		rule.matched++
		if rule.matched <= f.After || (f.Count > 0 && rule.injected >= f.Count) {
			continue
		}
		if f.Probability > 0 && !d.rand.Chance(f.Probability) {
			continue
		}
		rule.injected++
		d.stats.CallsFailed[op]++
		if f.Ambiguous && d.rand.Chance(0.5) {
			d.stats.CallsFailedTookEffect++
			tookEffect = true
		}
		return tookEffect, fmt.Errorf("sim disk: injected fault on %s %q: %w", op, name, f.Err)
	}
	return false, nil
}

// diskStall charges the sync latency.
func (d *Disk) diskStall() {
	if d.Stall != nil && d.options.SyncLatency > 0 {
		d.Stall(d.options.SyncLatency)
	}
}

// Errors of the simulated disk that have no io/fs sentinel.
var (
	errDiskBadName  = errors.New("invalid file name")
	errDiskNotDir   = errors.New("not a directory")
	errDiskIsDir    = errors.New("is a directory")
	errDiskNotEmpty = fmt.Errorf("directory not empty: %w", fs.ErrExist)
	errDiskInvalid  = errors.New("invalid argument")
)

func diskError(op, name string, err error) error {
	return fmt.Errorf("sim disk: %s %q: %w", op, name, err)
}

// diskCheckName applies the naming rules of core.FS (the same rules as
// disk.CheckName, which this package may not import): non-empty, clean,
// relative, inside the root, no NUL or backslash. allowRoot says whether "."
// is acceptable.
func diskCheckName(op, name string, allowRoot bool) error {
	if diskComponentTooLong(name) {
		// ENAMETOOLONG, as a real file system refuses a name component
		// longer than 255 bytes.
		return diskError(op, name, errDiskNameTooLong)
	}
	bad := name == "" || len(name) > diskNameBytesMax ||
		strings.ContainsAny(name, "\x00\\") || strings.HasPrefix(name, "/") ||
		path.Clean(name) != name || name == ".." || strings.HasPrefix(name, "../") ||
		(name == "." && !allowRoot)
	if bad {
		return diskError(op, name, errDiskBadName)
	}
	return nil
}

// diskComponentBytesMax is the longest name component real file systems
// (ext4, xfs) accept.
const diskComponentBytesMax = 255

// errDiskNameTooLong is ENAMETOOLONG.
var errDiskNameTooLong = errors.New("file name too long")

// diskComponentTooLong reports whether a component of name is longer than
// diskComponentBytesMax.
func diskComponentTooLong(name string) bool {
	for _, part := range strings.Split(name, "/") {
		if len(part) > diskComponentBytesMax {
			return true
		}
	}
	return false
}

// diskLookup returns the inode name refers to in the current tree.
func (d *Disk) diskLookup(name string) (*diskInode, error) {
	inode := d.root
	if name == "." {
		return inode, nil
	}
	for component := range strings.SplitSeq(name, "/") {
		if !inode.isDir {
			return nil, errDiskNotDir
		}
		next, ok := inode.entries[component]
		if !ok {
			return nil, fs.ErrNotExist
		}
		inode = next
	}
	return inode, nil
}

// diskParent returns the directory holding name and name's base.
func (d *Disk) diskParent(name string) (*diskInode, string, error) {
	dir, err := d.diskLookup(path.Dir(name))
	if err != nil {
		return nil, "", err
	}
	if !dir.isDir {
		return nil, "", errDiskNotDir
	}
	return dir, path.Base(name), nil
}

// diskLink names inode in the current tree, counting its bytes as used.
func (d *Disk) diskLink(dir *diskInode, base string, inode *diskInode) {
	if _, exists := dir.entries[base]; exists || inode.linked {
		panic("sim: disk link over an existing entry or of a linked inode")
	}
	dir.entries[base] = inode
	inode.linked = true
	d.usedBytes += int64(len(inode.current))
}

// diskUnlink removes base from dir, and its whole subtree from the used bytes.
func (d *Disk) diskUnlink(dir *diskInode, base string) {
	inode, ok := dir.entries[base]
	if !ok || !inode.linked {
		panic("sim: disk unlink of a missing entry")
	}
	delete(dir.entries, base)
	d.diskUnlinkTree(inode)
}

func (d *Disk) diskUnlinkTree(inode *diskInode) {
	inode.linked = false
	d.usedBytes -= int64(len(inode.current))
	if d.usedBytes < 0 {
		panic("sim: disk used bytes below zero")
	}
	for _, child := range inode.entries { // order-independent: a sum and flags
		d.diskUnlinkTree(child)
	}
}

// Create implements core.FS. Creating an existing file truncates that same
// file (as O_TRUNC does); the truncation is durable only after Sync.
func (d *Disk) Create(name string) (core.File, error) {
	d.diskCall(DiskOpCreate, name)
	if err := diskCheckName("create", name, false); err != nil {
		return nil, err
	}
	dir, base, err := d.diskParent(name)
	if err != nil {
		return nil, diskError("create", name, err)
	}
	inode, exists := dir.entries[base]
	if exists && inode.isDir {
		return nil, diskError("create", name, errDiskIsDir)
	}
	tookEffect, failure := d.diskFaultAmbiguous(DiskOpCreate, name)
	if failure != nil && !tookEffect {
		return nil, failure
	}
	if exists {
		d.diskResize(inode, 0)
	} else {
		inode = d.newInode(false)
		d.diskLink(dir, base, inode)
	}
	if failure != nil {
		return nil, failure
	}
	return d.diskOpenHandle(inode, name), nil
}

// Open implements core.FS.
func (d *Disk) Open(name string) (core.File, error) {
	d.diskCall(DiskOpOpen, name)
	if err := diskCheckName("open", name, false); err != nil {
		return nil, err
	}
	inode, err := d.diskLookup(name)
	if err != nil {
		return nil, diskError("open", name, err)
	}
	if inode.isDir {
		return nil, diskError("open", name, errDiskIsDir)
	}
	if err := d.diskFault(DiskOpOpen, name); err != nil {
		return nil, err
	}
	return d.diskOpenHandle(inode, name), nil
}

// Remove implements core.FS.
func (d *Disk) Remove(name string) error {
	d.diskCall(DiskOpRemove, name)
	if err := diskCheckName("remove", name, false); err != nil {
		return err
	}
	dir, base, err := d.diskParent(name)
	if err != nil {
		return diskError("remove", name, err)
	}
	inode, ok := dir.entries[base]
	if !ok {
		return diskError("remove", name, fs.ErrNotExist)
	}
	if inode.isDir && len(inode.entries) > 0 {
		return diskError("remove", name, errDiskNotEmpty)
	}
	tookEffect, failure := d.diskFaultAmbiguous(DiskOpRemove, name)
	if failure == nil || tookEffect {
		d.diskUnlink(dir, base)
	}
	return failure
}

// RemoveAll implements core.FS. Like os.RemoveAll, a missing name or a
// missing parent is success.
func (d *Disk) RemoveAll(name string) error {
	d.diskCall(DiskOpRemoveAll, name)
	if err := diskCheckName("remove all", name, false); err != nil {
		return err
	}
	dir, base, err := d.diskParent(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return diskError("remove all", name, err)
	}
	if _, ok := dir.entries[base]; !ok {
		return nil
	}
	tookEffect, failure := d.diskFaultAmbiguous(DiskOpRemoveAll, name)
	if failure == nil || tookEffect {
		d.diskUnlink(dir, base)
	}
	return failure
}

// Rename implements core.FS with rename(2) semantics: a file replaces a file,
// a directory replaces an empty directory, and a directory cannot move below
// itself.
func (d *Disk) Rename(oldName, newName string) error {
	what := oldName + " -> " + newName
	d.diskCall(DiskOpRename, what)
	if err := diskCheckName("rename", oldName, false); err != nil {
		return err
	}
	if err := diskCheckName("rename", newName, false); err != nil {
		return err
	}
	source, oldBase, err := d.diskParent(oldName)
	if err != nil {
		return diskError("rename", what, err)
	}
	inode, ok := source.entries[oldBase]
	if !ok {
		return diskError("rename", what, fs.ErrNotExist)
	}
	target, newBase, err := d.diskParent(newName)
	if err != nil {
		return diskError("rename", what, err)
	}
	if err := diskCheckRenameTarget(inode, target.entries[newBase], oldName, newName); err != nil {
		return diskError("rename", what, err)
	}
	if target.entries[newBase] == inode {
		return nil // Renaming a name onto itself changes nothing.
	}
	if source != target && len(d.renames) >= diskRenamesPendingMax {
		return diskError("rename", what, fmt.Errorf(
			"more than %d cross-directory renames pending a SyncDir", diskRenamesPendingMax))
	}
	tookEffect, failure := d.diskFaultAmbiguous(DiskOpRename, oldName)
	if failure == nil {
		tookEffect, failure = d.diskFaultAmbiguous(DiskOpRename, newName)
	}
	if failure != nil && !tookEffect {
		return failure
	}
	if _, exists := target.entries[newBase]; exists {
		d.diskUnlink(target, newBase)
	}
	delete(source.entries, oldBase)
	target.entries[newBase] = inode
	if source != target {
		d.renames = append(d.renames, diskRename{source, target, oldBase, newBase})
	}
	return failure
}

// diskCheckRenameTarget applies rename(2)'s rules on what may be replaced.
// existing is the inode currently at newName, or nil.
func diskCheckRenameTarget(inode, existing *diskInode, oldName, newName string) error {
	switch {
	case inode.isDir && strings.HasPrefix(newName, oldName+"/"):
		return fmt.Errorf("%w: a directory cannot move below itself", errDiskInvalid)
	case existing == nil || existing == inode:
		return nil
	case inode.isDir && !existing.isDir:
		return errDiskNotDir
	case inode.isDir && len(existing.entries) > 0:
		return errDiskNotEmpty
	case !inode.isDir && existing.isDir:
		return errDiskIsDir
	}
	return nil
}

// MkdirAll implements core.FS. New directories are volatile entries of their
// parents until the parents are synced.
func (d *Disk) MkdirAll(dir string) error {
	d.diskCall(DiskOpMkdir, dir)
	if err := diskCheckName("mkdir", dir, true); err != nil {
		return err
	}
	tookEffect, failure := d.diskFaultAmbiguous(DiskOpMkdir, dir)
	if failure != nil && !tookEffect {
		return failure
	}
	if dir == "." {
		return failure
	}
	inode := d.root
	for component := range strings.SplitSeq(dir, "/") {
		next, ok := inode.entries[component]
		if !ok {
			next = d.newInode(true)
			d.diskLink(inode, component, next)
		}
		if !next.isDir {
			return diskError("mkdir", dir, errDiskNotDir)
		}
		inode = next
	}
	return failure
}

// ReadDir implements core.FS.
func (d *Disk) ReadDir(dir string) ([]core.DirEntry, error) {
	d.diskCall(DiskOpReadDir, dir)
	if err := diskCheckName("readdir", dir, true); err != nil {
		return nil, err
	}
	inode, err := d.diskLookup(dir)
	if err != nil {
		return nil, diskError("readdir", dir, err)
	}
	if !inode.isDir {
		return nil, diskError("readdir", dir, errDiskNotDir)
	}
	if err := d.diskFault(DiskOpReadDir, dir); err != nil {
		return nil, err
	}
	names := diskSortedNames(inode.entries)
	result := make([]core.DirEntry, 0, len(names))
	for _, name := range names {
		result = append(result, core.DirEntry{Name: name, IsDir: inode.entries[name].isDir})
	}
	return result, nil
}

func diskSortedNames(entries map[string]*diskInode) []string {
	names := make([]string, 0, len(entries))
	for name := range entries { // order-independent: sorted below
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// SyncDir implements core.FS. An injected failure leaves it unknown whether
// the entries became durable; the outcome is drawn.
func (d *Disk) SyncDir(dir string) error {
	d.diskCall(DiskOpSyncDir, dir)
	if err := diskCheckName("syncdir", dir, true); err != nil {
		return err
	}
	inode, err := d.diskLookup(dir)
	if err != nil {
		return diskError("syncdir", dir, err)
	}
	if !inode.isDir {
		return diskError("syncdir", dir, errDiskNotDir)
	}
	d.diskStall()
	if err := d.diskFault(DiskOpSyncDir, dir); err != nil {
		if d.rand.Chance(diskSyncFailureDurableProbability) {
			d.diskSyncDir(inode)
		}
		return err
	}
	d.diskSyncDir(inode)
	return nil
}

// diskSyncDir makes dir's entries durable, with both names of every pending
// cross-directory rename that involves dir.
func (d *Disk) diskSyncDir(dir *diskInode) {
	dir.durableEntries = make(map[string]*diskInode, len(dir.entries))
	for name, inode := range dir.entries { // order-independent: a map copy
		dir.durableEntries[name] = inode
	}
	kept := d.renames[:0]
	for _, rename := range d.renames {
		if rename.source != dir && rename.target != dir {
			kept = append(kept, rename)
			continue
		}
		diskMirrorEntry(rename.source, rename.oldName)
		diskMirrorEntry(rename.target, rename.newName)
	}
	clear(d.renames[len(kept):])
	d.renames = kept
}

// diskMirrorEntry makes the current state of one name of dir durable.
func diskMirrorEntry(dir *diskInode, name string) {
	if inode, ok := dir.entries[name]; ok {
		dir.durableEntries[name] = inode
	} else {
		delete(dir.durableEntries, name)
	}
}

// diskFile is an open file of a Disk.
type diskFile struct {
	disk       *Disk
	inode      *diskInode
	name       string // the name it was opened with, for errors and faults
	generation uint64 // the disk's generation at open; a crash invalidates it
	closed     bool
}

var _ core.File = (*diskFile)(nil)

func (d *Disk) diskOpenHandle(inode *diskInode, name string) *diskFile {
	if inode.isDir {
		panic("sim: disk handle for a directory")
	}
	return &diskFile{disk: d, inode: inode, name: name, generation: d.generation}
}

// diskCheck returns an error wrapping fs.ErrClosed if the handle was closed or
// outlived a crash.
func (f *diskFile) diskCheck(op string) error {
	if f.closed {
		return diskError(op, f.name, fs.ErrClosed)
	}
	if f.generation != f.disk.generation {
		return diskError(op, f.name, fmt.Errorf("the disk crashed: %w", fs.ErrClosed))
	}
	return nil
}

// Write implements core.File. An injected fault writes a random prefix of p;
// a full disk writes the prefix that fits.
func (f *diskFile) Write(p []byte) (int, error) {
	f.disk.diskCall(DiskOpWrite, f.name)
	if err := f.diskCheck("write"); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	d := f.disk
	if err := d.diskFault(DiskOpWrite, f.name); err != nil {
		n := d.rand.IntN(len(p) + 1)
		return d.diskAppend(f.inode, p[:n], f.name, err)
	}
	return d.diskAppend(f.inode, p, f.name, nil)
}

// diskAppend appends p, or the prefix of it that fits within the capacity,
// and returns the bytes written with failure (nil if none).
func (d *Disk) diskAppend(inode *diskInode, p []byte, name string, failure error) (int, error) {
	requested := len(p)
	capacity := d.options.CapacityBytes
	if inode.linked && capacity > 0 && d.usedBytes+int64(len(p)) > capacity {
		room := max(capacity-d.usedBytes, 0)
		p = p[:room]
		if failure == nil {
			d.stats.CallsFailed[DiskOpWrite]++
		}
		d.stats.WritesNoSpace++
		failure = diskError("write", name, core.ErrNoSpace)
	}
	// Appending never overwrites durable bytes: current is either longer
	// than durable, or its capacity was capped when it was shrunk, so append
	// copies into a new array.
	if inode.isDir {
		panic("sim: disk append to a directory")
	}
	inode.current = append(inode.current, p...)
	if inode.linked {
		d.usedBytes += int64(len(p))
	}
	if failure != nil && len(p) < requested {
		d.stats.WriteBytesRefused += int64(requested - len(p))
	}
	return len(p), failure
}

// ReadAt implements core.File. With ReadBitFlipProbability one bit of the
// returned bytes is flipped; the stored data stays intact.
func (f *diskFile) ReadAt(p []byte, off int64) (int, error) {
	f.disk.diskCall(DiskOpRead, f.name)
	if err := f.diskCheck("read"); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, diskError("read", f.name, fmt.Errorf("%w: negative offset %d", errDiskInvalid, off))
	}
	d := f.disk
	if err := d.diskFault(DiskOpRead, f.name); err != nil {
		return 0, err
	}
	content := f.inode.current
	if len(p) == 0 {
		return 0, nil
	}
	if off >= int64(len(content)) {
		return 0, io.EOF
	}
	read := diskRange{off, off + int64(min(len(p), len(content)-int(off)))}
	if diskOverlap(f.inode.latent, read) > 0 {
		d.stats.CallsFailed[DiskOpRead]++
		d.stats.LatentReadsFailed++
		return 0, diskError("read", f.name, fmt.Errorf("latent sector error: %w", core.ErrIO))
	}
	n := copy(p, content[off:])
	if corrupted := diskOverlap(f.inode.corrupt, read); corrupted > 0 {
		d.stats.ReadsCorrupted++
		d.stats.BytesReadCorrupted += corrupted
	}
	if d.options.ReadBitFlipProbability > 0 && d.rand.Chance(d.options.ReadBitFlipProbability) {
		bit := d.rand.IntN(n * 8)
		p[bit/8] ^= 1 << (bit % 8)
		d.stats.ReadBitFlips++
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Sync implements core.File. An injected failure leaves durability unknown:
// whether the unsynced data reached the device is drawn, and if it did not,
// it stays lost even if a later Sync succeeds.
func (f *diskFile) Sync() error { return f.sync(-1) }

// SyncPrefix implements core.PrefixSyncer: like Sync, but a file that only
// grew by appends since it was last synced becomes durable up to exactly
// sizeBytes, not up to its current size, the least a real fsync started at
// that size promises. Any other file is synced whole.
func (f *diskFile) SyncPrefix(sizeBytes int64) error { return f.sync(sizeBytes) }

// sync syncs the file, or with prefixBytes >= 0 just that prefix.
func (f *diskFile) sync(prefixBytes int64) error {
	f.disk.diskCall(DiskOpSync, f.name)
	if err := f.diskCheck("sync"); err != nil {
		return err
	}
	d := f.disk
	d.diskStall()
	err := d.diskFault(DiskOpSync, f.name)
	if err == nil {
		err = d.diskSyncNoSpace(f)
	}
	if err != nil {
		d.diskSyncFailed(f.inode)
		return err
	}
	if prefixBytes >= 0 && diskSyncPrefix(f.inode, prefixBytes) {
		return nil
	}
	diskSyncFile(f.inode)
	return nil
}

// diskSyncPrefix makes the first prefixBytes of an append-only file
// durable, and reports whether it could: the file must extend its durable
// content (no lost ranges, no rewrite) and the prefix must lie between the
// durable and the current size. A prefix already durable is left as is.
func diskSyncPrefix(inode *diskInode, prefixBytes int64) bool {
	size := int64(len(inode.current))
	if !inode.extendsDurable || len(inode.lost) > 0 || prefixBytes >= size {
		return false
	}
	if prefixBytes <= int64(len(inode.durable)) {
		return true
	}
	inode.durable = inode.current[:prefixBytes:prefixBytes]
	return true
}

// diskSyncNoSpace returns core.ErrNoSpace, with SyncNoSpaceProbability, for
// a Sync of unsynced data on a full disk: delayed allocation finds no block.
func (d *Disk) diskSyncNoSpace(f *diskFile) error {
	p := d.options.SyncNoSpaceProbability
	capacity := d.options.CapacityBytes
	if p == 0 || capacity == 0 || d.usedBytes < capacity || diskSynced(f.inode) || !d.rand.Chance(p) {
		return nil
	}
	d.stats.CallsFailed[DiskOpSync]++
	d.stats.SyncsNoSpace++
	return diskError("sync", f.name, fmt.Errorf("delayed allocation: %w", core.ErrNoSpace))
}

// diskSynced reports whether a file's current content is all durable.
func diskSynced(inode *diskInode) bool {
	return inode.extendsDurable && len(inode.current) == len(inode.durable) && len(inode.lost) == 0
}

// diskSyncFailed applies a failed Sync: whether the unsynced data reached the
// device is drawn; if it did not, it stays lost, and with
// SyncFailureDropPagesProbability the page cache forgets it too.
func (d *Disk) diskSyncFailed(inode *diskInode) {
	if d.rand.Chance(diskSyncFailureDurableProbability) {
		diskSyncFile(inode)
		return
	}
	if !diskSynced(inode) {
		d.stats.SyncsLostData++
	}
	diskLoseUnsynced(inode)
	if p := d.options.SyncFailureDropPagesProbability; p > 0 && d.rand.Chance(p) {
		d.diskDropPages(inode)
	}
}

// diskSyncFile makes the current content durable, except the ranges earlier
// failed Syncs lost: Linux marked those pages clean, so the device keeps
// zeros there although reads from the cache still return the data.
func diskSyncFile(inode *diskInode) {
	size := len(inode.current)
	if len(inode.lost) == 0 {
		inode.durable = inode.current[:size:size]
		inode.extendsDurable = true
		return
	}
	durable := slices.Clone(inode.current)
	for _, lost := range inode.lost {
		if lost.from < 0 || lost.from >= lost.to || lost.from >= int64(size) {
			panic("sim: disk lost range outside the file")
		}
		clear(durable[lost.from:min(lost.to, int64(size))])
	}
	inode.durable = durable
	inode.extendsDurable = false
}

// diskLoseUnsynced records the appended unsynced tail as lost by a failed Sync.
func diskLoseUnsynced(inode *diskInode) {
	from, to := int64(len(inode.durable)), int64(len(inode.current))
	if !inode.extendsDurable || from >= to {
		return
	}
	last := len(inode.lost) - 1
	if last >= 0 && (inode.lost[last].to >= from || len(inode.lost) == diskLostRangesMax) {
		inode.lost[last].from = min(inode.lost[last].from, from)
		inode.lost[last].to = max(inode.lost[last].to, to)
		return
	}
	inode.lost = append(inode.lost, diskRange{from, to})
}

// Truncate implements core.File.
func (f *diskFile) Truncate(size int64) error {
	f.disk.diskCall(DiskOpTruncate, f.name)
	if err := f.diskCheck("truncate"); err != nil {
		return err
	}
	if size < 0 {
		return diskError("truncate", f.name, fmt.Errorf("%w: negative size %d", errDiskInvalid, size))
	}
	d := f.disk
	tookEffect, failure := d.diskFaultAmbiguous(DiskOpTruncate, f.name)
	if failure != nil && !tookEffect {
		return failure
	}
	growth := size - int64(len(f.inode.current))
	capacity := d.options.CapacityBytes
	if f.inode.linked && capacity > 0 && growth > 0 && d.usedBytes+growth > capacity {
		if failure == nil {
			d.stats.CallsFailed[DiskOpTruncate]++
		}
		d.stats.WritesNoSpace++
		return diskError("truncate", f.name, core.ErrNoSpace)
	}
	d.diskResize(f.inode, size)
	return failure
}

// diskResize sets a file's current size, zero-filling growth.
func (d *Disk) diskResize(inode *diskInode, size int64) {
	old := int64(len(inode.current))
	if size < old {
		// Capping the capacity makes the next append copy, so durable bytes
		// in a shared backing array are never overwritten.
		inode.current = inode.current[:size:size]
		if size < int64(len(inode.durable)) {
			inode.extendsDurable = false
		}
		inode.lost = diskClipRanges(inode.lost, size)
		inode.corrupt = diskClipRanges(inode.corrupt, size)
		inode.latent = diskClipRanges(inode.latent, size)
	} else {
		inode.current = append(inode.current, make([]byte, size-old)...)
	}
	if inode.linked {
		d.usedBytes += size - old
	}
}

func diskClipRanges(ranges []diskRange, size int64) []diskRange {
	kept := ranges[:0]
	for _, r := range ranges {
		if r.from < size {
			kept = append(kept, diskRange{r.from, min(r.to, size)})
		}
	}
	return kept
}

// Size implements core.File.
func (f *diskFile) Size() (int64, error) {
	f.disk.diskCall(DiskOpSize, f.name)
	if err := f.diskCheck("size"); err != nil {
		return 0, err
	}
	if err := f.disk.diskFault(DiskOpSize, f.name); err != nil {
		return 0, err
	}
	return int64(len(f.inode.current)), nil
}

// Close implements core.File. It does not sync. An injected failure still
// releases the handle, as close(2) does.
func (f *diskFile) Close() error {
	f.disk.diskCall(DiskOpClose, f.name)
	if err := f.diskCheck("close"); err != nil {
		return err
	}
	f.closed = true
	return f.disk.diskFault(DiskOpClose, f.name)
}

// Crash models a power loss: only durable state survives. Every directory's
// entries revert to its durable entries, starting from the root; every file
// reachable that way reverts to its durable content, except that with
// TornWriteProbability a random prefix of its unsynced appended data survives
// too. Files and directories no durable entry reaches are gone. Every open
// File becomes invalid: its methods return errors wrapping fs.ErrClosed.
func (d *Disk) Crash() {
	d.generation++
	d.stats.Crashes++
	d.renames = nil
	d.usedBytes = 0
	visited := make(map[*diskInode]bool)
	d.diskRecover(d.root, visited)
	if !d.root.isDir || d.usedBytes < 0 {
		panic("sim: disk crash recovery broke the root or the used bytes")
	}
}

// diskRecover rebuilds inode and, for a directory, everything its durable
// entries reach. Children are visited in sorted order because torn writes draw
// random numbers. visited guards against a name reached twice.
func (d *Disk) diskRecover(inode *diskInode, visited map[*diskInode]bool) {
	if visited[inode] {
		return
	}
	visited[inode] = true
	inode.linked = true
	if !inode.isDir {
		d.diskRecoverFile(inode)
		d.usedBytes += int64(len(inode.current))
		return
	}
	inode.entries = make(map[string]*diskInode, len(inode.durableEntries))
	for _, name := range diskSortedNames(inode.durableEntries) {
		child := inode.durableEntries[name]
		inode.entries[name] = child
		d.diskRecover(child, visited)
	}
}

// diskRecoverFile sets a file's content to what survives the crash.
func (d *Disk) diskRecoverFile(inode *diskInode) {
	durableSize := int64(len(inode.durable))
	unsyncedSize := int64(len(inode.current)) - durableSize
	tearable := inode.extendsDurable && len(inode.lost) == 0 && unsyncedSize > 0
	probability := d.options.TornWriteProbability
	if tearable && probability > 0 && d.rand.Chance(probability) {
		d.diskTear(inode, unsyncedSize)
	}
	inode.current = inode.durable[:len(inode.durable):len(inode.durable)]
	inode.extendsDurable = true
	inode.lost = nil
	size := int64(len(inode.current))
	inode.corrupt = diskClipRanges(inode.corrupt, size)
	inode.latent = diskClipRanges(inode.latent, size)
	if size < durableSize {
		panic("sim: disk crash recovery lost durable bytes")
	}
}

// diskTear makes part of a file's unsynced appended data survive a crash: a
// non-empty clean prefix, or (with TornZeroTailProbability and
// TornGarbageTailProbability) a possibly empty prefix followed by a
// non-empty tail of zeros or random bytes.
func (d *Disk) diskTear(inode *diskInode, unsyncedSize int64) {
	durableSize := int64(len(inode.durable))
	kind := TornTailClean
	zero, garbage := d.options.TornZeroTailProbability, d.options.TornGarbageTailProbability
	if zero+garbage > 0 {
		switch draw := d.rand.Float64(); {
		case draw < zero:
			kind = TornTailZero
		case draw < zero+garbage:
			kind = TornTailGarbage
		}
	}
	d.stats.TornTails[kind]++
	if kind == TornTailClean {
		keep := durableSize + d.rand.Int64Range(1, unsyncedSize)
		inode.durable = inode.current[:keep:keep]
		return
	}
	prefix := d.rand.Int64Range(0, unsyncedSize-1)
	tail := d.rand.Int64Range(1, unsyncedSize-prefix)
	keep := durableSize + prefix
	torn := make([]byte, keep+tail)
	copy(torn, inode.current[:keep])
	if kind == TornTailGarbage {
		d.rand.Fill(torn[keep:])
	}
	d.stats.TornTailBytes += tail
	inode.durable = torn
}

// Describe returns a deterministic, sorted listing of the disk for traces:
// every directory and file of the current tree with its current and durable
// sizes and whether its name is durable, and every durable name that the
// current tree no longer has.
func (d *Disk) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "disk generation=%d used=%d capacity=%d\n",
		d.generation, d.usedBytes, d.options.CapacityBytes)
	d.diskDescribeDir(&b, d.root, "")
	return b.String()
}

func (d *Disk) diskDescribeDir(b *strings.Builder, dir *diskInode, prefix string) {
	for _, name := range diskSortedNames(dir.entries) {
		inode := dir.entries[name]
		entry := "volatile"
		if dir.durableEntries[name] == inode {
			entry = "durable"
		}
		if inode.isDir {
			fmt.Fprintf(b, "dir  %s%s/ entry=%s\n", prefix, name, entry)
			d.diskDescribeDir(b, inode, prefix+name+"/")
			continue
		}
		fmt.Fprintf(b, "file %s%s size=%d durable=%d entry=%s\n",
			prefix, name, len(inode.current), len(inode.durable), entry)
	}
	for _, name := range diskSortedNames(dir.durableEntries) {
		if inode := dir.durableEntries[name]; dir.entries[name] != inode {
			fmt.Fprintf(b, "gone %s%s entry=durable (reappears on crash)\n", prefix, name)
		}
	}
}
