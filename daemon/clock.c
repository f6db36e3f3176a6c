/*
 * clock.c: hybrid logical clock (Kulkarni et al.). A fresh timestamp is
 * max(physical, last) with the counter bumped when the physical clock has
 * not moved past the last one; absorbing a remote timestamp raises last,
 * so a write made after seeing a change is ordered after it.
 */
#include <stdlib.h>
#include <time.h>

#include "clock.h"

struct clock {
	uint64_t	 last;
	uint64_t	(*now_ms)(void);
};

uint64_t
clock_system_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t
clock_mono_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

struct clock *
clock_new(uint64_t (*now_ms)(void))
{
	struct clock	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->now_ms = now_ms != NULL ? now_ms : clock_system_ms;
	return c;
}

void
clock_free(struct clock *c)
{
	free(c);
}

uint64_t
clock_physical_ms(const struct clock *c)
{
	return c->now_ms() & 0xffffffffffffULL;
}

uint64_t
clock_now(struct clock *c)
{
	uint64_t	 phys = CLOCK_MAKE(clock_physical_ms(c), 0);

	/* Counter overflow carries into the milliseconds: still monotonic. */
	c->last = phys > c->last ? phys : c->last + 1;
	return c->last;
}

uint64_t
clock_last(const struct clock *c)
{
	return c->last;
}

void
clock_absorb(struct clock *c, uint64_t remote)
{
	if (remote > c->last)
		c->last = remote;
}
