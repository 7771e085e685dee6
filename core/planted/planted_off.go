//go:build !planted

package planted

// Is reports whether the named planted bug is live: never, in a normal
// build. A constant false lets the compiler drop the guarded code.
func Is(name string) bool { return false }
