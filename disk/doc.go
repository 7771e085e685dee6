// Package disk implements core.FS over the operating system's file system, and
// wraps any core.FS with injected faults for tests.
//
// New roots a file system at a directory: every name is a clean,
// slash-separated path below that directory, and names that are not clean or
// that would escape the root are rejected with an error wrapping ErrBadName.
// The implementation goes through os.Root, so symbolic links cannot lead out of
// the root either.
//
// Errors are mapped onto the vocabulary of package core, so that callers handle
// the production disk and the simulated disk (package sim) alike:
//   - a missing file or directory wraps fs.ErrNotExist;
//   - an existing name where none may exist wraps fs.ErrExist;
//   - ENOSPC and EDQUOT wrap core.ErrNoSpace;
//   - EIO wraps core.ErrIO;
//   - a File used after Close wraps fs.ErrClosed.
//
// The original operating-system error stays wrapped as well, so errors.Is
// still matches the syscall errno.
//
// WithFaults wraps a core.FS so that chosen operations fail, in the style of
// Pebble's vfs/errorfs: an Injector decides per operation (an Op and a path)
// whether to fail it. Fault is the common injector: fail the operations of one
// kind under one path prefix, after letting a number of them pass, a bounded
// number of times.
//
// The conformance suite every core.FS implementation must pass lives in
// package disk/disktest. docs/disk.md describes the contract and the crash
// model.
package disk
