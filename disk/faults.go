package disk

import (
	"fmt"
	"strings"

	"github.com/kafkasim/kafkasim/core"
)

// Op names a kind of file-system operation, for fault injection.
type Op int

// The operations an Injector is asked about. OpAny is the zero value and, in a
// Fault, matches every operation.
const (
	OpAny Op = iota
	OpCreate
	OpOpen
	OpWrite
	OpRead
	OpSync
	OpTruncate
	OpRemove
	OpRename
	OpMkdir
	OpReadDir
	OpSyncDir
)

var opNames = [...]string{
	OpAny: "any", OpCreate: "create", OpOpen: "open", OpWrite: "write",
	OpRead: "read", OpSync: "sync", OpTruncate: "truncate", OpRemove: "remove",
	OpRename: "rename", OpMkdir: "mkdir", OpReadDir: "readdir", OpSyncDir: "syncdir",
}

// String returns the operation's lower-case name.
func (op Op) String() string {
	if op < 0 || int(op) >= len(opNames) {
		return fmt.Sprintf("Op(%d)", int(op))
	}
	return opNames[op]
}

// Injector decides whether an operation fails. MaybeFault is called before the
// operation with its kind and the name it acts on (for a rename, once with
// each name; for File operations, the name the file was opened with). A
// non-nil result fails the operation with that error, and the inner FS is not
// called.
type Injector interface {
	MaybeFault(op Op, name string) error
}

// InjectorFunc adapts a function to Injector.
type InjectorFunc func(op Op, name string) error

// MaybeFault implements Injector.
func (f InjectorFunc) MaybeFault(op Op, name string) error { return f(op, name) }

// Injectors combines injectors: the first one that returns an error wins. Each
// is consulted in order until one fails the operation, so a Fault's counters
// only advance for operations that reached it.
type Injectors []Injector

// MaybeFault implements Injector.
func (all Injectors) MaybeFault(op Op, name string) error {
	for _, injector := range all {
		if err := injector.MaybeFault(op, name); err != nil {
			return err
		}
	}
	return nil
}

// Fault fails matching operations: those of kind Op (OpAny for all) on a name
// starting with PathPrefix ("" for all). The first After matches pass; then
// Count matches fail with Err (Count 0 means every later match fails). Use a
// *Fault as the Injector, since it counts matches.
type Fault struct {
	Op         Op
	PathPrefix string
	After      int   // matching operations that pass before the first failure
	Count      int   // failures to inject; 0 means no limit
	Err        error // core.ErrIO, core.ErrNoSpace, or any error to return

	matched  int // matching operations seen so far
	injected int // failures injected so far
}

// MaybeFault implements Injector.
func (f *Fault) MaybeFault(op Op, name string) error {
	if f.Err == nil {
		panic("disk: Fault without an Err")
	}
	if f.Op != OpAny && f.Op != op {
		return nil
	}
	if !strings.HasPrefix(name, f.PathPrefix) {
		return nil
	}
	f.matched++
	if f.matched <= f.After {
		return nil
	}
	if f.Count > 0 && f.injected >= f.Count {
		return nil
	}
	f.injected++
	return fmt.Errorf("disk: injected fault on %s %q: %w", op, name, f.Err)
}

// Injected returns how many failures f has injected so far.
func (f *Fault) Injected() int { return f.injected }

// WithFaults returns inner wrapped so that every operation first asks injector
// whether to fail. A failed operation has no effect on inner: a failed Write
// writes nothing, a failed Sync syncs nothing. (The simulated disk in package
// sim models the subtler outcomes, such as partial writes and a Sync failure
// that leaves durability unknown.)
func WithFaults(inner core.FS, injector Injector) core.FS {
	if inner == nil || injector == nil {
		panic("disk: WithFaults with a nil FS or injector")
	}
	return &faultFS{inner: inner, injector: injector}
}

type faultFS struct {
	inner    core.FS
	injector Injector
}

func (f *faultFS) Create(name string) (core.File, error) {
	if err := f.injector.MaybeFault(OpCreate, name); err != nil {
		return nil, err
	}
	file, err := f.inner.Create(name)
	if err != nil {
		return nil, err
	}
	return &faultFile{inner: file, name: name, injector: f.injector}, nil
}

func (f *faultFS) Open(name string) (core.File, error) {
	if err := f.injector.MaybeFault(OpOpen, name); err != nil {
		return nil, err
	}
	file, err := f.inner.Open(name)
	if err != nil {
		return nil, err
	}
	return &faultFile{inner: file, name: name, injector: f.injector}, nil
}

func (f *faultFS) Remove(name string) error {
	if err := f.injector.MaybeFault(OpRemove, name); err != nil {
		return err
	}
	return f.inner.Remove(name)
}

func (f *faultFS) RemoveAll(name string) error {
	if err := f.injector.MaybeFault(OpRemove, name); err != nil {
		return err
	}
	return f.inner.RemoveAll(name)
}

func (f *faultFS) Rename(oldName, newName string) error {
	if err := f.injector.MaybeFault(OpRename, oldName); err != nil {
		return err
	}
	if err := f.injector.MaybeFault(OpRename, newName); err != nil {
		return err
	}
	return f.inner.Rename(oldName, newName)
}

func (f *faultFS) MkdirAll(dir string) error {
	if err := f.injector.MaybeFault(OpMkdir, dir); err != nil {
		return err
	}
	return f.inner.MkdirAll(dir)
}

func (f *faultFS) ReadDir(dir string) ([]core.DirEntry, error) {
	if err := f.injector.MaybeFault(OpReadDir, dir); err != nil {
		return nil, err
	}
	return f.inner.ReadDir(dir)
}

func (f *faultFS) SyncDir(dir string) error {
	if err := f.injector.MaybeFault(OpSyncDir, dir); err != nil {
		return err
	}
	return f.inner.SyncDir(dir)
}

type faultFile struct {
	inner    core.File
	name     string
	injector Injector
}

func (f *faultFile) Write(p []byte) (int, error) {
	if err := f.injector.MaybeFault(OpWrite, f.name); err != nil {
		return 0, err
	}
	return f.inner.Write(p)
}

func (f *faultFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.injector.MaybeFault(OpRead, f.name); err != nil {
		return 0, err
	}
	return f.inner.ReadAt(p, off)
}

func (f *faultFile) Sync() error {
	if err := f.injector.MaybeFault(OpSync, f.name); err != nil {
		return err
	}
	return f.inner.Sync()
}

func (f *faultFile) Truncate(size int64) error {
	if err := f.injector.MaybeFault(OpTruncate, f.name); err != nil {
		return err
	}
	return f.inner.Truncate(size)
}

// Size and Close are never failed: they touch no device.
func (f *faultFile) Size() (int64, error) { return f.inner.Size() }
func (f *faultFile) Close() error         { return f.inner.Close() }

// Compile-time checks that the wrappers meet the interfaces.
var (
	_ core.FS   = (*faultFS)(nil)
	_ core.File = (*faultFile)(nil)
	_ Injector  = (*Fault)(nil)
)
