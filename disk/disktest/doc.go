// Package disktest is the conformance suite for core.FS implementations.
//
// Run checks the part of the core.FS and core.File contract that holds on any
// single machine without crashes: file creation and truncation, appending
// writes, ReadAt with io.EOF at the end, Truncate then append, Rename that
// replaces, Remove and RemoveAll, MkdirAll idempotence, sorted ReadDir, name
// validation, error matching with errors.Is, and errors from a closed File.
// Durability across crashes is specific to the simulated disk and is tested in
// package sim.
//
// The real disk (package disk) and the simulated disk (package sim) both run
// this suite in their tests, so code written against one behaves the same on
// the other.
package disktest
