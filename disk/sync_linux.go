package disk

import (
	"os"
	"syscall"
)

// fdatasyncInterruptsMax bounds the retries of an fdatasync interrupted by a
// signal; a signal storm longer than that is reported as the EINTR error.
const fdatasyncInterruptsMax = 100

// fdatasync flushes f's data and size. Linux has fdatasync(2), which skips the
// timestamp updates that fsync would also write.
func fdatasync(f *os.File) error {
	conn, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var syncErr error
	err = conn.Control(func(fd uintptr) {
		for range fdatasyncInterruptsMax {
			syncErr = syscall.Fdatasync(int(fd))
			if syncErr != syscall.EINTR {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	if syncErr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: syncErr}
	}
	return nil
}
