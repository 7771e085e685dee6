package sim

import (
	"strings"
	"testing"

	"github.com/kafkasim/kafkasim/core"
)

// TestDiskRefusesLongNameComponents checks that a name component over 255
// bytes is refused, as ext4 and xfs refuse it (ENAMETOOLONG), while a long
// path of short components is fine: the broker's directory names were once
// too long only on real disks.
func TestDiskRefusesLongNameComponents(t *testing.T) {
	d := NewDisk(core.NewRand(1), DiskOptions{})
	if err := d.MkdirAll(strings.Repeat("a", 255)); err != nil {
		t.Fatalf("a 255-byte component: %v", err)
	}
	if _, err := d.Create(strings.Repeat("a", 255) + "/" + strings.Repeat("b", 256)); err == nil {
		t.Fatal("a 256-byte component was accepted")
	}
	if err := d.Rename(strings.Repeat("a", 255), strings.Repeat("c", 300)); err == nil {
		t.Fatal("a rename to a 300-byte component was accepted")
	}
}
