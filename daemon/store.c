/*
 * store.c: the node's SQLite database: opening, checking and upgrading
 * it, the bookkeeping tables, transactions, origins and version vectors,
 * and reading the change log for peers. Local writes are captured by
 * capture.c; remote changes are merged by store_merge.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
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
    "  clocks TEXT, PRIMARY KEY (tbl, rid)) WITHOUT ROWID;";

/*
 * store_upgrades[N] turns format N into N + 1 (run in order, in one
 * transaction, when a database written by an older labsync is opened).
 * Format 1 is the first; there is nothing older to upgrade yet.
 */
static const char *const store_upgrades[STORE_FORMAT] = {
	[0] = "",		/* 0 -> 1: the tables above, created as is */
	/* 1 -> 2: the triggers stamp local writes (see capture.c); the
	   HLC moves from labsync_meta, the log gains the columns of local
	   changes, clocks become text (store_clocks_upgrade) and what the
	   old triggers queued is stamped (store_replay_pending) */
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
	   many as the widest synced table has (store_log_widen adds them);
	   our sequence is counted in labsync_state (set in store_open) */
	[2] = "ALTER TABLE labsync_state"
	    "  ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;",
	/* 3 -> 4: the clocks of rows of tables with rowids move to
	   labsync_rowid (created above; store_rows_check moves them once
	   the synced tables are known) */
	[3] = "",
};


void
store_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

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

/* SQLite's affinity rules (datatype3.html, 3.1). */
static enum affinity
store_affinity(const char *decl)
{
	char	 up[128];
	size_t	 i;

	for (i = 0; decl[i] != '\0' && i < sizeof(up) - 1; i++)
		up[i] = (decl[i] >= 'a' && decl[i] <= 'z') ?
		    decl[i] - 32 : decl[i];
	up[i] = '\0';
	if (strstr(up, "INT") != NULL)
		return AFF_INTEGER;
	if (strstr(up, "CHAR") || strstr(up, "CLOB") || strstr(up, "TEXT"))
		return AFF_TEXT;
	if (strstr(up, "BLOB") != NULL || up[0] == '\0')
		return AFF_BLOB;
	if (strstr(up, "REAL") || strstr(up, "FLOA") || strstr(up, "DOUB"))
		return AFF_REAL;
	return AFF_NUMERIC;
}

/* Names are checked by config; quoting is still done for safety. */
static int
store_ident_ok(const char *name)
{
	if (name[0] == '\0')
		return 0;
	for (const char *p = name; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    *p == '_' || (p != name && *p >= '0' && *p <= '9')))
			return 0;
	return 1;
}

static void
store_table_clear(struct table *t)
{
	for (int i = 0; i < t->ncols; i++) {
		free(t->cols[i].name);
		free(t->cols[i].decl);
	}
	free(t->cols);
	free(t->name);
	free(t->pk);
	sqlite3_finalize(t->delete_row);
	sqlite3_finalize(t->find_row);
	sqlite3_finalize(t->insert_new);
	free(t->rowid);
	for (int i = 0; i < t->nupserts; i++)
		sqlite3_finalize(t->upserts[i].stmt);
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

/* s (freed) followed by sqlite3_mprintf's fmt (%q, %Q, %w). */
char *
store_append(char *s, const char *fmt, ...)
{
	va_list	 ap;
	char	*add, *n;

	va_start(ap, fmt);
	add = sqlite3_vmprintf(fmt, ap);
	va_end(ap);
	n = sqlite3_mprintf("%s%s", s != NULL ? s : "", add);
	sqlite3_free(s);
	sqlite3_free(add);
	return n;
}

/*
 * A table with rowids keeps its rows' clocks by rowid (labsync_rowid):
 * how SQL names the rowid (a column may take a name: SQLite has three),
 * and the statements that find it. One WITHOUT ROWID keeps them by key.
 */
static int
store_table_rowid(struct store *s, struct table *t)
{
	static const char *const names[] = { "rowid", "_rowid_", "oid" };
	char	*sql, *cols, *vals;
	int64_t	 wr;
	int	 ret;

	sql = sqlite3_mprintf("SELECT wr FROM pragma_table_list WHERE "
	    "schema = 'main' AND name = %Q", t->name);
	wr = store_pragma_int(s, sql);
	sqlite3_free(sql);
	if (wr != 0)
		return wr == 1 ? 0 : -1;
	for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		int taken = strcasecmp(t->pk, names[k]) == 0;

		for (int i = 0; i < t->ncols && !taken; i++)
			taken = strcasecmp(t->cols[i].name, names[k]) == 0;
		if (!taken) {
			t->rowid = strdup(names[k]);
			break;
		}
	}
	if (t->rowid == NULL)
		return 0;	/* every name taken: by key, as without */
	sql = sqlite3_mprintf("SELECT %s FROM \"%w\" WHERE \"%w\" = ?",
	    t->rowid, t->name, t->pk);
	ret = store_prepare(s, &t->find_row, sql);
	sqlite3_free(sql);
	cols = sqlite3_mprintf("\"%w\"", t->pk);
	vals = sqlite3_mprintf("?1");
	for (int i = 0; i < t->ncols; i++) {
		cols = store_append(cols, ", \"%w\"", t->cols[i].name);
		vals = store_append(vals, ", ?%d", i + 2);
	}
	sql = sqlite3_mprintf("INSERT INTO \"%w\"(%s) VALUES (%s) "
	    "ON CONFLICT(\"%w\") DO NOTHING", t->name, cols, vals, t->pk);
	if (ret == 0)
		ret = store_prepare(s, &t->insert_new, sql);
	sqlite3_free(sql);
	sqlite3_free(cols);
	sqlite3_free(vals);
	return ret;
}

/* Learn a synced table's layout and check it can be synced. */
static int
store_table_load(struct store *s, struct table *t, const char *name,
    char *err, size_t errlen)
{
	sqlite3_stmt	*st = NULL;
	char		*sql = NULL;
	int		 npk = 0, ret = -1, rc;

	t->name = strdup(name);
	if (!store_ident_ok(name)) {
		store_seterr(err, errlen, "table name '%s' is not valid", name);
		goto done;
	}
	if (sqlite3_prepare_v2(s->db,
	    "SELECT name, type, pk FROM pragma_table_info(?) ORDER BY cid",
	    -1, &st, NULL) != SQLITE_OK)
		goto sqlerr;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *cname = (const char *)sqlite3_column_text(st, 0);
		const char *decl = (const char *)sqlite3_column_text(st, 1);
		int pk = sqlite3_column_int(st, 2);

		if (decl == NULL)
			decl = "";
		if (!store_ident_ok(cname)) {
			store_seterr(err, errlen, "table %s: column name '%s' "
			    "is not supported", name, cname);
			goto done;
		}
		if (pk != 0) {
			npk++;
			if (store_affinity(decl) != AFF_TEXT) {
				store_seterr(err, errlen, "table %s: primary key "
				    "%s must be TEXT, not '%s'", name, cname,
				    decl);
				goto done;
			}
			free(t->pk);
			t->pk = strdup(cname);
			continue;
		}
		if (t->ncols == STORE_MAX_COLUMNS) {
			store_seterr(err, errlen, "table %s: more than %d "
			    "columns", name, STORE_MAX_COLUMNS);
			goto done;
		}
		t->cols = reallocarray(t->cols, t->ncols + 1, sizeof(*t->cols));
		t->cols[t->ncols].name = strdup(cname);
		t->cols[t->ncols].decl = strdup(decl);
		t->cols[t->ncols].aff = store_affinity(decl);
		t->ncols++;
	}
	if (rc != SQLITE_DONE)
		goto sqlerr;
	if (t->ncols == 0 && npk == 0) {
		store_seterr(err, errlen, "synced table %s does not exist", name);
		goto done;
	}
	if (npk != 1) {
		store_seterr(err, errlen, "synced table %s needs exactly one "
		    "TEXT primary key, it has %d", name, npk);
		goto done;
	}
	sql = sqlite3_mprintf("DELETE FROM \"%w\" WHERE \"%w\" = ?",
	    name, t->pk);
	if (store_prepare(s, &t->delete_row, sql) == -1)
		goto done;
	if (store_table_rowid(s, t) == -1)
		goto sqlerr;
	ret = 0;
	goto done;
sqlerr:
	store_seterr(err, errlen, "%s", sqlite3_errmsg(s->db));
done:
	sqlite3_free(sql);
	sqlite3_finalize(st);
	return ret;
}

struct table *
store_table_find(struct store *s, const char *name)
{
	for (size_t i = 0; i < s->ntables; i++)
		if (strcmp(s->tables[i].name, name) == 0)
			return &s->tables[i];
	return NULL;
}

/* hint: where the column probably is (changes list columns in table
   order, so the next one usually follows the last); -1 for none */
int
store_column_find(const struct table *t, const char *name, int hint)
{
	if (hint >= 0 && hint < t->ncols &&
	    strcmp(t->cols[hint].name, name) == 0)
		return hint;
	for (int i = 0; i < t->ncols; i++)
		if (strcmp(t->cols[i].name, name) == 0)
			return i;
	return -1;
}

static int
store_origin_load(struct store *s)
{
	sqlite3_stmt	*st = NULL;
	int		 rc;

	for (size_t i = 0; i < s->norigins; i++)
		free(s->origins[i].name);
	free(s->origins);
	s->origins = NULL;
	s->norigins = 0;
	s->self = NULL;
	/* our own sequence: counted by the triggers in labsync_state */
	if (sqlite3_prepare_v2(s->db, "SELECT o.id, o.name, CASE o.id WHEN"
	    " st.self THEN max(o.seq, st.seq) ELSE o.seq END FROM"
	    " labsync_origin AS o, labsync_state AS st ORDER BY o.id", -1, &st,
	    NULL) != SQLITE_OK)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct origin *o;

		s->origins = reallocarray(s->origins, s->norigins + 1,
		    sizeof(*s->origins));
		o = &s->origins[s->norigins++];
		o->id = sqlite3_column_int64(st, 0);
		o->name = strdup((const char *)sqlite3_column_text(st, 1));
		o->seq = o->committed = sqlite3_column_int64(st, 2);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -1;
	for (size_t i = 0; i < s->norigins; i++)
		if (strcmp(s->origins[i].name, s->node_id) == 0)
			s->self = &s->origins[i];
	return 0;
}

struct origin *
store_origin_find(struct store *s, const char *name)
{
	for (size_t i = 0; i < s->norigins; i++)
		if (strcmp(s->origins[i].name, name) == 0)
			return &s->origins[i];
	return NULL;
}

struct origin *
store_origin_byid(struct store *s, int64_t id)
{
	for (size_t i = 0; i < s->norigins; i++)
		if (s->origins[i].id == id)
			return &s->origins[i];
	return NULL;
}

/* Find or register an origin (inside the caller's transaction). */
struct origin *
store_origin_get(struct store *s, const char *name)
{
	struct origin	*o;
	char		*selfname = s->self != NULL ? s->self->name : NULL;

	if ((o = store_origin_find(s, name)) != NULL)
		return o;
	sqlite3_bind_text(s->st_origin_new, 1, name, -1, SQLITE_TRANSIENT);
	if (store_step_done(s, s->st_origin_new) == -1)
		return NULL;
	s->origins = reallocarray(s->origins, s->norigins + 1,
	    sizeof(*s->origins));
	o = &s->origins[s->norigins++];
	o->id = sqlite3_last_insert_rowid(s->db);
	o->name = strdup(name);
	o->seq = o->committed = 0;
	/* realloc moved the array: find ourselves again */
	s->self = NULL;
	if (selfname != NULL)
		s->self = store_origin_find(s, s->node_id);
	return o;
}

/* (hlc, origin name) order; an unset clock (hlc 0) is the smallest. */
int
store_clock_cmp(struct store *s, uint64_t ha, int64_t oa, uint64_t hb,
    int64_t ob)
{
	struct origin	*a, *b;

	if (ha != hb)
		return ha < hb ? -1 : 1;
	if (oa == ob)
		return 0;
	a = store_origin_byid(s, oa);
	b = store_origin_byid(s, ob);
	if (a == NULL || b == NULL)
		return a == NULL ? -1 : 1;
	return strcmp(a->name, b->name) < 0 ? -1 : 1;
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
		if (text != NULL)
			*text = strdup((const char *)
			    sqlite3_column_text(s->st_meta_get, 0));
		ret = 1;
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

static int
store_prepare_all(struct store *s)
{
	if (store_prepare(s, &s->st_meta_get,
	    "SELECT value FROM labsync_meta WHERE key = ?") == -1 ||
	    store_prepare(s, &s->st_meta_put,
	    "INSERT INTO labsync_meta(key, value) VALUES (?, ?) "
	    "ON CONFLICT(key) DO UPDATE SET value = excluded.value") == -1 ||
	    store_prepare(s, &s->st_row_get,
	    "SELECT r_hlc, r_origin, d_hlc, d_origin, clocks FROM labsync_row "
	    "WHERE tbl = ? AND pk = ?") == -1 ||
	    store_prepare(s, &s->st_row_put,
	    "INSERT INTO labsync_row(tbl, pk, r_hlc, r_origin, d_hlc, "
	    "d_origin, clocks) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
	    "ON CONFLICT DO NOTHING") == -1 ||
	    store_prepare(s, &s->st_row_upd,
	    "UPDATE labsync_row SET r_hlc = ?3, r_origin = ?4, d_hlc = ?5, "
	    "d_origin = ?6, clocks = ?7 WHERE tbl = ?1 AND pk = ?2") == -1 ||
	    store_prepare(s, &s->st_row_drop,
	    "DELETE FROM labsync_row WHERE tbl = ? AND pk = ?") == -1 ||
	    store_prepare(s, &s->st_rowid_get,
	    "SELECT r_hlc, r_origin, d_hlc, d_origin, clocks, pk FROM "
	    "labsync_rowid WHERE tbl = ? AND rid = ?") == -1 ||
	    store_prepare(s, &s->st_rowid_put,
	    "INSERT INTO labsync_rowid(tbl, pk, r_hlc, r_origin, d_hlc, "
	    "d_origin, clocks, rid) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
	    "ON CONFLICT DO UPDATE SET pk = ?2, r_hlc = ?3, r_origin = ?4, "
	    "d_hlc = ?5, d_origin = ?6, clocks = ?7") == -1 ||
	    store_prepare(s, &s->st_rowid_upd,
	    "UPDATE labsync_rowid SET r_hlc = ?3, r_origin = ?4, d_hlc = ?5, "
	    "d_origin = ?6, clocks = ?7 WHERE tbl = ?1 AND rid = ?8") == -1 ||
	    store_prepare(s, &s->st_row_any,
	    "SELECT EXISTS (SELECT 1 FROM labsync_row WHERE tbl = ?)") == -1 ||
	    store_prepare(s, &s->st_rowid_drop,
	    "DELETE FROM labsync_rowid WHERE tbl = ? AND rid = ?") == -1 ||
	    store_prepare(s, &s->st_origin_new,
	    "INSERT INTO labsync_origin(name) VALUES (?)") == -1 ||
	    store_prepare(s, &s->st_origin_seq,
	    "UPDATE labsync_origin SET seq = max(seq, ?) WHERE id = ?") ==
	    -1 ||
	    store_prepare(s, &s->st_state_hlc,
	    "UPDATE labsync_state SET hlc = max(hlc, ?)") == -1 ||
	    store_prepare(s, &s->st_state_seq,
	    "UPDATE labsync_state SET seq = max(seq, ?)") == -1 ||
	    store_prepare(s, &s->st_applying,
	    "UPDATE labsync_state SET applying = ?") == -1 ||
	    store_prepare(s, &s->st_begin, "BEGIN IMMEDIATE") == -1 ||
	    store_prepare(s, &s->st_commit, "COMMIT") == -1 ||
	    store_prepare(s, &s->st_data_version, "PRAGMA data_version") == -1)
		return -1;
	return 0;
}

/* Run the domain schema file (CREATE TABLE IF NOT EXISTS ...). */
static int
store_run_schema(struct store *s, const char *path, char *err, size_t errlen)
{
	FILE	*f;
	char	*buf = NULL, *msg = NULL;
	long	 len;
	int	 ret = -1;

	if ((f = fopen(path, "r")) == NULL) {
		store_seterr(err, errlen, "schema %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (fseek(f, 0, SEEK_END) == -1 || (len = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) == -1 ||
	    (buf = malloc(len + 1)) == NULL ||
	    fread(buf, 1, len, f) != (size_t)len) {
		store_seterr(err, errlen, "schema %s: cannot read", path);
		goto done;
	}
	buf[len] = '\0';
	if (sqlite3_exec(s->db, buf, NULL, NULL, &msg) != SQLITE_OK) {
		store_seterr(err, errlen, "schema %s: %s", path, msg);
		goto done;
	}
	ret = 0;
done:
	sqlite3_free(msg);
	free(buf);
	fclose(f);
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

/* How many value columns (v0, v1, ...) the log has. */
static int
store_log_width(struct store *s)
{
	int64_t	 n = store_pragma_int(s, "SELECT count(*) FROM"
	    " pragma_table_info('labsync_log') WHERE name GLOB 'v[0-9]*'");

	return n > 0 ? (int)n : 0;
}

static int
store_widest(const struct store *s)
{
	int	 ncols = 0;

	for (size_t i = 0; i < s->ntables; i++)
		if (s->tables[i].ncols > ncols)
			ncols = s->tables[i].ncols;
	return ncols;
}

/* Value columns for the widest synced table, before triggers use them. */
static int
store_log_widen(struct store *s)
{
	for (int i = store_log_width(s); i < store_widest(s); i++) {
		char	*sql = sqlite3_mprintf("ALTER TABLE labsync_log "
		    "ADD COLUMN v%d", i);
		int	 ret = sql != NULL ? store_exec(s, sql) : -1;

		sqlite3_free(sql);
		if (ret == -1)
			return -1;
	}
	return 0;
}

/*
 * Reads the log in order, and writes an applied change to it, with the
 * value columns synced tables use.
 */
static int
store_prepare_log(struct store *s)
{
	char	*sql, *cols = sqlite3_mprintf("%s", "");
	char	*args = sqlite3_mprintf("%s", "");
	int	 ncols = store_widest(s), have = store_log_width(s), ret;

	s->log_width = ncols < have ? ncols : have;
	for (int i = 0; i < s->log_width && cols != NULL && args != NULL;
	    i++) {
		char *more = sqlite3_mprintf("%s, v%d", cols, i);

		sqlite3_free(cols);
		cols = more;
		more = sqlite3_mprintf("%s, ?", args);
		sqlite3_free(args);
		args = more;
	}
	sql = sqlite3_mprintf("SELECT key, hlc, body, tbl, pk, op, mask%s"
	    " FROM labsync_log WHERE key > ? AND key <= ? ORDER BY key"
	    " LIMIT ?", cols);
	ret = cols != NULL && args != NULL && sql != NULL ?
	    store_prepare(s, &s->st_log_range, sql) : -1;
	sqlite3_free(sql);
	sql = sqlite3_mprintf("INSERT INTO labsync_log(key, hlc, body, tbl,"
	    " pk, op, mask%s) VALUES (?, ?, ?, ?, ?, ?, ?%s)", cols, args);
	if (ret == 0)
		ret = sql != NULL ? store_prepare(s, &s->st_log_put, sql) : -1;
	sqlite3_free(cols);
	sqlite3_free(args);
	sqlite3_free(sql);
	return ret;
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
	s->node_id = strdup(opt->node_id);
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
	sql = sqlite3_mprintf("PRAGMA journal_mode = WAL;"
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
		    store_run_schema(s, opt->schema_path, err, errlen) == -1)
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
	if (store_meta_get(s, "node_id", NULL, &owner) == 1 &&
	    strcmp(owner, opt->node_id) != 0) {
		store_seterr(err, errlen, "database %s belongs to node '%s', "
		    "not '%s'", opt->path, owner, opt->node_id);
		if (opt->refused != NULL)
			*opt->refused = 1;
		goto fail;
	}
	if (setup && (store_meta_put_int(s, "format", STORE_FORMAT) == -1 ||
	    store_meta_put_text(s, "node_id", opt->node_id) == -1))
		goto sqlfail;

	s->tables = calloc(opt->ntables, sizeof(*s->tables));
	for (size_t i = 0; i < opt->ntables; i++) {
		s->ntables++;
		if (store_table_load(s, &s->tables[i], opt->tables[i], err,
		    errlen) == -1) {
			if (opt->refused != NULL)
				*opt->refused = 1;
			goto fail;
		}
	}
	if (setup && store_log_widen(s) == -1)
		goto sqlfail;
	for (size_t i = 0; setup && i < s->ntables; i++)
		if (store_triggers(s, &s->tables[i]) == -1)
			goto sqlfail;
	if (store_prepare_log(s) == -1)
		goto sqlfail;
	if (setup) {
		/* know the registered origins first: on a reopened database
		   our own is there already and must not be inserted again */
		if (store_origin_load(s) == -1 ||
		    (me = store_origin_get(s, opt->node_id)) == NULL)
			goto sqlfail;
		sql = sqlite3_mprintf("UPDATE labsync_state SET self = %lld,"
		    " seq = max(seq, %lld)", (long long)me->id,
		    (long long)me->seq);
		v = store_exec(s, sql);
		sqlite3_free(sql);
		if (v == -1)
			goto sqlfail;
		if (from < 2 && (store_clocks_upgrade(s) == -1 ||
		    store_replay_pending(s) == -1))
			goto sqlfail;
		if (store_rows_check(s) == -1)
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
	if (store_origin_load(s) == -1)
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
	store_checkpointer_stop(s);
	for (size_t i = 0; i < s->ntables; i++)
		store_table_clear(&s->tables[i]);
	free(s->tables);
	for (size_t i = 0; i < s->norigins; i++)
		free(s->origins[i].name);
	free(s->origins);
	free(s->outbox);
	free(s->outbox_bytes);
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

const char *
store_node_id(const struct store *s)
{
	return s->node_id;
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
	for (size_t i = 0; i < s->norigins; i++) {
		struct origin *o = &s->origins[i];

		if (o->seq == o->committed)
			continue;
		sqlite3_bind_int64(s->st_origin_seq, 1, (int64_t)o->seq);
		sqlite3_bind_int64(s->st_origin_seq, 2, o->id);
		if (store_step_done(s, s->st_origin_seq) == -1)
			return -1;
		/* our own changes, fetched back: the triggers go on after */
		if (o == s->self) {
			sqlite3_bind_int64(s->st_state_seq, 1, (int64_t)o->seq);
			if (store_step_done(s, s->st_state_seq) == -1)
				return -1;
		}
	}
	/* the capture triggers stamp after every clock we absorbed */
	sqlite3_bind_int64(s->st_state_hlc, 1, (int64_t)clock_last(s->clock));
	if (store_step_done(s, s->st_state_hlc) == -1)
		return -1;
	if (store_step_done(s, s->st_commit) == -1)
		return -1;
	for (size_t i = 0; i < s->norigins; i++)
		s->origins[i].committed = s->origins[i].seq;
	return 0;
}

/* Undo: the database rolls back; memory follows it. */
void
store_rollback(struct store *s, size_t outbox_mark)
{
	if (sqlite3_get_autocommit(s->db) == 0)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	s->held = NULL;
	store_origin_load(s);
	if (outbox_mark < s->noutbox) {
		s->outbox_used = s->outbox[outbox_mark].off;
		s->noutbox = outbox_mark;
	}
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

int
store_outbox_add(struct store *s, int64_t origin, const uint8_t *data,
    size_t len)
{
	if (s->noutbox == s->outbox_cap) {
		size_t cap = s->outbox_cap ? s->outbox_cap * 2 : 256;
		struct outbuf *n = reallocarray(s->outbox, cap, sizeof(*n));

		if (n == NULL)
			return -1;
		s->outbox = n;
		s->outbox_cap = cap;
	}
	if (s->outbox_size - s->outbox_used < len) {
		size_t size = s->outbox_size ? s->outbox_size : 65536;
		uint8_t *n;

		while (size - s->outbox_used < len)
			size *= 2;
		if ((n = realloc(s->outbox_bytes, size)) == NULL)
			return -1;
		s->outbox_bytes = n;
		s->outbox_size = size;
	}
	memcpy(s->outbox_bytes + s->outbox_used, data, len);
	s->outbox[s->noutbox].off = s->outbox_used;
	s->outbox[s->noutbox].len = len;
	s->outbox[s->noutbox].origin = origin;
	s->outbox_used += len;
	s->noutbox++;
	return 0;
}

int
store_outbox_drain(struct store *s, store_change_cb cb, void *arg)
{
	int	 ret = 0;

	for (size_t i = 0; i < s->noutbox; i++) {
		struct origin *o = store_origin_byid(s, s->outbox[i].origin);

		if (ret == 0 && cb(arg, o != NULL ? o->name : "",
		    s->outbox_bytes + s->outbox[i].off, s->outbox[i].len) == -1)
			ret = -1;
	}
	s->noutbox = 0;
	s->outbox_used = 0;
	/* a bulk load's outbox is not kept for the trickle that follows */
	if (s->outbox_size > STORE_OUTBOX_KEEP) {
		free(s->outbox_bytes);
		free(s->outbox);
		s->outbox_bytes = NULL;
		s->outbox = NULL;
		s->outbox_size = s->outbox_cap = 0;
	}
	return ret;
}

size_t
store_outbox_len(const struct store *s)
{
	return s->noutbox;
}

/* --- vectors and the log ----------------------------------------------- */

Labsync__Vector *
store_vector(struct store *s)
{
	Labsync__Vector	*v;

	if ((v = calloc(1, sizeof(*v))) == NULL)
		return NULL;
	labsync__vector__init(v);
	v->entries = calloc(s->norigins + 1, sizeof(*v->entries));
	for (size_t i = 0; i < s->norigins; i++) {
		Labsync__VectorEntry *e;

		if (s->origins[i].seq == 0)
			continue;
		e = calloc(1, sizeof(*e));
		labsync__vector_entry__init(e);
		e->origin = strdup(s->origins[i].name);
		e->seq = s->origins[i].seq;
		v->entries[v->n_entries++] = e;
	}
	return v;
}

/* Advance v over one change, if it follows origin's entry without a gap. */
int
store_vector_advance(Labsync__Vector *v, const char *origin, uint64_t seq)
{
	Labsync__VectorEntry	*e = NULL, **n;

	for (size_t j = 0; j < v->n_entries && e == NULL; j++)
		if (strcmp(v->entries[j]->origin, origin) == 0)
			e = v->entries[j];
	if (e == NULL) {
		if (seq != 1)
			return 0;
		if ((n = reallocarray(v->entries, v->n_entries + 1,
		    sizeof(*n))) == NULL)
			return -1;
		v->entries = n;
		if ((e = calloc(1, sizeof(*e))) == NULL)
			return -1;
		labsync__vector_entry__init(e);
		if ((e->origin = strdup(origin)) == NULL) {
			free(e);
			return -1;
		}
		v->entries[v->n_entries++] = e;
	} else if (seq != e->seq + 1)
		return 0;
	e->seq = seq;
	return 0;
}

void
store_vector_free(Labsync__Vector *v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < v->n_entries; i++) {
		free(v->entries[i]->origin);
		free(v->entries[i]);
	}
	free(v->entries);
	free(v);
}

static uint64_t
store_vector_get(const Labsync__Vector *v, const char *origin)
{
	for (size_t i = 0; v != NULL && i < v->n_entries; i++)
		if (v->entries[i]->origin != NULL &&
		    strcmp(v->entries[i]->origin, origin) == 0)
			return v->entries[i]->seq;
	return 0;
}

uint64_t
store_origin_seq(struct store *s, const char *origin)
{
	struct origin	*o = store_origin_find(s, origin);

	return o != NULL ? o->seq : 0;
}

uint64_t
store_own_seq(struct store *s)
{
	return s->self != NULL ? s->self->seq : 0;
}

uint64_t
store_lag_behind(struct store *s, const Labsync__Vector *v)
{
	uint64_t	 lag = 0;

	for (size_t i = 0; v != NULL && i < v->n_entries; i++) {
		uint64_t mine;

		if (v->entries[i]->origin == NULL)
			continue;
		mine = store_origin_seq(s, v->entries[i]->origin);
		if (v->entries[i]->seq > mine)
			lag += v->entries[i]->seq - mine;
	}
	return lag;
}

int
store_read_missing(struct store *s, const Labsync__Vector *have,
    size_t max_changes, size_t max_bytes, store_change_cb cb, void *arg,
    int *more)
{
	size_t	 count = 0, bytes = 0;
	int	 rc;

	*more = 0;
	for (size_t i = 0; i < s->norigins; i++) {
		struct origin *o = &s->origins[i];
		uint64_t from = store_vector_get(have, o->name);
		uint64_t base = (uint64_t)o->id << ORIGIN_SHIFT;
		uint64_t got = 0;

		if (o->committed <= from)
			continue;
		if (count >= max_changes || bytes >= max_bytes) {
			*more = 1;
			break;
		}
		sqlite3_bind_int64(s->st_log_range, 1, (int64_t)(base + from));
		sqlite3_bind_int64(s->st_log_range, 2,
		    (int64_t)(base + o->committed));
		sqlite3_bind_int64(s->st_log_range, 3,
		    (int64_t)(max_changes - count));
		while ((rc = sqlite3_step(s->st_log_range)) == SQLITE_ROW) {
			struct log_bytes lb;
			struct origin *lo;
			int fail;

			if (store_log_bytes(s, s->st_log_range, &lo, &lb) == -1) {
				sqlite3_reset(s->st_log_range);
				return -1;
			}
			if (count > 0 && bytes + lb.len > max_bytes) {
				store_log_bytes_free(&lb);
				break;
			}
			fail = cb(arg, o->name, lb.data, lb.len) == -1;
			bytes += lb.len;
			store_log_bytes_free(&lb);
			if (fail) {
				sqlite3_reset(s->st_log_range);
				return -1;
			}
			count++;
			got++;
		}
		sqlite3_reset(s->st_log_range);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return -1;
		if (from + got < o->committed) {
			*more = 1;
			break;
		}
	}
	return 0;
}

void
store_fingerprint(struct store *s, uint8_t out[32])
{
	crypto_hash_sha256_state h;

	crypto_hash_sha256_init(&h);
	for (size_t i = 0; i < s->ntables; i++) {
		struct table *t = &s->tables[i];

		crypto_hash_sha256_update(&h, (const uint8_t *)t->name,
		    strlen(t->name) + 1);
		for (int j = 0; j < t->ncols; j++)
			crypto_hash_sha256_update(&h,
			    (const uint8_t *)t->cols[j].name,
			    strlen(t->cols[j].name) + 1);
	}
	crypto_hash_sha256_final(&h, out);
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

int64_t
store_log_count(struct store *s)
{
	int64_t	 n = 0;

	for (size_t i = 0; i < s->norigins; i++)
		n += (int64_t)s->origins[i].seq;
	return n;
}
