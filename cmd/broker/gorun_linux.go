package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// dieWithGoRun makes a broker started by `go run` receive SIGTERM when the
// go command exits. go run does not forward SIGTERM to the program it
// built (it ignores SIGINT, which a terminal sends to both), so
// `go run ./cmd/broker &` then `kill $!` would end go run and leave the
// broker running, holding its port and data directory. With
// PR_SET_PDEATHSIG the kernel sends SIGTERM when the parent exits, and the
// broker shuts down cleanly as on any SIGTERM. A binary started any other
// way (go build, an installed broker, a service manager) is left alone,
// since there the parent's exit says nothing about the broker's life.
// The kernel sends the signal when the thread that forked the broker ends;
// the go command forks from an ordinary goroutine and Go does not end such
// threads while the process runs, so in practice that is go run's exit.
func dieWithGoRun() {
	executable, err := os.Executable()
	if err != nil || !builtByGoRun(executable) {
		return
	}
	parent := os.Getppid()
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0); errno != 0 {
		return
	}
	// The parent may have exited before the request took effect; then no
	// signal will come, so send it now.
	if os.Getppid() != parent {
		_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
	}
}

// builtByGoRun reports whether executable is where `go run` puts the
// program it builds: $WORK/b001/exe/NAME, with $WORK a go-build* directory.
//
// Since Go 1.24 go run may also run a binary cached from an earlier build,
// at $GOCACHE/<2 hex digits>/<hash>-d/NAME; such a binary is recognised by
// that layout together with a parent process named go.
func builtByGoRun(executable string) bool {
	exeDir := filepath.Dir(executable)
	work := filepath.Dir(filepath.Dir(exeDir))
	if filepath.Base(exeDir) == "exe" && strings.HasPrefix(filepath.Base(work), "go-build") {
		return true
	}
	shard := filepath.Base(filepath.Dir(exeDir))
	return strings.HasSuffix(filepath.Base(exeDir), "-d") && len(shard) == 2 && parentIsGoCommand()
}

// parentIsGoCommand reports whether the parent process is the go command.
func parentIsGoCommand() bool {
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(os.Getppid()) + "/comm")
	return err == nil && strings.TrimSpace(string(comm)) == "go"
}
