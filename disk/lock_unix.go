//go:build unix

package disk

import (
	"errors"
	"os"
	"syscall"
)

// lockInterruptsMax bounds the retries of an flock interrupted by a signal.
const lockInterruptsMax = 100

// tryLock takes an exclusive flock on file without blocking. It returns
// false, and no error, when another open file description holds it. An
// flock belongs to the open file description, so it is released when the
// last descriptor of it closes, which the kernel does when the process
// exits.
func tryLock(file *os.File) (bool, error) {
	conn, err := file.SyscallConn()
	if err != nil {
		return false, err
	}
	var lockErr error
	err = conn.Control(func(fd uintptr) {
		for range lockInterruptsMax {
			lockErr = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB)
			if lockErr != syscall.EINTR {
				return
			}
		}
	})
	if err != nil {
		return false, err
	}
	if errors.Is(lockErr, syscall.EWOULDBLOCK) {
		return false, nil
	}
	if lockErr != nil {
		return false, &os.PathError{Op: "flock", Path: file.Name(), Err: lockErr}
	}
	return true, nil
}
