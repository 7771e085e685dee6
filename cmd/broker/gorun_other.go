//go:build !linux

package main

// dieWithGoRun does nothing where PR_SET_PDEATHSIG does not exist: there,
// stop a broker started with `go run` with Ctrl-C, or build it with
// `go build` and signal the binary.
func dieWithGoRun() {}
