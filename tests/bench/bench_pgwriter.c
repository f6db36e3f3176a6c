/*
 * bench_pgwriter.c: bench_writer's steady writer and probe for the
 * PostgreSQL side of tests/bench/vs_pg.sh, over libpq, with the same
 * rows and schedule, so both systems see the same load.
 *
 *   bench_pgwriter steady CONNINFO STYLE SEED RATE SECS
 *       one row per transaction (autocommit INSERT, durable commit) at a
 *       fixed RATE per second for SECS; starts_at holds the wall-clock
 *       time (epoch microseconds) taken just before the INSERT; prints
 *       W_ROWS, W_LAST_ID, W_LATE_MAX_US
 *   bench_pgwriter wait [-t secs] [-i ms] CONNINFO ID
 *       probe for the row ID (an index lookup) every ms milliseconds
 *       (default 20), each in its own transaction; prints W_SEEN_US
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "bench_rows.h"

static PGconn *
pg_open(const char *conninfo)
{
	PGconn	*c = PQconnectdb(conninfo);

	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "bench_pgwriter: %s", PQerrorMessage(c));
		exit(1);
	}
	return c;
}

static void
pg_check(PGconn *c, PGresult *r, ExecStatusType want, const char *what)
{
	if (PQresultStatus(r) != want) {
		fprintf(stderr, "bench_pgwriter: %s: %s", what,
		    PQerrorMessage(c));
		exit(1);
	}
}

static int
pgwriter_steady(int argc, char *argv[])
{
	struct bench_row	 r;
	enum bench_ids		 style;
	PGconn			*c;
	PGresult		*res;
	char			 part[16];
	const char		*vals[7];
	double			 rate, secs;
	long			 n;
	uint64_t		 seed, t0, due, late, late_max = 0;

	if (argc != 6 || bench_ids_parse(argv[2], &style) == -1 ||
	    (rate = atof(argv[4])) <= 0 || (secs = atof(argv[5])) <= 0)
		return 2;
	seed = strtoull(argv[3], NULL, 10);
	n = (long)(rate * secs);
	c = pg_open(argv[1]);
	res = PQprepare(c, "ins", "INSERT INTO activities(id, location, "
	    "title, kind, starts_at, participants, summary) VALUES "
	    "($1, $2, $3, $4, $5, $6, $7)", 7, NULL);
	pg_check(c, res, PGRES_COMMAND_OK, "prepare");
	PQclear(res);
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
		snprintf(part, sizeof(part), "%d", r.participants);
		vals[0] = r.id;
		vals[1] = r.city;
		vals[2] = r.title;
		vals[3] = r.kind;
		vals[4] = r.starts_at;
		vals[5] = part;
		vals[6] = r.notes;
		res = PQexecPrepared(c, "ins", 7, vals, NULL, NULL, 0);
		pg_check(c, res, PGRES_COMMAND_OK, "insert");
		PQclear(res);
	}
	printf("W_ROWS=%ld\nW_LAST_ID=%s\nW_LATE_MAX_US=%llu\n", n, r.id,
	    (unsigned long long)late_max);
	PQfinish(c);
	return 0;
}

static int
pgwriter_wait(int argc, char *argv[])
{
	PGconn		*c;
	PGresult	*res;
	double		 timeout = 600;
	int		 ch, interval_ms = 20, yes;
	uint64_t	 deadline, tick;
	const char	*vals[1];

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
	if (argc != 2 || interval_ms < 1)
		return 2;
	c = pg_open(argv[0]);
	res = PQprepare(c, "probe", "SELECT EXISTS (SELECT 1 FROM activities "
	    "WHERE id = $1)", 1, NULL);
	pg_check(c, res, PGRES_COMMAND_OK, "prepare");
	PQclear(res);
	vals[0] = argv[1];
	deadline = bench_mono_us() + (uint64_t)(timeout * 1e6);
	for (;;) {
		tick = bench_mono_us();
		res = PQexecPrepared(c, "probe", 1, vals, NULL, NULL, 0);
		pg_check(c, res, PGRES_TUPLES_OK, "probe");
		yes = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		PQclear(res);
		if (yes)
			break;
		if (tick > deadline) {
			fprintf(stderr, "bench_pgwriter: wait: %s not there "
			    "after %.0f s\n", argv[1], timeout);
			return 1;
		}
		bench_sleep_until_mono_us(tick + (uint64_t)interval_ms * 1000);
	}
	printf("W_SEEN_US=%llu\n", (unsigned long long)bench_now_us());
	PQfinish(c);
	return 0;
}

int
main(int argc, char *argv[])
{
	int	 rc = 2;

	if (argc >= 2 && strcmp(argv[1], "steady") == 0)
		rc = pgwriter_steady(argc - 1, argv + 1);
	else if (argc >= 2 && strcmp(argv[1], "wait") == 0)
		rc = pgwriter_wait(argc - 1, argv + 1);
	if (rc == 2)
		fprintf(stderr, "usage: bench_pgwriter steady|wait ... "
		    "(see tests/bench/bench_pgwriter.c)\n");
	return rc;
}
