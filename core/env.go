package core

import "log/slog"

// Env is everything a node may touch outside its own memory. A node keeps the
// Env it was built with and reaches the world only through it.
type Env struct {
	Clock Clock
	Rand  *Rand
	FS    FS
	Net   Network
	// Log receives the node's structured log. The simulator installs a
	// handler that stamps records with virtual time.
	Log *slog.Logger
}
