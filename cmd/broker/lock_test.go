package main

// Regression tests for one owner per data directory (issue 6, item 0).
// Before the lock, a second broker on a running broker's directory either
// ran beside it (another port: both lost each other's writes) or recovered
// the directory before failing to bind (same port), copying the running
// broker's active segment over itself, so that every record the first
// broker acknowledged afterwards was gone at its next restart.

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// lockedLine is the one line a second broker prints for a directory that
// holder (a running brokerProcess) owns.
func lockedLine(holder *brokerProcess) string {
	return fmt.Sprintf("broker: log.dirs %s is in use by another broker (pid %d, listeners %s); "+
		"stop it first, or change log.dirs= in the config\n", holder.dataDir, holder.cmd.Process.Pid, holder.addr)
}

// TestSecondBrokerOnTheSameDirectoryFails starts a broker, produces, then
// starts a second broker on the same directory and another port: it must
// exit with status 1 and exactly the lock line, having started nothing.
// The first broker keeps serving; after more records and a restart, every
// record it acknowledged before and after the attempt is still there.
func TestSecondBrokerOnTheSameDirectoryFails(t *testing.T) {
	dataDir := t.TempDir()
	first := startBroker(t, dataDir, "num.partitions=2")
	before := produceValues(t, first.addr, "owned", "before", 300)

	status, stderr := runBroker(t, "--config", writeConfig(t, dataDir))
	if status != 1 || stderr != lockedLine(first) {
		t.Fatalf("second broker: status %d, stderr:\n%s\nwant status 1 and:\n%s", status, stderr, lockedLine(first))
	}

	after := produceValues(t, first.addr, "owned", "after", 300)
	if status := first.signal(t, syscall.SIGTERM); status != 0 {
		t.Fatalf("first broker exit status %d after SIGTERM:\n%s", status, first.log.String())
	}
	restarted := startBroker(t, dataDir)
	got := readAll(t, restarted.addr, "owned")
	checkDense(t, got)
	stored := map[string]bool{}
	for _, r := range got {
		stored[string(r.Value)] = true
	}
	for _, value := range append(before, after...) {
		if !stored[value] {
			t.Fatalf("acknowledged record %s is missing after the restart (%d stored)", value, len(got))
		}
	}
}

// TestSecondBrokerTouchesNoFile starts a second broker on the directory and
// the port of a running one: the lock is taken before anything else, so it
// fails with the lock line, and every file of the directory (names, sizes,
// contents, modes, modification times) is as it was. A second broker on
// the same port and a fresh directory fails with the bind line instead, and
// leaves nothing in that directory but its lock file.
func TestSecondBrokerTouchesNoFile(t *testing.T) {
	dataDir := t.TempDir()
	first := startBroker(t, dataDir, "num.partitions=3")
	produceValues(t, first.addr, "quiet", "v", 200)
	listeners := "listeners=PLAINTEXT://" + first.addr

	snapshot := directorySnapshot(t, dataDir)
	status, stderr := runBroker(t, "--config", writeConfig(t, dataDir, listeners))
	if after := directorySnapshot(t, dataDir); after != snapshot {
		t.Fatalf("the failed start (status %d: %s) changed the data directory:\nbefore:\n%s\nafter:\n%s",
			status, stderr, snapshot, after)
	}
	if status != 1 || stderr != lockedLine(first) {
		t.Fatalf("same directory and port: status %d, stderr:\n%s\nwant status 1 and:\n%s", status, stderr, lockedLine(first))
	}

	otherDir := filepath.Join(t.TempDir(), "other")
	status, stderr = runBroker(t, "--config", writeConfig(t, otherDir, listeners))
	wantBind := "broker: listen on " + first.addr + ": address already in use " +
		"(is another broker running? change listeners= in the config)\n"
	if status != 1 || stderr != wantBind {
		t.Fatalf("same port, other directory: status %d, stderr:\n%s\nwant status 1 and:\n%s", status, stderr, wantBind)
	}
	entries, err := os.ReadDir(otherDir)
	if err != nil || len(entries) != 1 || entries[0].Name() != ".lock" {
		t.Fatalf("the directory of a broker that could not bind holds %v (%v), want only .lock", entries, err)
	}
}

// TestKill9ReleasesTheLock kills a broker with SIGKILL, which runs no
// cleanup at all, and checks that a restart on its directory succeeds at
// once (the kernel released the flock with the process) and serves what
// was acknowledged before the kill with log.flush.interval.messages=1.
func TestKill9ReleasesTheLock(t *testing.T) {
	dataDir := t.TempDir()
	first := startBroker(t, dataDir, "log.flush.interval.messages=1")
	values := produceValues(t, first.addr, "killed", "v", 100)
	if status := first.signal(t, syscall.SIGKILL); status != -1 {
		t.Fatalf("exit status %d after SIGKILL, want death by signal", status)
	}
	restarted := startBroker(t, dataDir, "log.flush.interval.messages=1")
	got := readAll(t, restarted.addr, "killed")
	checkDense(t, got)
	if len(got) != len(values) {
		t.Fatalf("read %d records after the restart, acknowledged %d", len(got), len(values))
	}
}

// directorySnapshot describes every file and directory under root, one
// line each, in path order.
func directorySnapshot(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := entry.Info()
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %v %d %d", path, info.Mode(), info.Size(), info.ModTime().UnixNano())
		if !entry.IsDir() {
			content, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %x", sha256.Sum256(content))
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
