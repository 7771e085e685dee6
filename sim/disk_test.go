package sim

import (
	"testing"

	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/disk/disktest"
)

// TestDiskConformance runs the shared core.FS suite against the simulated
// disk, so that it behaves like the real one wherever no crash is involved.
func TestDiskConformance(t *testing.T) {
	disktest.Run(t, func(t *testing.T) core.FS {
		return NewDisk(core.NewRand(1), DiskOptions{})
	})
}
