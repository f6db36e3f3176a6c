/*
 * clock.h: the hybrid logical clock. A timestamp is 48 bits of
 * milliseconds since the epoch and a 16-bit counter; it never goes
 * backwards and absorbs every remote timestamp it accepts.
 */
#ifndef LABSYNC_CLOCK_H
#define LABSYNC_CLOCK_H

#include <stdint.h>

#define CLOCK_MS(h)	((h) >> 16)
#define CLOCK_MAKE(ms, c) (((uint64_t)(ms) << 16) | ((c) & 0xffff))

struct clock;

/* now_ms: the physical clock; NULL means the system's realtime clock. */
struct clock	*clock_new(uint64_t (*now_ms)(void));
void		 clock_free(struct clock *);
uint64_t	 clock_now(struct clock *);		/* a fresh timestamp */
uint64_t	 clock_last(const struct clock *);
void		 clock_absorb(struct clock *, uint64_t remote);
uint64_t	 clock_physical_ms(const struct clock *);
uint64_t	 clock_system_ms(void);
uint64_t	 clock_mono_us(void);		/* for durations */

#endif
