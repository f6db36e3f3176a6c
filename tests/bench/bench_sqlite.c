/*
 * bench_sqlite.c: the SQLite ceilings every labsync figure is divided by,
 * measured on the same disk and rows in the same run.
 *
 *   bench_sqlite [-r runs] [-c cache_mib] [-b batch] [-u rows] [-m ddl]
 *       SCHEMA DIR STYLE N
 *
 * tuned:   the daemon's settings (store_open: WAL, synchronous=NORMAL,
 *          cache_size, temp_store=MEMORY, wal_autocheckpoint=16384) and
 *          its transaction size (batch rows, default 10,000);
 * tuned_1k: the same at 1,000 rows per transaction (the bench writers');
 * default: SQLite's defaults (rollback journal, synchronous=FULL, 2 MiB
 *          cache) at 1,000 rows per transaction, for reference;
 * upsert:  INSERT ... ON CONFLICT(id) DO UPDATE of rows that exist (the
 *          shape of a last-writer-wins apply), tuned, over a table of
 *          `rows` rows (-u, default N: the size of the catch-up it is the
 *          ceiling of), each of them upserted once; one run when rows > N.
 * apply:   with -m FILE (the DDL of labsync's `labsync_log` and
 *          `labsync_rowid`, as a database labsyncctl made has them): what
 *          a catching-up node writes for each change of a row new to it,
 *          in SQL alone: the row, its clocks, the change in the log with
 *          its values (`sqlite_apply_model`) and without them
 *          (`sqlite_apply_model_refs`: a log that would refer to the row),
 *          over `rows` rows in transactions of the daemon's catch-up
 *          (100,000 changes), without SQLite's mutexes (store_open); one
 *          run. No decoding, no network, no checks,
 *          and the WAL is copied back after each commit with the clock
 *          stopped (the daemon does that on a thread of its own): the most
 *          any node keeping these tables could apply on this disk.
 * Rows are made before the clock starts; each run uses a fresh file; a
 * figure is the median of the runs. Prints "name value unit" lines; on
 * stderr, the bytes written per row (wchar of /proc/self/io), the figure
 * to hold labsync's writes per row against.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "bench_rows.h"

#define UPSERT_SQL BENCH_INSERT_SQL " ON CONFLICT(id) DO UPDATE SET " \
	"location = excluded.location, title = excluded.title, " \
	"kind = excluded.kind, starts_at = excluded.starts_at, " \
	"participants = excluded.participants, summary = excluded.summary"

static void
die(sqlite3 *db, const char *what)
{
	fprintf(stderr, "bench_sqlite: %s: %s\n", what,
	    db != NULL ? sqlite3_errmsg(db) : "out of memory");
	exit(1);
}

static void
exec(sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		die(db, sql);
}

static char *
slurp(const char *path)
{
	FILE	*f = fopen(path, "r");
	char	*buf;
	long	 len;

	if (f == NULL || fseek(f, 0, SEEK_END) == -1 || (len = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) == -1 || (buf = malloc(len + 1)) == NULL ||
	    fread(buf, 1, len, f) != (size_t)len) {
		perror(path);
		exit(1);
	}
	buf[len] = '\0';
	fclose(f);
	return buf;
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

/* Bytes this process has written with write(2) and friends. */
static double
wchar(void)
{
	FILE		*f = fopen("/proc/self/io", "r");
	char		 line[128];
	double		 v = 0;

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "wchar:", 6) == 0)
			v = atof(line + 6);
	if (f != NULL)
		fclose(f);
	return v;
}

static double	 last_bytes_per_row;

static void
step(sqlite3 *db, sqlite3_stmt *st, const char *what)
{
	if (sqlite3_step(st) != SQLITE_DONE)
		die(db, what);
	sqlite3_reset(st);
}

/* Write rows with sql in transactions of batch rows; rows/s. */
static double
load(sqlite3 *db, const char *sql, const struct bench_row *rows, long n,
    long batch)
{
	sqlite3_stmt	*st;
	uint64_t	 t0;
	double		 w0 = wchar();

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		die(db, sql);
	t0 = bench_mono_us();
	for (long i = 0; i < n; i++) {
		if (i % batch == 0)
			exec(db, "BEGIN");
		bind_row(st, &rows[i]);
		step(db, st, "insert");
		if (i % batch == batch - 1 || i == n - 1)
			exec(db, "COMMIT");
	}
	t0 = bench_mono_us() - t0;
	last_bytes_per_row = (wchar() - w0) / n;
	sqlite3_finalize(st);
	return n / (t0 / 1e6);
}

#define MODEL_BATCH	100000	/* peer.c: PEER_CATCHUP_MAX */
#define MODEL_ORIGIN	2	/* the row's origin, as B numbers it */
/* st_rowid_put in store.c */
#define MODEL_CLOCKS_SQL "INSERT INTO labsync_rowid(tbl, pk, r_hlc, " \
	"r_origin, d_hlc, d_origin, clocks, rid) VALUES ('activities', ?1, " \
	"?2, ?3, 0, 0, NULL, last_insert_rowid()) ON CONFLICT DO UPDATE SET " \
	"pk = ?1, r_hlc = ?2, r_origin = ?3, d_hlc = 0, d_origin = 0, " \
	"clocks = NULL"
/* st_log_put in store.c; activities' columns are v0 (lab_id) to v10 */
#define MODEL_LOG_SQL "INSERT INTO labsync_log(key, hlc, body, tbl, pk, " \
	"op, mask, v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10) VALUES " \
	"(?1, ?2, NULL, 'activities', ?3, 0, ?4, NULL, NULL, ?5, ?6, ?7, " \
	"NULL, ?8, ?9, NULL, ?10, NULL)"

/* The apply model (see the top): rows/s, the WAL's copying not counted. */
static double
model(sqlite3 *db, const struct bench_row *rows, long n, int values)
{
	sqlite3_stmt	*row, *clk, *lg;
	uint64_t	 t = 0, t0 = 0;
	double		 w0 = wchar();

	if (sqlite3_prepare_v2(db, BENCH_INSERT_SQL, -1, &row, NULL) !=
	    SQLITE_OK || sqlite3_prepare_v2(db, MODEL_CLOCKS_SQL, -1, &clk,
	    NULL) != SQLITE_OK || sqlite3_prepare_v2(db, MODEL_LOG_SQL, -1,
	    &lg, NULL) != SQLITE_OK)
		die(db, "the apply model's statements");
	exec(db, "PRAGMA wal_autocheckpoint = 0");
	for (long i = 0; i < n; i++) {
		const struct bench_row *r = &rows[i];
		int64_t hlc = (int64_t)((1750000000000ULL + i / 8) << 16);

		if (i % MODEL_BATCH == 0) {
			t0 = bench_mono_us();
			exec(db, "BEGIN IMMEDIATE");
		}
		bind_row(row, r);
		step(db, row, "the row");
		sqlite3_bind_text(clk, 1, r->id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(clk, 2, hlc);
		sqlite3_bind_int(clk, 3, MODEL_ORIGIN);
		step(db, clk, "its clocks");
		sqlite3_bind_int64(lg, 1, (int64_t)MODEL_ORIGIN << 40 | (i + 1));
		sqlite3_bind_int64(lg, 2, hlc);
		sqlite3_bind_text(lg, 3, r->id, -1, SQLITE_STATIC);
		sqlite3_bind_int(lg, 4, 2047);
		if (values) {
			sqlite3_bind_text(lg, 5, r->kind, -1, SQLITE_STATIC);
			sqlite3_bind_text(lg, 6, r->title, -1, SQLITE_STATIC);
			sqlite3_bind_text(lg, 7, r->starts_at, -1,
			    SQLITE_STATIC);
			sqlite3_bind_text(lg, 8, r->city, -1, SQLITE_STATIC);
			sqlite3_bind_int(lg, 9, r->participants);
			sqlite3_bind_text(lg, 10, r->notes, -1, SQLITE_STATIC);
		}
		step(db, lg, "the log row");
		if (i % MODEL_BATCH == MODEL_BATCH - 1 || i == n - 1) {
			exec(db, "COMMIT");
			t += bench_mono_us() - t0;
			if (sqlite3_wal_checkpoint_v2(db, NULL,
			    SQLITE_CHECKPOINT_RESTART, NULL, NULL) != SQLITE_OK)
				die(db, "checkpoint");
		}
	}
	last_bytes_per_row = (wchar() - w0) / n;
	sqlite3_finalize(row);
	sqlite3_finalize(clk);
	sqlite3_finalize(lg);
	return n / (t / 1e6);
}

/* A new database; flags: more for sqlite3_open_v2. */
static sqlite3 *
fresh(const char *dir, const char *schema, int tuned, int cache_mib,
    int flags)
{
	char		 path[4096], *sql;
	sqlite3		*db;
	const char	*sfx[] = { "", "-wal", "-shm", "-journal" };

	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		snprintf(path, sizeof(path), "%s/ceiling.db%s", dir, sfx[i]);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/ceiling.db", dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | flags, NULL) != SQLITE_OK)
		die(db, path);
	if (tuned) {
		sql = sqlite3_mprintf("PRAGMA journal_mode = WAL;"
		    "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -%d;"
		    "PRAGMA temp_store = MEMORY;"
		    "PRAGMA wal_autocheckpoint = 16384;", cache_mib * 1024);
		exec(db, sql);
		sqlite3_free(sql);
	}
	exec(db, schema);
	return db;
}

static void
finish(sqlite3 *db, const char *dir)
{
	char	 path[4096];

	sqlite3_close(db);
	snprintf(path, sizeof(path), "%s/ceiling.db", dir);
	unlink(path);
	strncat(path, "-wal", sizeof(path) - strlen(path) - 1);
	unlink(path);
	path[strlen(path) - 4] = '\0';
	strncat(path, "-shm", sizeof(path) - strlen(path) - 1);
	unlink(path);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int
main(int argc, char *argv[])
{
	struct bench_row *rows, *newer;
	enum bench_ids	 style;
	double		 ins[16], ups[16], ins1k[16], def[16], bytes = 0;
	double		 bpr[4] = { 0 }, app[2] = { 0 }, appb[2] = { 0 };
	long		 n, u = 0, batch = 10000;
	int		 ch, runs = 1, cache_mib = 64;
	char		*schema, *ddl = NULL;
	const char	*dir, *sn;
	sqlite3		*db;

	while ((ch = getopt(argc, argv, "b:c:m:r:u:")) != -1) {
		switch (ch) {
		case 'b':
			batch = atol(optarg);
			break;
		case 'c':
			cache_mib = atoi(optarg);
			break;
		case 'm':
			free(ddl);
			ddl = slurp(optarg);
			break;
		case 'r':
			runs = atoi(optarg);
			break;
		case 'u':
			u = atol(optarg);
			break;
		default:
			goto usage;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 4 || bench_ids_parse(argv[2], &style) == -1 ||
	    (n = atol(argv[3])) <= 0 || runs < 1 || runs > 16 || batch < 1 ||
	    cache_mib < 1)
		goto usage;
	schema = slurp(argv[0]);
	dir = argv[1];
	sn = bench_ids_name(style);

	if (u <= 0)
		u = n;
	rows = bench_rows_make(style, 1, u > n ? u : n);
	newer = bench_rows_make(style, 1, u);
	for (long i = 0; i < u; i++)
		bench_row_vary(&newer[i], 1);
	for (long i = 0; i < n; i++)
		bytes += bench_row_bytes(&rows[i]);
	fprintf(stderr, "bench_sqlite: %ld rows of %.0f bytes (%s ids), "
	    "cache %d MiB, %d run(s), upserts over %ld rows, in %s\n", n,
	    bytes / n, sn, cache_mib, runs, u, dir);
	for (int r = 0; r < runs; r++) {
		db = fresh(dir, schema, 1, cache_mib, 0);
		ins[r] = load(db, BENCH_INSERT_SQL, rows, n, batch);
		bpr[0] = last_bytes_per_row;
		if (u == n) {
			ups[r] = load(db, UPSERT_SQL, newer, u, batch);
			bpr[1] = last_bytes_per_row;
		}
		finish(db, dir);
		if (u != n && r == 0) {
			db = fresh(dir, schema, 1, cache_mib, 0);
			load(db, BENCH_INSERT_SQL, rows, u, batch);
			ups[r] = load(db, UPSERT_SQL, newer, u, batch);
			bpr[1] = last_bytes_per_row;
			finish(db, dir);
		} else if (u != n)
			ups[r] = ups[0];
		db = fresh(dir, schema, 1, cache_mib, 0);
		ins1k[r] = load(db, BENCH_INSERT_SQL, rows, n, 1000);
		bpr[2] = last_bytes_per_row;
		finish(db, dir);
		db = fresh(dir, schema, 0, cache_mib, 0);
		def[r] = load(db, BENCH_INSERT_SQL, rows, n, 1000);
		bpr[3] = last_bytes_per_row;
		finish(db, dir);
		fprintf(stderr, "bench_sqlite: run %d: insert %.0f, upsert %.0f, "
		    "insert at 1k %.0f, default %.0f rows/s\n", r + 1, ins[r],
		    ups[r], ins1k[r], def[r]);
	}
	for (int values = 1; ddl != NULL && values >= 0; values--) {
		/* without SQLite's mutexes, as the daemon's connection */
		db = fresh(dir, schema, 1, cache_mib, SQLITE_OPEN_NOMUTEX);
		exec(db, ddl);
		app[values] = model(db, rows, u, values);
		appb[values] = last_bytes_per_row;
		finish(db, dir);
	}
	if (ddl != NULL)
		fprintf(stderr, "bench_sqlite: the apply model, %ld rows: with "
		    "the log's values %.0f rows/s, %.0f B/row; without them "
		    "%.0f rows/s, %.0f B/row\n", u, app[1], appb[1], app[0],
		    appb[0]);
	fprintf(stderr, "bench_sqlite: bytes written per row: insert %.0f, "
	    "upsert %.0f, insert at 1k %.0f, default %.0f\n", bpr[0], bpr[1],
	    bpr[2], bpr[3]);
	printf("sqlite_insert_tuned_%s %.0f rows/s\n", sn, median(ins, runs));
	printf("sqlite_upsert_tuned_%s %.0f rows/s\n", sn,
	    u == n ? median(ups, runs) : ups[0]);
	printf("sqlite_insert_tuned_1k_%s %.0f rows/s\n", sn,
	    median(ins1k, runs));
	printf("sqlite_insert_default_%s %.0f rows/s\n", sn, median(def, runs));
	if (ddl != NULL) {
		printf("sqlite_apply_model_%s %.0f rows/s\n", sn, app[1]);
		printf("sqlite_apply_model_refs_%s %.0f rows/s\n", sn, app[0]);
	}
	free(ddl);
	free(rows);
	free(newer);
	free(schema);
	return 0;
usage:
	fprintf(stderr, "usage: bench_sqlite [-r runs] [-c cache_mib] "
	    "[-b batch] [-u rows] [-m ddl] SCHEMA DIR v4|v7 ROWS\n");
	return 2;
}
