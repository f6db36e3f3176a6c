/*
 * unit.h: what every cmocka unit test includes, in the order cmocka.h
 * needs, plus a small seeded random generator so that a failing case can
 * be rerun exactly from its seed.
 */
#ifndef LABSYNC_UNIT_H
#define LABSYNC_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* splitmix64: small, fast, and the same sequence on every machine. */
struct unit_rng {
	uint64_t	 state;
};

static inline void
unit_rng_seed(struct unit_rng *r, uint64_t seed)
{
	r->state = seed * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL;
}

static inline uint64_t
unit_rng_next(struct unit_rng *r)
{
	uint64_t z = (r->state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A number in [0, n); n > 0. */
static inline uint32_t
unit_rng_below(struct unit_rng *r, uint32_t n)
{
	return (uint32_t)(unit_rng_next(r) % n);
}

/* A number in [lo, hi]. */
static inline uint32_t
unit_rng_range(struct unit_rng *r, uint32_t lo, uint32_t hi)
{
	return lo + unit_rng_below(r, hi - lo + 1);
}

#endif
