package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kafkasim/kafkasim/disk"
)

// TestBuiltByGoRun checks which executable paths count as built by go run.
func TestBuiltByGoRun(t *testing.T) {
	cases := []struct {
		path string
		want bool
	}{
		{"/tmp/go-build1234567890/b001/exe/broker", true},
		{"/home/me/.cache/gotmp/go-build42/b001/exe/broker", true},
		{"/home/me/kafkasim/bin/broker", false},
		{"/usr/local/bin/broker", false},
		{"/tmp/go-build1234567890/b001/broker.test", false},
		{"/srv/exe/broker", false},
	}
	for _, c := range cases {
		if got := builtByGoRun(c.path); got != c.want {
			t.Errorf("builtByGoRun(%q) = %v, want %v", c.path, got, c.want)
		}
	}
}

// TestSigtermToGoRunStopsTheBroker runs the broker the way the README's
// quickstart does, with `go run`, sends SIGTERM to the go command (what
// `kill $!` does after `go run ./cmd/broker &`), and checks that the broker
// itself shuts down cleanly: it logs its shutdown and releases its data
// directory. Without PR_SET_PDEATHSIG the go command died alone and the
// broker kept running.
func TestSigtermToGoRunStopsTheBroker(t *testing.T) {
	dataDir := t.TempDir()
	log := &logBuffer{addr: make(chan string, 1)}
	goRun := exec.Command("go", "run", ".", "--config", writeConfig(t, dataDir))
	goRun.Stderr = log
	if err := goRun.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = goRun.Wait()
		close(exited)
	}()
	brokerPid := 0
	t.Cleanup(func() {
		// Whatever happened, leave no broker behind.
		_ = goRun.Process.Kill()
		if brokerPid > 0 {
			_ = syscall.Kill(brokerPid, syscall.SIGKILL)
		}
		<-exited
		if t.Failed() {
			t.Logf("go run output:\n%s", log.String())
		}
	})
	select {
	case <-log.addr:
	case <-exited:
		t.Fatalf("go run exited before the broker started:\n%s", log.String())
	case <-time.After(4 * hangGuard): // go run links the binary first
		t.Fatalf("the broker did not start under go run within the hang guard:\n%s", log.String())
	}
	brokerPid = lockHolderPid(t, dataDir)
	if brokerPid == goRun.Process.Pid {
		t.Fatalf("the lock holder is go run itself (pid %d), not the broker it built", brokerPid)
	}

	if err := goRun.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the broker's clean shutdown after go run got SIGTERM", func() bool {
		return strings.Contains(log.String(), `msg="shutting down" signal=terminated`)
	})
	waitFor(t, "the broker to release its data directory", func() bool {
		lock, err := disk.LockDir(dataDir)
		if err != nil {
			return false
		}
		_ = lock.Release()
		return true
	})
}

// lockHolderPid reads the pid a broker wrote into its data directory's lock
// file ("pid 123, listeners ...").
func lockHolderPid(t *testing.T, dataDir string) int {
	t.Helper()
	content, err := os.ReadFile(filepath.Join(dataDir, disk.LockFileName))
	if err != nil {
		t.Fatal(err)
	}
	field, _, _ := strings.Cut(strings.TrimPrefix(string(content), "pid "), ",")
	pid, err := strconv.Atoi(field)
	if err != nil {
		t.Fatalf("lock file %q names no pid", content)
	}
	return pid
}
