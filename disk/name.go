package disk

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// ErrBadName is wrapped by the error returned for a name that is not a clean,
// relative, slash-separated path inside the root.
var ErrBadName = errors.New("invalid file name")

// nameBytesMax bounds the length of a name. Linux limits a whole path to 4096
// bytes (PATH_MAX); a longer name cannot be valid on any file system we use.
const nameBytesMax = 4096

// CheckName returns nil if name is acceptable to a core.FS: non-empty, clean
// (path.Clean leaves it unchanged), relative, not escaping the root through
// "..", free of NUL bytes and backslashes, and at most nameBytesMax bytes.
// "." names the root itself.
func CheckName(name string) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("disk: %q: %w: %s", name, ErrBadName, err.Error())
	}
	return nil
}

func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("empty")
	case len(name) > nameBytesMax:
		return fmt.Errorf("longer than %d bytes", nameBytesMax)
	case strings.ContainsAny(name, "\x00\\"):
		return errors.New("contains a NUL byte or a backslash")
	case strings.HasPrefix(name, "/"):
		return errors.New("absolute")
	case path.Clean(name) != name:
		return fmt.Errorf("not clean (path.Clean gives %q)", path.Clean(name))
	case name == ".." || strings.HasPrefix(name, "../"):
		return errors.New("escapes the root")
	}
	return nil
}

// checkFileName is CheckName for operations that need a name other than the
// root itself (create, open, remove, rename).
func checkFileName(name string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if name == "." {
		return fmt.Errorf("disk: %q: %w: the root directory itself", name, ErrBadName)
	}
	return nil
}
