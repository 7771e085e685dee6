package core

import "math/bits"

// Rand is a deterministic pseudo-random generator (PCG with a 128-bit LCG
// state and the DXSM output function, as in Go's math/rand/v2). Every random
// decision of a node is drawn from the Rand it was given: the simulator derives
// one per node from the run's seed, production seeds it from the operating
// system. It is not safe for concurrent use, and needs none: a node is single
// threaded.
type Rand struct {
	hi, lo uint64
}

// NewRand returns a generator whose sequence is fully determined by seed.
func NewRand(seed uint64) *Rand {
	r := &Rand{hi: seed, lo: seed ^ 0x9e3779b97f4a7c15}
	// Mix the seed so that nearby seeds give unrelated streams.
	r.hi = splitmix64(&r.hi)
	r.lo = splitmix64(&r.lo)
	return r
}

func splitmix64(x *uint64) uint64 {
	*x += 0x9e3779b97f4a7c15
	z := *x
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Uint64 returns a uniformly distributed 64-bit value.
func (r *Rand) Uint64() uint64 {
	const (
		mulHi = 2549297995355413924
		mulLo = 4865540595714422341
		incHi = 6364136223846793005
		incLo = 1442695040888963407
	)
	// state = state * mul + inc
	hi, lo := bits.Mul64(r.lo, mulLo)
	hi += r.hi*mulLo + r.lo*mulHi
	lo, c := bits.Add64(lo, incLo, 0)
	hi, _ = bits.Add64(hi, incHi, c)
	r.lo = lo
	r.hi = hi
	// DXSM output function.
	const cheapMul = 0xda942042e4dd58b5
	hi ^= hi >> 32
	hi *= cheapMul
	hi ^= hi >> (3 * 16)
	hi *= (lo | 1)
	return hi
}

// Uint64N returns a uniformly distributed value in [0, n). It panics if n == 0.
func (r *Rand) Uint64N(n uint64) uint64 {
	if n == 0 {
		panic("core: Rand.Uint64N with n == 0")
	}
	// Lemire's nearly divisionless method, with rejection for exact uniformity.
	hi, lo := bits.Mul64(r.Uint64(), n)
	if lo < n {
		threshold := -n % n
		for lo < threshold {
			hi, lo = bits.Mul64(r.Uint64(), n)
		}
	}
	return hi
}

// IntN returns a uniformly distributed value in [0, n). It panics if n <= 0.
func (r *Rand) IntN(n int) int {
	if n <= 0 {
		panic("core: Rand.IntN with n <= 0")
	}
	return int(r.Uint64N(uint64(n)))
}

// Int64Range returns a uniformly distributed value in [low, high]. It panics
// if high < low.
func (r *Rand) Int64Range(low, high int64) int64 {
	if high < low {
		panic("core: Rand.Int64Range with high < low")
	}
	span := uint64(high-low) + 1
	if span == 0 { // the full int64 range
		return int64(r.Uint64())
	}
	return low + int64(r.Uint64N(span))
}

// Float64 returns a uniformly distributed value in [0, 1).
func (r *Rand) Float64() float64 {
	return float64(r.Uint64()>>11) / (1 << 53)
}

// Chance returns true with probability p (clamped to [0, 1]).
func (r *Rand) Chance(p float64) bool {
	return r.Float64() < p
}

// Shuffle permutes n elements with swap, uniformly (Fisher-Yates).
func (r *Rand) Shuffle(n int, swap func(i, j int)) {
	for i := n - 1; i > 0; i-- {
		swap(i, r.IntN(i+1))
	}
}

// Fork returns a new generator seeded from this one, so that a component can
// own its stream without its draws shifting everyone else's.
func (r *Rand) Fork() *Rand {
	return NewRand(r.Uint64())
}

// Fill fills p with random bytes.
func (r *Rand) Fill(p []byte) {
	for len(p) > 0 {
		v := r.Uint64()
		for i := 0; i < 8 && len(p) > 0; i++ {
			p[0] = byte(v)
			v >>= 8
			p = p[1:]
		}
	}
}
