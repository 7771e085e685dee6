// Package lintbad breaks every determinism rule once, so that the lint test
// can prove it notices each of them. It is never built into anything.
package lintbad

import (
	crand "crypto/rand"
	"math/rand"
	"net"
	"os"
	"time"
)

var _ = os.Getpid
var _ = net.Dial
var _ = crand.Read

// Bad does everything a deterministic package must not.
func Bad(m map[string]int) int {
	start := time.Now()
	time.Sleep(time.Millisecond)
	time.AfterFunc(time.Second, func() {})
	ch := make(chan int, 1)
	go func() { ch <- 1 }()
	select {
	case v := <-ch:
		_ = v
	default:
	}
	sum := 0
	for k := range m {
		sum += len(k)
	}
	// The sum does not depend on the order: order-independent.
	for _, v := range m {
		sum += v
	}
	return sum + rand.Intn(10) + int(time.Since(start))
}
