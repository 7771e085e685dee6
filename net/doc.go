// Package net is the production runtime: the edge where goroutines and the
// wall clock are allowed. It implements the core environment interfaces for a
// real process:
//
//   - Loop, the node's single event loop. Every callback of a node runs on
//     it, one at a time; other goroutines hand it work with Post.
//   - Clock, a core.Clock over the wall clock whose timers post their
//     callbacks to the loop. Timer.Stop is exact even when the underlying
//     timer fired and its callback is already queued.
//   - TCP, a core.Network over TCP with Kafka's framing: each frame is a
//     4-byte big-endian size followed by that many bytes. Each connection has
//     a reader goroutine that posts frames to the loop and a writer goroutine
//     that drains its send queue with writev. Received frames are bounded by
//     FrameBytesMax (like socket.request.max.bytes); a larger or negative
//     size closes the connection with ErrFrameTooLarge. A connection is a
//     core.FrameRecycler: the node may hand a delivered frame back once
//     nothing references it, and the reader reads a later frame into it
//     instead of allocating and zeroing a new one (conn.RecycleFrame).
//
// Everything is bounded: frame size, bytes queued for sending, frames waiting
// on the loop per connection (the reader blocks, which is TCP backpressure),
// and open connections. See docs/runtime.md.
package net
