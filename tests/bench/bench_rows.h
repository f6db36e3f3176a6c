/*
 * bench_rows.h: the rows every benchmark writes, made deterministically
 * from (style, seed, index), so that raw SQLite, labsync and PostgreSQL
 * get exactly the same rows.
 */
#ifndef BENCH_ROWS_H
#define BENCH_ROWS_H

#include <stdint.h>

enum bench_ids {
	BENCH_IDS_V4,		/* random, UUIDv4-like */
	BENCH_IDS_V7		/* time-ordered, UUIDv7-like */
};

/*
 * Seven columns of `activities`, about 200 bytes: id, location (a city),
 * title, kind, starts_at, participants, summary (notes); the other five
 * columns of the table stay NULL.
 */
struct bench_row {
	char		 id[37];
	const char	*city;
	char		 title[41];
	const char	*kind;
	char		 starts_at[32];
	int		 participants;
	char		 notes[101];
};

/* The INSERT every writer uses; ?1..?7 in the order of struct bench_row. */
#define BENCH_INSERT_SQL \
	"INSERT INTO activities(id, location, title, kind, starts_at, " \
	"participants, summary) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"

int	 bench_ids_parse(const char *, enum bench_ids *);
const char *bench_ids_name(enum bench_ids);
void	 bench_row_make(struct bench_row *, enum bench_ids, uint64_t seed,
	    uint64_t i);
void	 bench_row_vary(struct bench_row *, uint64_t round);
struct bench_row *bench_rows_make(enum bench_ids, uint64_t seed, uint64_t n);
uint64_t bench_now_us(void);
uint64_t bench_mono_us(void);
void	 bench_sleep_until_mono_us(uint64_t);
double	 bench_row_bytes(const struct bench_row *);

#endif
