/*
 * store.c: the node's SQLite database as a whole: opening, checking and
 * upgrading it (the bookkeeping tables and their formats), the connection's
 * settings, transactions and holding one open across events, and the small
 * SQL helpers the other files of the store share. What lives in the
 * tables is the business of the others (store.h has the map).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "clock.h"
#include "log.h"
#include "store.h"
#include "wire.h"

#include "store_private.h"

static const char store_ddl[] =
    "CREATE TABLE IF NOT EXISTS labsync_meta("
    "  key TEXT PRIMARY KEY, value);"
    /* hlc: the newest HLC this node gave or absorbed; self: our origin;
       seq: our last sequence (the triggers count it here, in the row
       they update anyway; labsync_origin's row of ours follows it) */
    "CREATE TABLE IF NOT EXISTS labsync_state("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  applying INTEGER NOT NULL DEFAULT 0,"
    "  writable INTEGER NOT NULL DEFAULT 1,"
    "  hlc INTEGER NOT NULL DEFAULT 0,"
    "  self INTEGER NOT NULL DEFAULT 0,"
    "  seq INTEGER NOT NULL DEFAULT 0);"
    "INSERT OR IGNORE INTO labsync_state(id) VALUES (1);"
    "CREATE TABLE IF NOT EXISTS labsync_origin("
    "  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    "  seq INTEGER NOT NULL DEFAULT 0);"
    LOG_DDL
    /* the clocks of a key: of a deleted row, or of a row of a table
       without rowid (clocks: NULL if every column has the newest
       upsert's clock) */
    "CREATE TABLE IF NOT EXISTS labsync_row("
    "  tbl TEXT NOT NULL, pk TEXT NOT NULL,"
    "  r_hlc INTEGER NOT NULL, r_origin INTEGER NOT NULL,"
    "  d_hlc INTEGER NOT NULL, d_origin INTEGER NOT NULL,"
    "  clocks TEXT, PRIMARY KEY (tbl, pk)) WITHOUT ROWID;"
    /* the clocks of a row of a table with rowids, by the row's rowid:
       a new row's go at the end of the b-tree whatever its key (a
       random key would take a random page of a second big index); pk
       tells them from an entry left stale by a row replaced or
       renumbered without the triggers seeing it */
    "CREATE TABLE IF NOT EXISTS labsync_rowid("
    "  tbl TEXT NOT NULL, rid INTEGER NOT NULL, pk TEXT NOT NULL,"
    "  r_hlc INTEGER NOT NULL, r_origin INTEGER NOT NULL,"
    "  d_hlc INTEGER NOT NULL, d_origin INTEGER NOT NULL,"
    "  clocks TEXT, PRIMARY KEY (tbl, rid)) WITHOUT ROWID;"
    ASIDE_DDL;

/*
 * store_upgrades[N] turns format N into N + 1 (run in order, in one
 * transaction, when a database written by an older labsync is opened).
 * Format 1 is the first; there is nothing older to upgrade yet.
 */
static const char *const store_upgrades[STORE_FORMAT] = {
	[0] = "",		/* 0 -> 1: the tables above, created as is */
	/* 1 -> 2: the triggers stamp local writes (see capture.c); the
	   HLC moves from labsync_meta, the log gains the columns of local
	   changes, clocks become text (capture_clocks_upgrade) and what the
	   old triggers queued is stamped (capture_replay_pending) */
	[1] = "ALTER TABLE labsync_state"
	    "  ADD COLUMN hlc INTEGER NOT NULL DEFAULT 0;"
	    "ALTER TABLE labsync_state"
	    "  ADD COLUMN self INTEGER NOT NULL DEFAULT 0;"
	    "UPDATE labsync_state SET hlc = coalesce((SELECT value FROM"
	    "  labsync_meta WHERE key = 'hlc'), 0);"
	    "DELETE FROM labsync_meta WHERE key = 'hlc';"
	    "ALTER TABLE labsync_log RENAME TO labsync_log_v1;"
	    LOG_DDL
	    "INSERT INTO labsync_log(key, hlc, body)"
	    "  SELECT key, hlc, body FROM labsync_log_v1;"
	    "DROP TABLE labsync_log_v1;",
	/* 2 -> 3: the log's value columns (63 in format 2, kept) are as
	   many as the widest synced table has (changelog_widen adds them);
	   our sequence is counted in labsync_state (set in store_open) */
	[2] = "ALTER TABLE labsync_state"
	    "  ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;",
	/* 3 -> 4: the clocks of rows of tables with rowids move to
	   labsync_rowid (created above; merge_rows_check moves them once
	   the synced tables are known) */
	[3] = "",
	/* 4 -> 5: changes kept aside (labsync_aside, created above); an
	   older labsync would not know them, and lose them */
	[4] = "",
	/* 5 -> 6 (a new database takes it too): what compaction,
	   snapshots, erasure and the change feed keep (store_private.h);
	   an entry of the log so far takes its place in the feed by key */
	[5] = "ALTER TABLE labsync_origin"
	    "  ADD COLUMN floor INTEGER NOT NULL DEFAULT 0;"
	    "ALTER TABLE labsync_log ADD COLUMN at INTEGER;"
	    "UPDATE labsync_log SET at = n FROM (SELECT key AS k,"
	    "  row_number() OVER (ORDER BY key) AS n FROM labsync_log)"
	    "  WHERE key = k;"
	    "CREATE INDEX labsync_log_at ON labsync_log(at);"
	    PEER_SEEN_DDL
	    ERASURE_DDL
	    "ALTER TABLE labsync_state"
	    "  ADD COLUMN at INTEGER NOT NULL DEFAULT 0;"
	    "ALTER TABLE labsync_state"
	    "  ADD COLUMN at_floor INTEGER NOT NULL DEFAULT 0;"
	    "UPDATE labsync_state SET at = (SELECT count(*) FROM labsync_log);",
};

static void	store_schema_log(const struct schema_plan *, const char *);

/* err, if given, says why (printf's fmt). */
void
store_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	 ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int
store_exec(struct store *s, const char *sql)
{
	char	*msg = NULL;

	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_warnx("sqlite: %s", msg != NULL ? msg : "?");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

int
store_prepare(struct store *s, sqlite3_stmt **st, const char *sql)
{
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
	    st, NULL) != SQLITE_OK) {
		log_warnx("sqlite: %s: %s", sqlite3_errmsg(s->db), sql);
		return -1;
	}
	return 0;
}

/* Runs a statement that returns no rows; resets it either way. */
int
store_step_done(struct store *s, sqlite3_stmt *st)
{
	int	 rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		log_warnx("sqlite: %s", sqlite3_errmsg(s->db));
		return -1;
	}
	return 0;
}

int64_t
store_pragma_int(struct store *s, const char *sql)
{
	sqlite3_stmt	*st;
	int64_t		 v = -1;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/*
 * SQL text by sqlite3_mprintf's fmt (%q, %Q, %w). Out of memory is fatal,
 * as in tmux's xasprintf: SQL cut short must never run, and every caller
 * would only give up.
 */
char *
store_sql(const char *fmt, ...)
{
	va_list	 ap;
	char	*sql;

	va_start(ap, fmt);
	sql = sqlite3_vmprintf(fmt, ap);
	va_end(ap);
	if (sql == NULL)
		fatalx("sqlite: out of memory");
	return sql;
}

/* s (freed; NULL: none yet) followed by store_sql's fmt. */
char *
store_append(char *s, const char *fmt, ...)
{
	va_list	 ap;
	char	*add, *n;

	va_start(ap, fmt);
	add = sqlite3_vmprintf(fmt, ap);
	va_end(ap);
	if (add == NULL)
		fatalx("sqlite: out of memory");
	n = store_sql("%s%s", s != NULL ? s : "", add);
	sqlite3_free(s);
	sqlite3_free(add);
	return n;
}

static int
store_meta_get(struct store *s, const char *key, int64_t *v, char **text)
{
	int	 rc, ret = 0;

	sqlite3_bind_text(s->st_meta_get, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(s->st_meta_get);
	if (rc == SQLITE_ROW) {
		if (v != NULL)
			*v = sqlite3_column_int64(s->st_meta_get, 0);
		ret = 1;
		if (text != NULL && (*text = strdup((const char *)
		    sqlite3_column_text(s->st_meta_get, 0))) == NULL)
			ret = -1;
	} else if (rc != SQLITE_DONE)
		ret = -1;
	sqlite3_reset(s->st_meta_get);
	return ret;
}

static int
store_meta_put_int(struct store *s, const char *key, int64_t v)
{
	sqlite3_bind_text(s->st_meta_put, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s->st_meta_put, 2, v);
	return store_step_done(s, s->st_meta_put);
}

static int
store_meta_put_text(struct store *s, const char *key, const char *v)
{
	sqlite3_bind_text(s->st_meta_put, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(s->st_meta_put, 2, v, -1, SQLITE_STATIC);
	return store_step_done(s, s->st_meta_put);
}

/* The statements of store.c itself; the others prepare their own. */
static int
store_prepare_all(struct store *s)
{
	char	 hlc[64], *sql;
	int	 ret = -1;

	/* the capture triggers stamp after every clock the daemon absorbed */
	if (clock_absorb_sql(hlc, sizeof(hlc), "hlc", "?") == -1)
		fatalx("%s: clock_absorb_sql does not fit", __func__);
	sql = store_sql("UPDATE labsync_state SET hlc = %s", hlc);
	if (store_prepare(s, &s->st_meta_get,
	    "SELECT value FROM labsync_meta WHERE key = ?") == -1 ||
	    store_prepare(s, &s->st_meta_put,
	    "INSERT INTO labsync_meta(key, value) VALUES (?, ?) "
	    "ON CONFLICT(key) DO UPDATE SET value = excluded.value") == -1 ||
	    store_prepare(s, &s->st_state_hlc, sql) == -1 ||
	    store_prepare(s, &s->st_applying,
	    "UPDATE labsync_state SET applying = ?") == -1 ||
	    store_prepare(s, &s->st_begin, "BEGIN IMMEDIATE") == -1 ||
	    store_prepare(s, &s->st_commit, "COMMIT") == -1 ||
	    store_prepare(s, &s->st_data_version, "PRAGMA data_version") == -1 ||
	    merge_prepare(s) == -1 || vector_prepare(s) == -1 ||
	    aside_prepare(s) == -1 || erase_prepare(s) == -1)
		goto done;
	ret = 0;
done:
	sqlite3_free(sql);
	return ret;
}

/* The format of the labsync_* tables: STORE_BASE_FORMAT for a new
   database (store_ddl's; the upgrades after it run on it too), -1 if it
   is not a labsync database. */
static int64_t
store_format(struct store *s)
{
	sqlite3_stmt	*st;
	int64_t		 v = -1;
	int		 rc;

	if (sqlite3_prepare_v2(s->db, "SELECT value FROM labsync_meta "
	    "WHERE key = 'format'", -1, &st, NULL) != SQLITE_OK)
		return -1;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_DONE)
		v = STORE_BASE_FORMAT;
	sqlite3_finalize(st);
	return v;
}

/*
 * Another writer holds the lock. SQLite's own busy_timeout sleeps 1 ms,
 * then longer and longer: on a node where an application commits every
 * millisecond, each collision would cost the daemon milliseconds of
 * latency. Writers hold the lock briefly, so retry often for the first
 * 10 ms, then every millisecond, for 10 s in all.
 */
static int
store_busy(void *arg, int tries)
{
	(void)arg;
	if (tries >= STORE_BUSY_FAST + STORE_BUSY_SLOW)
		return 0;
	usleep(tries < STORE_BUSY_FAST ? 100 : 1000);
	return 1;
}

struct store *
store_open(const struct store_options *opt, struct clock *clock, char *err,
    size_t errlen)
{
	struct store	*s;
	char		*owner = NULL, *sql;
	struct origin	*me;
	struct schema_plan plan = { NULL, NULL, 0, NULL };
	int64_t		 v, from;
	int		 flags, setup = opt->mode != STORE_CLIENT, fresh = 0;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->clock = clock;
	if ((s->node_id = strdup(opt->node_id)) == NULL) {
		store_seterr(err, errlen, "out of memory");
		goto fail;
	}
	s->observer = opt->observer;
	if (schema_marks_set(s, opt) == -1) {
		store_seterr(err, errlen, "out of memory");
		goto fail;
	}
	if (opt->refused != NULL)
		*opt->refused = 0;
	s->max_skew_ms = opt->max_clock_skew_ms;

	/* SQLite's memory statistics take a global mutex for each malloc
	   and free; nothing here reads them (fails harmlessly if SQLite was
	   used before) */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	/* one thread per connection: no need for SQLite's mutexes */
	flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
	    (setup ? SQLITE_OPEN_CREATE : 0);
	if (sqlite3_open_v2(opt->path, &s->db, flags, NULL) != SQLITE_OK) {
		store_seterr(err, errlen, "database %s: %s", opt->path,
		    s->db != NULL ? sqlite3_errmsg(s->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_handler(s->db, store_busy, NULL);
	/* secure_delete: what a write frees is zeroed, so that an erased
	   value (erase.c) and the old versions of rows do not stay in the
	   file's free space */
	sql = store_sql("PRAGMA journal_mode = WAL;"
	    "PRAGMA secure_delete = ON;"
	    "PRAGMA synchronous = NORMAL;"
	    "PRAGMA cache_size = -%d;"
	    "PRAGMA temp_store = MEMORY;"
	    "PRAGMA wal_autocheckpoint = %d;",
	    (opt->cache_size_mib > 0 ? opt->cache_size_mib : 8) * 1024,
	    STORE_CHECKPOINT_PAGES);
	if (store_exec(s, sql) == -1) {
		sqlite3_free(sql);
		store_seterr(err, errlen, "database %s: %s", opt->path,
		    sqlite3_errmsg(s->db));
		goto fail;
	}
	sqlite3_free(sql);

	if (setup) {
		fresh = store_pragma_int(s, "SELECT count(*) FROM "
		    "sqlite_schema") == 0;
		if (store_exec(s, "BEGIN IMMEDIATE") == -1 ||
		    store_exec(s, store_ddl) == -1) {
			store_seterr(err, errlen, "database %s: %s", opt->path,
			    sqlite3_errmsg(s->db));
			goto fail;
		}
		if (opt->schema_path != NULL) {
			if (schema_plan_file(s->db, opt->schema_path, &plan,
			    err, errlen) == -1) {
				if (opt->refused != NULL)
					*opt->refused = 1;
				goto fail;
			}
			if (schema_plan_run(s, &plan, opt->schema_path, err,
			    errlen) == -1)
				goto fail;
		}
	}
	if ((v = store_format(s)) == -1) {
		store_seterr(err, errlen, "database %s: not a labsync "
		    "database (run labsyncctl init): %s", opt->path,
		    sqlite3_errmsg(s->db));
		goto fail;
	}
	if (v > STORE_FORMAT) {
		store_seterr(err, errlen, "database %s was written by a newer "
		    "labsync (format %lld, this one knows %d)", opt->path,
		    (long long)v, STORE_FORMAT);
		if (opt->refused != NULL)
			*opt->refused = 1;
		goto fail;
	}
	if (v < STORE_FORMAT && !setup) {
		store_seterr(err, errlen, "database %s has format %lld: start "
		    "labsyncd once to upgrade it", opt->path, (long long)v);
		goto fail;
	}
	from = v;
	/* upgrades run inside the set-up transaction: all or nothing */
	for (; setup && v < STORE_FORMAT; v++) {
		log_info("database %s: upgrading format %lld to %lld",
		    opt->path, (long long)v, (long long)v + 1);
		if (store_exec(s, store_upgrades[v]) == -1)
			goto sqlfail;
	}
	if (store_prepare_all(s) == -1) {
		store_seterr(err, errlen, "database %s: not a labsync "
		    "database (run labsyncctl init): %s", opt->path,
		    sqlite3_errmsg(s->db));
		goto fail;
	}
	if ((v = store_meta_get(s, "node_id", NULL, &owner)) == -1)
		goto sqlfail;
	if (v == 1 && strcmp(owner, opt->node_id) != 0) {
		store_seterr(err, errlen, "database %s belongs to node '%s', "
		    "not '%s'", opt->path, owner, opt->node_id);
		if (opt->refused != NULL)
			*opt->refused = 1;
		goto fail;
	}
	if (setup && (store_meta_put_int(s, "format", STORE_FORMAT) == -1 ||
	    store_meta_put_text(s, "node_id", opt->node_id) == -1))
		goto sqlfail;

	if (schema_load(s, opt->tables, opt->ntables, err, errlen) == -1) {
		if (opt->refused != NULL)
			*opt->refused = 1;
		goto fail;
	}
	if (setup && changelog_widen(s) == -1)
		goto sqlfail;
	for (size_t i = 0; setup && i < s->ntables; i++)
		if (capture_triggers(s, &s->tables[i]) == -1)
			goto sqlfail;
	if (changelog_prepare(s) == -1)
		goto sqlfail;
	if (setup) {
		/* know the registered origins first: on a reopened database
		   our own is there already and must not be inserted again */
		if (vector_load(s) == -1 ||
		    (me = vector_origin_get(s, opt->node_id)) == NULL)
			goto sqlfail;
		sql = store_sql("UPDATE labsync_state SET self = %lld,"
		    " seq = max(seq, %lld)", (long long)me->id,
		    (long long)me->seq);
		v = store_exec(s, sql);
		sqlite3_free(sql);
		if (v == -1)
			goto sqlfail;
		if (from < 2 && (capture_clocks_upgrade(s) == -1 ||
		    capture_replay_pending(s) == -1))
			goto sqlfail;
		if (merge_rows_check(s) == -1)
			goto sqlfail;
		if (store_exec(s, "UPDATE labsync_origin SET seq = max(seq,"
		    " (SELECT seq FROM labsync_state)) WHERE id ="
		    " (SELECT self FROM labsync_state)") == -1)
			goto sqlfail;
		if (opt->observer &&
		    store_exec(s, "UPDATE labsync_state SET writable = 0") == -1)
			goto sqlfail;
		if (!opt->observer && store_exec(s, "UPDATE labsync_state "
		    "SET writable = 1 WHERE writable = 0") == -1)
			goto sqlfail;
		if (store_exec(s, "COMMIT") == -1)
			goto sqlfail;
	}
	if (vector_load(s) == -1)
		goto sqlfail;
	if (opt->mode == STORE_DAEMON)
		store_capture(s, 0);
	if ((v = store_pragma_int(s, "SELECT hlc FROM labsync_state")) > 0)
		clock_absorb(s->clock, (uint64_t)v);
	/* what was written while no daemon ran reaches peers by catch-up */
	s->published = s->self != NULL ? s->self->seq : 0;
	store_changed_elsewhere(s);
	s->schema_version = store_pragma_int(s, "PRAGMA schema_version");
	free(owner);
	/* a new database has every table of the file: not news */
	if (!fresh)
		store_schema_log(&plan, opt->schema_path);
	schema_plan_free(&plan);
	return s;
sqlfail:
	store_seterr(err, errlen, "database %s: %s", opt->path,
	    sqlite3_errmsg(s->db));
fail:
	free(owner);
	schema_plan_free(&plan);
	store_free(s);
	return NULL;
}

void
store_free(struct store *s)
{
	if (s == NULL)
		return;
	checkpoint_stop(s);
	compact_free(s);
	schema_free(s);
	vector_clear(s);
	outbox_clear(s);
	sqlite3_finalize(s->st_meta_get);
	sqlite3_finalize(s->st_meta_put);
	sqlite3_finalize(s->st_row_get);
	sqlite3_finalize(s->st_row_put);
	sqlite3_finalize(s->st_row_upd);
	sqlite3_finalize(s->st_row_drop);
	sqlite3_finalize(s->st_rowid_get);
	sqlite3_finalize(s->st_rowid_put);
	sqlite3_finalize(s->st_rowid_upd);
	sqlite3_finalize(s->st_rowid_drop);
	sqlite3_finalize(s->st_row_any);
	sqlite3_finalize(s->st_log_put);
	sqlite3_finalize(s->st_log_range);
	sqlite3_finalize(s->st_at_get);
	sqlite3_finalize(s->st_at_put);
	sqlite3_finalize(s->st_aside_put);
	sqlite3_finalize(s->st_erased);
	sqlite3_finalize(s->st_origin_new);
	sqlite3_finalize(s->st_origin_seq);
	sqlite3_finalize(s->st_state_hlc);
	sqlite3_finalize(s->st_state_seq);
	sqlite3_finalize(s->st_applying);
	sqlite3_finalize(s->st_begin);
	sqlite3_finalize(s->st_commit);
	sqlite3_finalize(s->st_data_version);
	if (s->db != NULL && sqlite3_get_autocommit(s->db) == 0)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(s->db);
	free(s->node_id);
	schema_marks_free(s);
	free(s);
}

/*
 * Triggers on this connection, the capture triggers and any of the
 * application's. The daemon runs with them off: what it applies from
 * other nodes must not fire them (and their WHEN clauses would cost a
 * quarter of an apply), and switching them for each transaction would
 * make SQLite prepare every statement again, twice: 0.3 ms for a single
 * change. A local write through the daemon (the HTTP API) switches them
 * on around itself.
 */
void
store_capture(struct store *s, int on)
{
	if (on)
		store_settle(s);	/* a local write: not in a held apply */
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_TRIGGER, on, NULL);
	s->capture_off = !on;
}

struct sqlite3 *
store_db(struct store *s)
{
	return s->db;
}

int
store_set_writable(struct store *s, enum store_writable w)
{
	char	 sql[64];

	store_settle(s);
	if (s->observer)
		w = STORE_READONLY;
	s->hold_local = w == STORE_RECOVERING;
	snprintf(sql, sizeof(sql), "UPDATE labsync_state SET writable = %d",
	    (int)w);
	return store_exec(s, sql);
}

int
store_changed_elsewhere(struct store *s)
{
	int64_t		 v = 0;

	if (sqlite3_step(s->st_data_version) == SQLITE_ROW)
		v = sqlite3_column_int64(s->st_data_version, 0);
	sqlite3_reset(s->st_data_version);
	if (v == s->data_version)
		return 0;
	s->data_version = v;
	return 1;
}

/* --- the schema as it grows ------------------------------------------ */

/* One info line for each table and column a schema file added. */
static void
store_schema_log(const struct schema_plan *p, const char *path)
{
	for (size_t i = 0; i < p->n; i++)
		log_info("schema %s: added %s", path, p->what[i]);
}

/* The non-key columns of table tbl in the database, comma-separated. */
static char *
store_column_list(struct store *s, const char *tbl)
{
	sqlite3_stmt	*st;
	char		*list = NULL;

	if (sqlite3_prepare_v2(s->db, "SELECT group_concat(name, ',') FROM "
	    "(SELECT name FROM pragma_table_info(?) WHERE pk = 0 ORDER BY "
	    "cid)", -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_text(st, 1, tbl, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		list = store_sql("%s", sqlite3_column_text(st, 0) != NULL ?
		    (const char *)sqlite3_column_text(st, 0) : "");
	sqlite3_finalize(st);
	return list;
}

/* Whether a synced table's columns differ from the layout, or one of its
   capture triggers is gone (a table rebuilt by hand): 1, 0, -1. */
static int
store_layout_stale(struct store *s)
{
	for (size_t i = 0; i < s->ntables; i++) {
		struct table *t = &s->tables[i];
		char *have, *want = store_sql("%s", "");
		int64_t trig;
		int same;

		for (int j = 0; j < t->ncols; j++)
			want = store_append(want, "%s%s", j ? "," : "",
			    t->cols[j].name);
		have = store_column_list(s, t->name);
		same = have != NULL && strcmp(have, want) == 0;
		sqlite3_free(have);
		sqlite3_free(want);
		if (!same)
			return 1;
		want = store_sql("SELECT count(*) FROM sqlite_schema WHERE "
		    "type = 'trigger' AND tbl_name = %Q AND name GLOB "
		    "'labsync_*'", t->name);
		trig = store_pragma_int(s, want);
		sqlite3_free(want);
		if (trig < 4)
			return 1;
	}
	return 0;
}

/*
 * Inside a transaction: load the layout of the synced tables names
 * again, widen the log and rebuild every capture trigger. A column's
 * clock is kept by its place (labsync_row.clocks), so the columns a
 * table had must still come first, in their order: ALTER TABLE ADD
 * COLUMN appends. On success the old layout is in *old (free it after
 * the commit); on failure it is back in place.
 */
static int
store_relayout(struct store *s, char *const *names, size_t n,
    struct table **old, size_t *nold, char *err, size_t errlen)
{
	*old = s->tables;
	*nold = s->ntables;
	s->tables = NULL;
	s->ntables = 0;
	if (schema_load(s, names, n, err, errlen) == -1)
		goto fail;
	for (size_t i = 0; i < *nold; i++) {
		struct table *o = &(*old)[i];
		struct table *t = schema_table_find(s, o->name);

		for (int j = 0; t != NULL && j < o->ncols; j++)
			if (j >= t->ncols ||
			    strcmp(t->cols[j].name, o->cols[j].name) != 0) {
				store_seterr(err, errlen, "table %s, column %s: "
				    "dropped, renamed or moved; labsync keeps "
				    "a column's place (new columns come last)",
				    o->name, o->cols[j].name);
				goto fail;
			}
		/* a row whose columns all have its newest upsert's clock
		   keeps none (NULL): spelt out for the old columns of a table
		   that grew, or the new ones would seem written by it */
		if (t != NULL && t->ncols > o->ncols &&
		    schema_clocks_spell(s, o->name, o->ncols) == -1)
			goto sqlfail;
	}
	if (changelog_widen(s) == -1)
		goto sqlfail;
	for (size_t i = 0; i < s->ntables; i++)
		if (capture_triggers(s, &s->tables[i]) == -1)
			goto sqlfail;
	return 0;
sqlfail:
	store_seterr(err, errlen, "%s", sqlite3_errmsg(s->db));
fail:
	schema_free(s);
	s->tables = *old;
	s->ntables = *nold;
	*old = NULL;
	*nold = 0;
	return -1;
}

/* Columns that came with a new layout and already hold values: written
   between an ALTER TABLE by hand and the triggers' rebuild, not captured. */
static void
store_warn_uncaptured(struct store *s, const struct table *old, size_t nold)
{
	for (size_t i = 0; i < nold; i++) {
		struct table *t = schema_table_find(s, old[i].name);

		for (int j = old[i].ncols; t != NULL && j < t->ncols; j++) {
			char *sql = store_sql("SELECT count(*) FROM \"%w\" "
			    "WHERE \"%w\" IS NOT NULL AND \"%w\" IS NOT (SELECT "
			    "dflt_value FROM pragma_table_info(%Q) WHERE name = "
			    "%Q)", t->name, t->cols[j].name, t->cols[j].name,
			    t->name, t->cols[j].name);
			int64_t n = store_pragma_int(s, sql);

			sqlite3_free(sql);
			log_info("schema: table %s has a new column %s (added "
			    "outside labsync); its writes are captured from "
			    "now on", t->name, t->cols[j].name);
			if (n > 0)
				log_warnx("schema: table %s, column %s: %lld "
				    "rows got a value before labsync saw the "
				    "column; those values are not replicated "
				    "until they are written again", t->name,
				    t->cols[j].name, (long long)n);
		}
	}
}

/*
 * Bring the database and the layout up to the schema file at path (NULL:
 * only what changed in the database) and the synced tables names: add
 * what the file has and the database lacks, in one transaction with the
 * new layout and triggers. 1 if the layout changed, 0 if nothing did,
 * -1 refused or failed (err says why; nothing changed).
 */
int
store_schema_reload(struct store *s, const char *path, char *const *names,
    size_t n, char *err, size_t errlen)
{
	struct schema_plan plan = { NULL, NULL, 0, NULL };
	struct table	*old = NULL;
	size_t		 nold = 0;
	int		 ret = -1, stale;

	store_settle(s);
	if (path != NULL &&
	    schema_plan_file(s->db, path, &plan, err, errlen) == -1)
		return -1;
	if ((stale = store_layout_stale(s)) == -1)
		goto sqlfail;
	if (plan.n == 0 && n == s->ntables && !stale) {
		ret = 0;
		goto done;
	}
	if (store_begin(s) == -1)
		goto sqlfail;
	if (path != NULL && schema_plan_run(s, &plan, path, err, errlen) == -1)
		goto rollback;
	if (store_relayout(s, names, n, &old, &nold, err, errlen) == -1)
		goto rollback;
	if (store_exec(s, "COMMIT") == -1) {
		schema_free(s);
		s->tables = old;
		s->ntables = nold;
		old = NULL;
		goto sqlfail;
	}
	sqlite3_finalize(s->st_log_put);
	sqlite3_finalize(s->st_log_range);
	s->st_log_put = s->st_log_range = NULL;
	if (changelog_prepare(s) == -1)
		fatalx("schema: cannot prepare the change log's statements");
	if (path != NULL)
		store_schema_log(&plan, path);
	if (path == NULL)
		store_warn_uncaptured(s, old, nold);
	for (size_t i = 0; i < s->ntables; i++) {
		size_t j;

		for (j = 0; j < nold && strcmp(old[j].name,
		    s->tables[i].name) != 0; j++)
			;
		if (j == nold)
			log_info("schema: table %s is synced from now on",
			    s->tables[i].name);
	}
	schema_tables_free(old, nold);
	ret = 1;
	goto done;
sqlfail:
	store_seterr(err, errlen, "%s", sqlite3_errmsg(s->db));
rollback:
	if (sqlite3_get_autocommit(s->db) == 0)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
done:
	s->schema_version = store_pragma_int(s, "PRAGMA schema_version");
	schema_plan_free(&plan);
	return ret;
}

/*
 * After another connection committed: has the schema changed (an ALTER
 * TABLE in the sqlite3 shell)? One read of the header when it has not.
 * If the synced tables' columns or triggers changed, the layout and the
 * triggers follow: 1; 0 if nothing did, -1 if that failed (logged; the
 * old layout stays).
 */
int
store_schema_check(struct store *s)
{
	char	**names, err[512];
	int	 ret;

	if (store_pragma_int(s, "PRAGMA schema_version") == s->schema_version)
		return 0;
	if ((names = calloc(s->ntables + 1, sizeof(*names))) == NULL) {
		log_warn("schema");
		return -1;
	}
	for (size_t i = 0; i < s->ntables; i++)
		names[i] = s->tables[i].name;
	ret = store_schema_reload(s, NULL, names, s->ntables, err,
	    sizeof(err));
	free(names);
	if (ret == -1)
		log_warnx("schema changed by another writer, keeping the "
		    "layout labsync had: %s", err);
	return ret;
}

/* --- transactions ---------------------------------------------------- */

int
store_begin(struct store *s)
{
	return store_step_done(s, s->st_begin);
}

/* Persist what changed in memory, then commit. */
int
store_commit(struct store *s)
{
	if (vector_save(s) == -1)
		return -1;
	/* the capture triggers stamp after every clock we absorbed */
	sqlite3_bind_int64(s->st_state_hlc, 1, (int64_t)clock_last(s->clock));
	if (store_step_done(s, s->st_state_hlc) == -1)
		return -1;
	if (store_step_done(s, s->st_commit) == -1)
		return -1;
	vector_committed(s);
	return 0;
}

/* Undo: the database rolls back; memory follows it. */
void
store_rollback(struct store *s, size_t outbox_mark)
{
	if (sqlite3_get_autocommit(s->db) == 0)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	s->held = NULL;
	vector_load(s);
	outbox_rollback(s, outbox_mark);
}

void
store_hold(struct store *s, void (*end)(void *), void *arg)
{
	s->held = end;
	s->held_arg = arg;
}

void
store_settle(struct store *s)
{
	void	(*end)(void *) = s->held;

	if (end == NULL)
		return;
	s->held = NULL;
	end(s->held_arg);
}

void
store_set_relay(struct store *s, int on)
{
	s->no_relay = !on;
}

/* Bind a change's value (NULL: SQL NULL) to parameter idx. */
void
store_bind_value(sqlite3_stmt *st, int idx, const Labsync__Value *v)
{
	switch (v != NULL ? v->kind_case : LABSYNC__VALUE__KIND_NULL) {
	case LABSYNC__VALUE__KIND_INTEGER:
		sqlite3_bind_int64(st, idx, v->integer);
		break;
	case LABSYNC__VALUE__KIND_REAL:
		sqlite3_bind_double(st, idx, v->real);
		break;
	case LABSYNC__VALUE__KIND_TEXT:
		sqlite3_bind_text(st, idx, v->text, -1, SQLITE_STATIC);
		break;
	case LABSYNC__VALUE__KIND_BLOB:
		/* protobuf-c decodes an empty blob with data NULL, which
		   SQLite would bind as NULL: bind x'' as the origin has it */
		if (v->blob.len == 0)
			sqlite3_bind_zeroblob(st, idx, 0);
		else
			sqlite3_bind_blob(st, idx, v->blob.data,
			    (int)v->blob.len, SQLITE_STATIC);
		break;
	default:
		sqlite3_bind_null(st, idx);
		break;
	}
}

int64_t
store_db_bytes(struct store *s)
{
	return store_pragma_int(s, "SELECT page_count * page_size FROM "
	    "pragma_page_count(), pragma_page_size()");
}

int
store_healthy(struct store *s)
{
	return store_pragma_int(s, "SELECT count(*) FROM labsync_state") == 1 ?
	    0 : -1;
}
