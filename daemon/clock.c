/*
 * clock.c: the hybrid logical clock (Kulkarni et al.), defined once here.
 * A write's timestamp is max(physical, last + 1): the physical time with
 * counter 0 once it has passed the last timestamp, otherwise the last one
 * with its counter bumped (an overflow carries into the milliseconds:
 * still monotonic). Absorbing a remote timestamp raises last to it, so a
 * write made after seeing a change is ordered after it.
 *
 * Local writes are stamped by the capture triggers (capture.c), in SQL,
 * from the last timestamp kept in labsync_state.hlc: the triggers live in
 * the database and fire for every writer (the daemon's HTTP API,
 * labsyncctl, Python's sqlite3, the sqlite3 shell), so they cannot call a
 * function that only labsync's own connections register; and the last
 * timestamp that every writer must step from is that row, not any one
 * process's memory. So the step rule has two forms, clock_step in C and
 * clock_step_sql, which capture.c splices into the triggers; the daemon
 * absorbs remote timestamps in C (struct clock) and writes the result to
 * that row with clock_absorb_sql at each commit. tests/unit/test_clock.c
 * runs the SQL forms in SQLite and holds them to the C ones.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"

struct clock {
	uint64_t	 last;
	uint64_t	(*now_ms)(void);
};

uint64_t
clock_step(uint64_t last, uint64_t phys_ms)
{
	uint64_t	 phys = CLOCK_MAKE(phys_ms & CLOCK_MS_MASK, 0);

	return phys > last ? phys : last + 1;
}

int
clock_step_sql(char *buf, size_t len, const char *last, const char *now_ms)
{
	int	 n;

	n = snprintf(buf, len, "max((%s) + 1, ((%s) & %llu) << 16)", last,
	    now_ms, (unsigned long long)CLOCK_MS_MASK);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

int
clock_absorb_sql(char *buf, size_t len, const char *last, const char *remote)
{
	int	 n;

	n = snprintf(buf, len, "max(%s, %s)", last, remote);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

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
	return c->now_ms() & CLOCK_MS_MASK;
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
