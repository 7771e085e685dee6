//go:build !unix

package disk

import (
	"errors"
	"os"
)

// tryLock refuses: without flock there is no lock that the operating system
// releases when the process dies, and running without one lets two brokers
// corrupt one directory.
func tryLock(*os.File) (bool, error) {
	return false, errors.New("data directory locking is only implemented on Unix systems")
}
