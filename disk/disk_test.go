package disk_test

import (
	"testing"

	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/disk"
	"github.com/kafkasim/kafkasim/disk/disktest"
)

// newTempFS returns a real FS rooted at a fresh temporary directory.
func newTempFS(t *testing.T) core.FS {
	fsys, err := disk.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fsys.Close() })
	return fsys
}

// TestConformance runs the shared core.FS suite against the real disk.
func TestConformance(t *testing.T) {
	disktest.Run(t, newTempFS)
}

// TestConformanceWithFaults runs the shared suite through WithFaults with an
// injector that never fires, proving the wrapper is transparent.
func TestConformanceWithFaults(t *testing.T) {
	disktest.Run(t, func(t *testing.T) core.FS {
		never := disk.InjectorFunc(func(disk.Op, string) error { return nil })
		return disk.WithFaults(newTempFS(t), never)
	})
}
