//go:build planted

package planted

// Bug is the name of the live planted bug, set at link time with
// -ldflags "-X github.com/kafkasim/kafkasim/core/planted.Bug=<name>".
var Bug string

// Is reports whether the named planted bug is live. It panics on a name
// that Bugs does not list, so a typo cannot make a guard silently dead.
func Is(name string) bool {
	known := false
	for _, b := range Bugs {
		known = known || b.Name == name
	}
	for _, b := range Blind {
		known = known || b.Name == name
	}
	if !known {
		panic("planted: unknown bug " + name)
	}
	return Bug == name
}
