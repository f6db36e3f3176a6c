/*
 * bench_rows.c: deterministic benchmark rows (see bench_rows.h). Each row
 * depends only on (style, seed, index): any index can be made on its
 * own, so an upsert run regenerates the ids of an insert run.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_rows.h"

static const char *const cities[] = { "Dortmund", "Wuppertal", "Bochum",
    "Essen", "Hagen", "Solingen" };
static const char *const kinds[] = { "workshop", "meeting", "fair",
    "initiative", "volunteering", "observation" };
static const char *const words[] = { "community", "garden", "library",
    "youth", "chess", "repair", "cafe", "yoga", "park", "cleanup", "choir",
    "reading", "club", "senior", "walk", "art", "class", "coding", "meet",
    "bring", "gloves", "water", "north", "gate" };
#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

static uint64_t
bench_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;	/* splitmix64 */
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t
bench_next(uint64_t *s)
{
	*s = bench_mix(*s);
	return *s;
}

int
bench_ids_parse(const char *s, enum bench_ids *out)
{
	if (strcmp(s, "v4") == 0)
		*out = BENCH_IDS_V4;
	else if (strcmp(s, "v7") == 0)
		*out = BENCH_IDS_V7;
	else
		return -1;
	return 0;
}

const char *
bench_ids_name(enum bench_ids style)
{
	return style == BENCH_IDS_V7 ? "v7" : "v4";
}

/* `count` words from the list, space separated, cut to len - 1 bytes. */
static void
bench_words(char *out, size_t len, int count, uint64_t *s)
{
	size_t	 off = 0;

	out[0] = '\0';
	for (int i = 0; i < count && off + 1 < len; i++) {
		int n = snprintf(out + off, len - off, "%s%s", i ? " " : "",
		    words[bench_next(s) % NELEM(words)]);

		if (n < 0)
			break;
		off += (size_t)n;
	}
	if (off >= len)
		out[len - 1] = '\0';
}

/*
 * Row i of a run. v4: 122 random bits. v7: 48 bits of milliseconds from a
 * fixed base (a later seed is a later time), 8 rows per millisecond, the
 * row's place within the millisecond next, then random bits: ids sort in
 * the order they are made, as a UUIDv7 writer's do.
 */
void
bench_row_make(struct bench_row *r, enum bench_ids style, uint64_t seed,
    uint64_t i)
{
	uint64_t	 s = bench_mix(seed * 0x100000001b3ULL ^ bench_mix(i));
	uint64_t	 hi = bench_next(&s), lo = bench_next(&s);
	time_t		 t;
	struct tm	 tm;

	if (style == BENCH_IDS_V7) {
		uint64_t ms = 1750000000000ULL + seed * 100000000ULL + i / 8;

		hi = ms << 16 | (i % 8) << 9 | (hi & 0x1ff);
	}
	hi = (hi & ~0xf000ULL) | (style == BENCH_IDS_V7 ? 0x7000 : 0x4000);
	lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
	snprintf(r->id, sizeof(r->id), "%08x-%04x-%04x-%04x-%012llx",
	    (unsigned)(hi >> 32), (unsigned)(hi >> 16 & 0xffff),
	    (unsigned)(hi & 0xffff), (unsigned)(lo >> 48),
	    (unsigned long long)(lo & 0xffffffffffffULL));
	r->city = cities[bench_next(&s) % NELEM(cities)];
	bench_words(r->title, sizeof(r->title), 10, &s);
	r->kind = kinds[bench_next(&s) % NELEM(kinds)];
	t = (time_t)(1700000000 + bench_next(&s) % 31536000);
	gmtime_r(&t, &tm);
	strftime(r->starts_at, sizeof(r->starts_at), "%Y-%m-%dT%H:%M:%SZ", &tm);
	r->participants = (int)(1 + bench_next(&s) % 199);
	bench_words(r->notes, sizeof(r->notes), 25, &s);
}

/* A later version of the same row (same id): what an update sends. */
void
bench_row_vary(struct bench_row *r, uint64_t round)
{
	uint64_t	 s = 0xcbf29ce484222325ULL;	/* FNV-1a of the id */

	for (const char *p = r->id; *p != '\0'; p++)
		s = (s ^ (uint8_t)*p) * 0x100000001b3ULL;
	s = bench_mix(s ^ bench_mix(round));

	bench_words(r->title, sizeof(r->title), 10, &s);
	bench_words(r->notes, sizeof(r->notes), 25, &s);
	r->participants = (int)(1 + bench_next(&s) % 199);
}

struct bench_row *
bench_rows_make(enum bench_ids style, uint64_t seed, uint64_t n)
{
	struct bench_row	*v;

	if ((v = calloc(n ? n : 1, sizeof(*v))) == NULL) {
		perror("calloc");
		exit(1);
	}
	for (uint64_t i = 0; i < n; i++)
		bench_row_make(&v[i], style, seed, i);
	return v;
}

/* Payload bytes: the text lengths plus 4 for the integer. */
double
bench_row_bytes(const struct bench_row *r)
{
	return (double)(strlen(r->id) + strlen(r->city) + strlen(r->title) +
	    strlen(r->kind) + strlen(r->starts_at) + strlen(r->notes) + 4);
}

uint64_t
bench_now_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t
bench_mono_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void
bench_sleep_until_mono_us(uint64_t when)
{
	struct timespec	 ts;

	ts.tv_sec = (time_t)(when / 1000000);
	ts.tv_nsec = (long)(when % 1000000) * 1000;
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	    EINTR)
		;
}
