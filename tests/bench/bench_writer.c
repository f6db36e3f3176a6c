/*
 * bench_writer.c: the load generator and probes of tests/bench/bench.sh.
 * It writes `activities` rows into a node's database the way an
 * application does (its own SQLite connection; the capture triggers do
 * the rest) and reads a node's database to see when rows arrived.
 *
 *   bench_writer tsv STYLE SEED N            the rows as TSV (PostgreSQL)
 *   bench_writer id STYLE SEED I             the id of row I
 *   bench_writer bulk [-b batch] [-c mib] DB STYLE SEED N
 *       N rows as fast as possible, batch rows (default 1,000) per
 *       transaction; prints W_START_US, W_FIRST_COMMIT_US, W_END_US,
 *       W_LAST_ID, W_CPU_S (its own CPU seconds)
 *   bench_writer steady [-c mib] DB STYLE SEED RATE SECS
 *       one row per transaction at a fixed RATE per second for SECS;
 *       starts_at holds the wall-clock time (epoch microseconds) taken
 *       just before the row's INSERT, which is its own transaction;
 *       prints W_ROWS, W_LAST_ID, W_LATE_MAX_US (worst slip behind the
 *       schedule)
 *   bench_writer wait [-t secs] [-i ms] DB SQL [ARG]
 *       run SQL (?1 = ARG) every ms milliseconds (default 20), each time
 *       in its own read transaction, until its first column is non-zero;
 *       prints W_SEEN_US, the wall-clock time of the poll that saw it
 *   bench_writer watch [-t secs] [-i us] [-o FILE] [-r FILE] DB ROWID N
 *       on the receiving node: watch for the N rows that will follow
 *       ROWID in activities, checking PRAGMA data_version every us
 *       microseconds (default 250) and reading the new rows when it
 *       moves; a row's latency is the time it was first seen minus its
 *       starts_at (the writer's time before its INSERT at the other
 *       node); prints L_N, L_P50_MS, L_P99_MS, L_MAX_MS, W_CPU_S; with
 *       -o, also writes "starts_at latency_ms" of every row to FILE;
 *       with -r, creates FILE once it has looked for the first time (start
 *       the writer after that, or its startup counts as latency)
 *
 * Writers use the daemon's connection settings (synchronous=NORMAL, the
 * same page cache); output lines are shell assignments.
 */
#include <sys/resource.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "bench_rows.h"

static void
die(sqlite3 *db, const char *what)
{
	fprintf(stderr, "bench_writer: %s: %s\n", what,
	    db != NULL ? sqlite3_errmsg(db) : "out of memory");
	exit(1);
}

static void
exec(sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		die(db, sql);
}

static void
bind_row(sqlite3_stmt *st, const struct bench_row *r)
{
	sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, r->city, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, r->title, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, r->kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, r->starts_at, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, r->participants);
	sqlite3_bind_text(st, 7, r->notes, -1, SQLITE_STATIC);
}

static sqlite3 *
open_db(const char *path, int cache_mib)
{
	sqlite3	*db;
	char	*sql;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) !=
	    SQLITE_OK)
		die(db, path);
	sqlite3_busy_timeout(db, 30000);
	if (cache_mib > 0) {
		sql = sqlite3_mprintf("PRAGMA synchronous = NORMAL;"
		    "PRAGMA cache_size = -%d;"
		    "PRAGMA wal_autocheckpoint = 16384;", cache_mib * 1024);
		exec(db, sql);
		sqlite3_free(sql);
	}
	return db;
}

static int
writer_tsv(int argc, char *argv[])
{
	enum bench_ids		 style;
	struct bench_row	 r;
	long			 n;

	if (argc != 4 || bench_ids_parse(argv[1], &style) == -1 ||
	    (n = atol(argv[3])) < 0)
		return 2;
	for (long i = 0; i < n; i++) {
		bench_row_make(&r, style, strtoull(argv[2], NULL, 10), i);
		printf("%s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.id, r.city, r.title,
		    r.kind, r.starts_at, r.participants, r.notes);
	}
	return fflush(stdout) == 0 ? 0 : 1;
}

static int
writer_id(int argc, char *argv[])
{
	enum bench_ids		 style;
	struct bench_row	 r;

	if (argc != 4 || bench_ids_parse(argv[1], &style) == -1)
		return 2;
	bench_row_make(&r, style, strtoull(argv[2], NULL, 10),
	    strtoull(argv[3], NULL, 10));
	printf("%s\n", r.id);
	return 0;
}

static int
writer_bulk(int argc, char *argv[])
{
	struct bench_row	*rows;
	enum bench_ids		 style;
	sqlite3			*db;
	sqlite3_stmt		*st;
	long			 n, batch = 1000;
	int			 ch, cache_mib = 64;
	uint64_t		 start, first = 0;
	struct rusage		 ru;

	while ((ch = getopt(argc, argv, "b:c:")) != -1) {
		switch (ch) {
		case 'b':
			batch = atol(optarg);
			break;
		case 'c':
			cache_mib = atoi(optarg);
			break;
		default:
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 4 || bench_ids_parse(argv[1], &style) == -1 ||
	    (n = atol(argv[3])) <= 0 || batch < 1)
		return 2;
	rows = bench_rows_make(style, strtoull(argv[2], NULL, 10), n);
	db = open_db(argv[0], cache_mib);
	if (sqlite3_prepare_v2(db, BENCH_INSERT_SQL, -1, &st, NULL) !=
	    SQLITE_OK)
		die(db, "prepare");
	start = bench_now_us();
	for (long i = 0; i < n; i++) {
		if (i % batch == 0)
			exec(db, "BEGIN IMMEDIATE");
		bind_row(st, &rows[i]);
		if (sqlite3_step(st) != SQLITE_DONE)
			die(db, "insert");
		sqlite3_reset(st);
		if (i % batch == batch - 1 || i == n - 1) {
			exec(db, "COMMIT");
			if (first == 0)
				first = bench_now_us();
		}
	}
	getrusage(RUSAGE_SELF, &ru);
	printf("W_START_US=%llu\nW_FIRST_COMMIT_US=%llu\nW_END_US=%llu\n"
	    "W_LAST_ID=%s\nW_CPU_S=%.3f\n", (unsigned long long)start,
	    (unsigned long long)first, (unsigned long long)bench_now_us(),
	    rows[n - 1].id, ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(rows);
	return 0;
}

static int
writer_steady(int argc, char *argv[])
{
	struct bench_row	 r;
	enum bench_ids		 style;
	sqlite3			*db;
	sqlite3_stmt		*st;
	double			 rate, secs;
	long			 n;
	int			 ch, cache_mib = 64;
	uint64_t		 seed, t0, due, late, late_max = 0;

	while ((ch = getopt(argc, argv, "c:")) != -1) {
		if (ch != 'c')
			return 2;
		cache_mib = atoi(optarg);
	}
	argc -= optind;
	argv += optind;
	if (argc != 5 || bench_ids_parse(argv[1], &style) == -1 ||
	    (rate = atof(argv[3])) <= 0 || (secs = atof(argv[4])) <= 0)
		return 2;
	seed = strtoull(argv[2], NULL, 10);
	n = (long)(rate * secs);
	db = open_db(argv[0], cache_mib);
	if (sqlite3_prepare_v2(db, BENCH_INSERT_SQL, -1, &st, NULL) !=
	    SQLITE_OK)
		die(db, "prepare");
	t0 = bench_mono_us() + 10000;
	for (long i = 0; i < n; i++) {
		bench_row_make(&r, style, seed, (uint64_t)i);
		due = t0 + (uint64_t)(i * 1e6 / rate);
		bench_sleep_until_mono_us(due);
		late = bench_mono_us() - due;
		if (late > late_max)
			late_max = late;
		snprintf(r.starts_at, sizeof(r.starts_at), "%llu",
		    (unsigned long long)bench_now_us());
		bind_row(st, &r);
		if (sqlite3_step(st) != SQLITE_DONE)	/* autocommit */
			die(db, "insert");
		sqlite3_reset(st);
	}
	printf("W_ROWS=%ld\nW_LAST_ID=%s\nW_LATE_MAX_US=%llu\n", n, r.id,
	    (unsigned long long)late_max);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return 0;
}

static int
writer_wait(int argc, char *argv[])
{
	sqlite3		*db = NULL;
	sqlite3_stmt	*st = NULL;
	double		 timeout = 600;
	int		 ch, interval_ms = 20;
	long		 polls = 0;
	uint64_t	 deadline, tick;

	while ((ch = getopt(argc, argv, "i:t:")) != -1) {
		switch (ch) {
		case 'i':
			interval_ms = atoi(optarg);
			break;
		case 't':
			timeout = atof(optarg);
			break;
		default:
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if ((argc != 2 && argc != 3) || interval_ms < 1)
		return 2;
	deadline = bench_mono_us() + (uint64_t)(timeout * 1e6);
	for (;;) {
		tick = bench_mono_us();
		polls++;
		/* the database or table may not be there yet: retry */
		if (db == NULL && sqlite3_open_v2(argv[0], &db,
		    SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
			sqlite3_close(db);
			db = NULL;
		}
		if (db != NULL && st == NULL) {
			sqlite3_busy_timeout(db, 1000);
			if (sqlite3_prepare_v2(db, argv[1], -1, &st, NULL) !=
			    SQLITE_OK)
				st = NULL;
			else if (argc == 3)
				sqlite3_bind_text(st, 1, argv[2], -1,
				    SQLITE_STATIC);
		}
		if (st != NULL) {
			int rc = sqlite3_step(st);
			int yes = rc == SQLITE_ROW &&
			    sqlite3_column_int64(st, 0) != 0;

			sqlite3_reset(st);
			if (yes) {
				printf("W_SEEN_US=%llu\nW_POLLS=%ld\n",
				    (unsigned long long)bench_now_us(), polls);
				break;
			}
		}
		if (tick > deadline) {
			fprintf(stderr, "bench_writer: wait: timed out after "
			    "%.0f s: %s\n", timeout, argv[1]);
			return 1;
		}
		bench_sleep_until_mono_us(tick + (uint64_t)interval_ms * 1000);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return 0;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Linear interpolation between ranks, as PostgreSQL's percentile_cont. */
static double
percentile(const double *v, long n, double p)
{
	double	 pos = p * (n - 1);
	long	 lo = (long)pos;

	if (lo + 1 >= n)
		return v[n - 1];
	return v[lo] + (pos - lo) * (v[lo + 1] - v[lo]);
}

/*
 * Rows become visible at their commit; data_version moves when another
 * connection commits, and costs a look at the WAL index, not a query.
 */
static int
writer_watch(int argc, char *argv[])
{
	sqlite3		*db;
	sqlite3_stmt	*ver, *rows;
	struct rusage	 ru;
	double		*v, timeout = 120;
	FILE		*dump = NULL, *f;
	const char	*ready = NULL;
	long		 n, seen = 0;
	int		 ch, interval_us = 250;
	int64_t		 last, version = -1;
	uint64_t	 deadline, tick, now;

	while ((ch = getopt(argc, argv, "i:o:r:t:")) != -1) {
		switch (ch) {
		case 'i':
			interval_us = atoi(optarg);
			break;
		case 'o':
			if ((dump = fopen(optarg, "w")) == NULL)
				die(NULL, optarg);
			break;
		case 'r':
			ready = optarg;
			break;
		case 't':
			timeout = atof(optarg);
			break;
		default:
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 3 || (n = atol(argv[2])) <= 0 || interval_us < 1)
		return 2;
	last = strtoll(argv[1], NULL, 10);
	if ((v = calloc(n, sizeof(*v))) == NULL)
		die(NULL, "calloc");
	db = open_db(argv[0], 0);
	if (sqlite3_prepare_v2(db, "PRAGMA data_version", -1, &ver, NULL) !=
	    SQLITE_OK || sqlite3_prepare_v2(db, "SELECT rowid, starts_at "
	    "FROM activities WHERE rowid > ?1 ORDER BY rowid", -1, &rows,
	    NULL) != SQLITE_OK)
		die(db, "prepare");
	deadline = bench_mono_us() + (uint64_t)(timeout * 1e6);
	while (seen < n) {
		tick = bench_mono_us();
		if (sqlite3_step(ver) != SQLITE_ROW)
			die(db, "data_version");
		if (sqlite3_column_int64(ver, 0) != version) {
			version = sqlite3_column_int64(ver, 0);
			sqlite3_bind_int64(rows, 1, last);
			now = bench_now_us();
			while (sqlite3_step(rows) == SQLITE_ROW && seen < n) {
				uint64_t at = strtoull((const char *)
				    sqlite3_column_text(rows, 1), NULL, 10);

				last = sqlite3_column_int64(rows, 0);
				v[seen++] = (now - (double)at) / 1000.0;
				if (dump != NULL)
					fprintf(dump, "%" PRIu64 " %.3f\n", at,
					    v[seen - 1]);
			}
			sqlite3_reset(rows);
		}
		sqlite3_reset(ver);
		if (ready != NULL) {
			if ((f = fopen(ready, "w")) == NULL || fclose(f) != 0)
				die(NULL, ready);
			ready = NULL;
		}
		if (tick > deadline) {
			fprintf(stderr, "bench_writer: watch: %ld of %ld rows "
			    "after %.0f s\n", seen, n, timeout);
			return 1;
		}
		bench_sleep_until_mono_us(tick + (uint64_t)interval_us);
	}
	sqlite3_finalize(ver);
	sqlite3_finalize(rows);
	sqlite3_close(db);
	if (dump != NULL && fclose(dump) != 0)
		die(NULL, "writing the samples");
	qsort(v, n, sizeof(*v), cmp_double);
	getrusage(RUSAGE_SELF, &ru);
	printf("L_N=%ld\nL_P50_MS=%.2f\nL_P99_MS=%.2f\nL_MAX_MS=%.2f\n"
	    "W_CPU_S=%.3f\n", n, percentile(v, n, 0.50), percentile(v, n, 0.99),
	    v[n - 1], ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	free(v);
	return 0;
}

int
main(int argc, char *argv[])
{
	int	 rc = 2;

	if (argc >= 2) {
		if (strcmp(argv[1], "tsv") == 0)
			rc = writer_tsv(argc - 1, argv + 1);
		else if (strcmp(argv[1], "id") == 0)
			rc = writer_id(argc - 1, argv + 1);
		else if (strcmp(argv[1], "bulk") == 0)
			rc = writer_bulk(argc - 1, argv + 1);
		else if (strcmp(argv[1], "steady") == 0)
			rc = writer_steady(argc - 1, argv + 1);
		else if (strcmp(argv[1], "wait") == 0)
			rc = writer_wait(argc - 1, argv + 1);
		else if (strcmp(argv[1], "watch") == 0)
			rc = writer_watch(argc - 1, argv + 1);
	}
	if (rc == 2)
		fprintf(stderr, "usage: bench_writer tsv|id|bulk|steady|wait|watch "
		    "... (see tests/bench/bench_writer.c)\n");
	return rc;
}
