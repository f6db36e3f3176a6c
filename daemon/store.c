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
};

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
	    aside_prepare(s) == -1)
		goto done;
	ret = 0;
done:
	sqlite3_free(sql);
	return ret;
}

/* The format of the labsync_* tables: STORE_FORMAT for a new database,
   -1 if it is not a labsync database. */
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
		v = STORE_FORMAT;
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
	int64_t		 v, from;
	int		 flags, setup = opt->mode != STORE_CLIENT;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->clock = clock;
	if ((s->node_id = strdup(opt->node_id)) == NULL) {
		store_seterr(err, errlen, "out of memory");
		goto fail;
	}
	s->observer = opt->observer;
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
	sql = store_sql("PRAGMA journal_mode = WAL;"
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
		if (store_exec(s, "BEGIN IMMEDIATE") == -1 ||
		    store_exec(s, store_ddl) == -1) {
			store_seterr(err, errlen, "database %s: %s", opt->path,
			    sqlite3_errmsg(s->db));
			goto fail;
		}
		if (opt->schema_path != NULL &&
		    schema_run_file(s, opt->schema_path, err, errlen) == -1)
			goto fail;
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
	free(owner);
	return s;
sqlfail:
	store_seterr(err, errlen, "database %s: %s", opt->path,
	    sqlite3_errmsg(s->db));
fail:
	free(owner);
	store_free(s);
	return NULL;
}

void
store_free(struct store *s)
{
	if (s == NULL)
		return;
	checkpoint_stop(s);
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
	sqlite3_finalize(s->st_aside_put);
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
