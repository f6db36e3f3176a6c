/*
 * clock.h: the hybrid logical clock. A timestamp is 48 bits of
 * milliseconds since the epoch and a 16-bit counter; it never goes
 * backwards and absorbs every remote timestamp it accepts.
 */
#ifndef LABSYNC_CLOCK_H
#define LABSYNC_CLOCK_H

#include <stddef.h>
#include <stdint.h>

#define CLOCK_MS(h)	((h) >> 16)
#define CLOCK_MAKE(ms, c) (((uint64_t)(ms) << 16) | ((c) & 0xffff))
#define CLOCK_MS_MASK	0xffffffffffffULL	/* 48 bits of milliseconds */

/* Milliseconds since the epoch as SQLite reads its clock, as SQL. */
#define CLOCK_NOW_MS_SQL "CAST(round((julianday('now') - 2440587.5) * " \
			"86400000.0) AS INTEGER)"

struct clock;

/* The step rule: the timestamp a write gets after last at physical ms. */
uint64_t	 clock_step(uint64_t last, uint64_t phys_ms);
/*
 * The same rules as SQL expressions over the SQL expressions given (a
 * column, a parameter, CLOCK_NOW_MS_SQL), written into buf; -1 if it
 * does not fit. The capture triggers stamp with clock_step_sql.
 */
int		 clock_step_sql(char *buf, size_t len, const char *last,
		    const char *now_ms);
int		 clock_absorb_sql(char *buf, size_t len, const char *last,
		    const char *remote);

/* now_ms: the physical clock; NULL means the system's realtime clock. */
struct clock	*clock_new(uint64_t (*now_ms)(void));
void		 clock_free(struct clock *);
uint64_t	 clock_last(const struct clock *);
void		 clock_absorb(struct clock *, uint64_t remote);
uint64_t	 clock_physical_ms(const struct clock *);
uint64_t	 clock_system_ms(void);
uint64_t	 clock_mono_us(void);		/* for durations */

#endif
