package core

import "log/slog"

// Env is everything a node may touch outside its own memory. A node keeps the
// Env it was built with and reaches the world only through it.
type Env struct {
	Clock Clock
	Rand  *Rand
	FS    FS
	Net   Network
	// IO runs slow disk work (fsync) off the loop. Nil means run it inline
	// (InlineIO over Clock): correct, but a sync then stalls the loop.
	IO IO
	// Log receives the node's structured log. The simulator installs a
	// handler that stamps records with virtual time.
	Log *slog.Logger
}
