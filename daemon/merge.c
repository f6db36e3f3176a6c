/*
 * merge.c: remote changes into the store: checking each one against the
 * schema (merge_validate), and applying batches of them in one
 * transaction (merge_apply_begin, _more, _end), each change merged into
 * its row and appended to the log. (Local writes are stamped by the
 * capture triggers: capture.c.) The daemon's connection applies with
 * triggers off; one with triggers on sets labsync_state.applying inside
 * the transaction, so they stay quiet.
 *
 * Merge: per column last-writer-wins on (hlc, origin); see README.md,
 * "Merge rules". An erasure merges as a delete, and is carried out
 * (erase.c) wherever it is merged. Per row, labsync_row (by key) or
 * labsync_rowid (by rowid) keeps the newest upsert (r_*), the newest delete (d_*) and each
 * column's clock, as text that the triggers can write too: 16 hex digits
 * of HLC and 8 of origin id per column.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "clock.h"
#include "log.h"
#include "store.h"

#include "store_private.h"
#include "wire.h"

/* The statements that read and write rows' clocks. */
int
merge_prepare(struct store *s)
{
	if (store_prepare(s, &s->st_row_get,
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
	    "DELETE FROM labsync_rowid WHERE tbl = ? AND rid = ?") == -1)
		return -1;
	return 0;
}

static int	merge_rows_remap(struct store *, const struct table *);

/* --- merge metadata ---------------------------------------------------- */

#define CLOCK_TEXT	24	/* characters of one column's clock */

/* n hex digits (the triggers write lower case) */
static uint64_t
merge_hex(const char *p, int n)
{
	uint64_t	 v = 0;

	for (int i = 0; i < n; i++) {
		char c = p[i];

		v = v << 4 | (uint64_t)(c >= 'a' ? c - 'a' + 10 :
		    c >= 'A' ? c - 'A' + 10 : c - '0');
	}
	return v;
}

/* The clocks in a row of st: r_hlc, r_origin, d_hlc, d_origin, clocks. */
void
merge_meta_read(sqlite3_stmt *st, const struct table *t, struct row_meta *m)
{
	const char *b = (const char *)sqlite3_column_text(st, 4);
	int n = sqlite3_column_bytes(st, 4) / CLOCK_TEXT;

	m->exists = 1;
	m->r.hlc = sqlite3_column_int64(st, 0);
	m->r.origin = sqlite3_column_int64(st, 1);
	m->d.hlc = sqlite3_column_int64(st, 2);
	m->d.origin = sqlite3_column_int64(st, 3);
	/* NULL clocks: every column was written by the newest upsert;
	   columns added since have none */
	for (int i = 0; i < t->ncols; i++)
		m->cols[i] = b == NULL ? m->r : (struct col_clock){0, 0};
	for (int i = 0; b != NULL && i < n && i < t->ncols; i++) {
		m->cols[i].hlc = merge_hex(b + i * CLOCK_TEXT, 16);
		m->cols[i].origin = (int64_t)merge_hex(b + i * CLOCK_TEXT + 16,
		    8);
	}
}

/* Steps a one-row query; 1: a row (reset it after), 0: none, -1: error. */
static int
merge_step_one(struct store *s, sqlite3_stmt *st)
{
	int	 rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		return 1;
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return 0;
	log_warnx("sqlite: %s", sqlite3_errmsg(s->db));
	return -1;
}

/*
 * A row's clocks: by rowid if its table has rowids and the row is there
 * (an entry of another key at that rowid is stale: none), otherwise by
 * key (a deleted key, or clocks kept from before).
 */
static int
merge_row_load(struct store *s, const struct table *t, const char *pk,
    struct row_meta *m, int check)
{
	int	 rc, stale = 0;

	memset(m, 0, sizeof(*m));
	if (t->find_row != NULL) {
		sqlite3_bind_text(t->find_row, 1, pk, -1, SQLITE_STATIC);
		if ((rc = merge_step_one(s, t->find_row)) == -1)
			return -1;
		if (rc == 1) {
			m->row = 1;
			m->rid = sqlite3_column_int64(t->find_row, 0);
			sqlite3_reset(t->find_row);
		}
	}
	if (m->row) {
		sqlite3_bind_text(s->st_rowid_get, 1, t->name, -1,
		    SQLITE_STATIC);
		sqlite3_bind_int64(s->st_rowid_get, 2, m->rid);
		if ((rc = merge_step_one(s, s->st_rowid_get)) == -1)
			return -1;
		if (rc == 1) {
			const char *epk = (const char *)
			    sqlite3_column_text(s->st_rowid_get, 5);

			if (!check || (epk != NULL && strcmp(epk, pk) == 0)) {
				merge_meta_read(s->st_rowid_get, t, m);
				m->entry = 1;
			} else
				stale = 1;
			sqlite3_reset(s->st_rowid_get);
		}
		/* another row's clocks: the rowids moved */
		if (stale)
			return merge_rows_remap(s, t) == -1 ? -1 :
			    merge_row_load(s, t, pk, m, 0);
		if (m->entry)
			return 0;
	}
	sqlite3_bind_text(s->st_row_get, 1, t->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s->st_row_get, 2, pk, -1, SQLITE_STATIC);
	if ((rc = merge_step_one(s, s->st_row_get)) == 1) {
		merge_meta_read(s->st_row_get, t, m);
		m->keyed = 1;
		sqlite3_reset(s->st_row_get);
	}
	return rc == -1 ? -1 : 0;
}

/* v as n lower-case hex digits, the way the triggers' printf writes it */
static void
merge_put_hex(char *p, uint64_t v, int n)
{
	static const char digits[] = "0123456789abcdef";

	while (n-- > 0) {
		p[n] = digits[v & 0xf];
		v >>= 4;
	}
}

/*
 * Keep a row's clocks: by rowid while the table has the row (clocks
 * found by key move there), by key otherwise. row_load told which
 * entries exist: no upsert is needed.
 */
static int
merge_row_save(struct store *s, struct table *t, const char *pk,
    const struct row_meta *m)
{
	sqlite3_stmt	*st;
	char		 b[STORE_MAX_COLUMNS * CLOCK_TEXT];
	int		 same = 1;

	if (m->row)
		st = m->entry ? s->st_rowid_upd : s->st_rowid_put;
	else {
		st = m->keyed ? s->st_row_upd : s->st_row_put;
		t->no_keys = 0;
	}
	for (int i = 0; i < t->ncols && same; i++)
		same = m->cols[i].hlc == m->r.hlc &&
		    m->cols[i].origin == m->r.origin;
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, pk, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (int64_t)m->r.hlc);
	sqlite3_bind_int64(st, 4, m->r.origin);
	sqlite3_bind_int64(st, 5, (int64_t)m->d.hlc);
	sqlite3_bind_int64(st, 6, m->d.origin);
	if (m->row)
		sqlite3_bind_int64(st, 8, m->rid);
	/* spelt out only when the columns' clocks differ (rare) */
	if (same) {
		sqlite3_bind_null(st, 7);
	} else {
		for (int i = 0; i < t->ncols; i++) {
			merge_put_hex(b + i * CLOCK_TEXT, m->cols[i].hlc, 16);
			merge_put_hex(b + i * CLOCK_TEXT + 16,
			    (uint32_t)m->cols[i].origin, 8);
		}
		sqlite3_bind_text(st, 7, b, t->ncols * CLOCK_TEXT,
		    SQLITE_STATIC);
	}
	if (store_step_done(s, st) == -1)
		return -1;
	if (!m->row || !m->keyed)
		return 0;
	sqlite3_bind_text(s->st_row_drop, 1, t->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s->st_row_drop, 2, pk, -1, SQLITE_STATIC);
	return store_step_done(s, s->st_row_drop);
}

/*
 * The clocks of rows there that labsync_row keeps by key move to
 * labsync_rowid, in rowid order: all of them in a database of format 3
 * or older, later those of rows written while their table was not synced
 * (the triggers and the merge keep none there).
 */
static int
merge_rows_move(struct store *s, const struct table *t)
{
	char	*sql;
	int	 ret;

	sql = store_sql("INSERT INTO labsync_rowid(tbl, rid, pk,"
	    " r_hlc, r_origin, d_hlc, d_origin, clocks) SELECT k.tbl,"
	    " t.%s, k.pk, k.r_hlc, k.r_origin, k.d_hlc, k.d_origin,"
	    " k.clocks FROM labsync_row AS k JOIN \"%w\" AS t ON"
	    " t.\"%w\" = k.pk WHERE k.tbl = %Q ORDER BY t.%s"
	    " ON CONFLICT DO UPDATE SET pk = excluded.pk,"
	    " r_hlc = excluded.r_hlc, r_origin = excluded.r_origin,"
	    " d_hlc = excluded.d_hlc, d_origin = excluded.d_origin,"
	    " clocks = excluded.clocks",
	    t->rowid, t->name, t->pk, t->name, t->rowid);
	ret = store_exec(s, sql);
	sqlite3_free(sql);
	if (ret == -1 || sqlite3_changes(s->db) == 0)
		return ret;
	log_info("table %s: the clocks of %d rows are now kept by rowid",
	    t->name, sqlite3_changes(s->db));
	sql = store_sql("DELETE FROM labsync_row WHERE tbl = %Q AND"
	    " EXISTS (SELECT 1 FROM \"%w\" WHERE \"%w\" ="
	    " labsync_row.pk)", t->name, t->name, t->pk);
	ret = store_exec(s, sql);
	sqlite3_free(sql);
	return ret;
}

/*
 * SQLite may give rows other rowids (its documentation allows a VACUUM
 * to, and a dump loaded into a new file does): labsync_rowid then points
 * at the wrong rows, which a key that differs from the row's shows. The
 * clocks go back to their rows by key, in rowid order; of two entries of
 * one key (a row replaced without its triggers), the newest wins, and
 * those of keys without a row go.
 */
static int
merge_rows_remap(struct store *s, const struct table *t)
{
	char	*sql;
	int	 ret;

	log_warnx("table %s: rows have other rowids than their clocks say "
	    "(after a VACUUM or a dump loaded?): mapping the clocks to the "
	    "rows by key again", t->name);
	sql = store_sql("CREATE TEMP TABLE labsync_remap AS SELECT"
	    " e.tbl, t.%s AS rid, e.pk, e.r_hlc, e.r_origin, e.d_hlc,"
	    " e.d_origin, e.clocks FROM labsync_rowid AS e JOIN \"%w\" AS t"
	    " ON t.\"%w\" = e.pk WHERE e.tbl = %Q;"
	    " DELETE FROM labsync_rowid WHERE tbl = %Q;"
	    " INSERT OR REPLACE INTO labsync_rowid(tbl, rid, pk, r_hlc,"
	    " r_origin, d_hlc, d_origin, clocks) SELECT * FROM"
	    " temp.labsync_remap ORDER BY rid, r_hlc, r_origin;"
	    " DROP TABLE temp.labsync_remap;", t->rowid, t->name, t->pk,
	    t->name, t->name);
	ret = store_exec(s, sql);
	sqlite3_free(sql);
	return ret;
}

/*
 * At start-up: no row there keeps its clocks by key, and those with the
 * highest rowids still belong to their rows (after a renumbering most
 * would not; the merge checks each row it reads as well).
 */
int
merge_rows_check(struct store *s)
{
	for (size_t k = 0; k < s->ntables; k++) {
		struct table *t = &s->tables[k];
		char *sql;
		int64_t bad;

		if (t->rowid == NULL)
			continue;
		if (merge_rows_move(s, t) == -1)
			return -1;
		sql = store_sql("SELECT count(*) FROM (SELECT rid, pk"
		    " FROM labsync_rowid WHERE tbl = %Q ORDER BY rid DESC"
		    " LIMIT 16) AS e WHERE NOT EXISTS (SELECT 1 FROM \"%w\""
		    " WHERE %s = e.rid AND \"%w\" = e.pk)", t->name, t->name,
		    t->rowid, t->pk);
		bad = store_pragma_int(s, sql);
		sqlite3_free(sql);
		if (bad < 0 || (bad > 0 && merge_rows_remap(s, t) == -1))
			return -1;
	}
	return 0;
}

/* INSERT ... ON CONFLICT DO UPDATE for the columns in mask, cached. */
static sqlite3_stmt *
merge_upsert_stmt(struct store *s, struct table *t, uint64_t mask)
{
	struct upsert_stmt	*u;
	char			*cols, *vals, *sets, *sql, *tmp;
	int			 n = 1;

	for (int i = 0; i < t->nupserts; i++)
		if (t->upserts[i].mask == mask)
			return t->upserts[i].stmt;
	cols = store_sql("\"%w\"", t->pk);
	vals = store_sql("?1");
	sets = store_sql("");
	for (int i = 0; i < t->ncols; i++) {
		if (!(mask & (1ULL << i)))
			continue;
		n++;
		tmp = store_sql("%s, \"%w\"", cols, t->cols[i].name);
		sqlite3_free(cols);
		cols = tmp;
		tmp = store_sql("%s, ?%d", vals, n);
		sqlite3_free(vals);
		vals = tmp;
		tmp = store_sql("%s%s\"%w\" = excluded.\"%w\"", sets,
		    n > 2 ? ", " : "", t->cols[i].name, t->cols[i].name);
		sqlite3_free(sets);
		sets = tmp;
	}
	if (n == 1)
		sql = store_sql("INSERT INTO \"%w\"(%s) VALUES (%s) "
		    "ON CONFLICT DO NOTHING", t->name, cols, vals);
	else
		sql = store_sql("INSERT INTO \"%w\"(%s) VALUES (%s) "
		    "ON CONFLICT(\"%w\") DO UPDATE SET %s", t->name, cols, vals,
		    t->pk, sets);
	sqlite3_free(cols);
	sqlite3_free(vals);
	sqlite3_free(sets);
	if (t->nupserts < MASK_CACHE)
		u = &t->upserts[t->nupserts++];
	else {
		u = &t->upserts[t->next_evict];
		t->next_evict = (t->next_evict + 1) % MASK_CACHE;
		sqlite3_finalize(u->stmt);
	}
	u->mask = mask;
	if (store_prepare(s, &u->stmt, sql) == -1) {
		u->stmt = NULL;
		u->mask = ~0ULL;	/* never matches a real mask */
	}
	sqlite3_free(sql);
	return u->stmt;
}


/* (hlc, origin name) order; an unset clock (hlc 0) is the smallest. */
static int
merge_clock_cmp(struct store *s, uint64_t ha, int64_t oa, uint64_t hb,
    int64_t ob)
{
	struct origin	*a, *b;

	if (ha != hb)
		return ha < hb ? -1 : 1;
	if (oa == ob)
		return 0;
	a = vector_origin_byid(s, oa);
	b = vector_origin_byid(s, ob);
	if (a == NULL || b == NULL)
		return a == NULL ? -1 : 1;
	return strcmp(a->name, b->name) < 0 ? -1 : 1;
}


static void
merge_row_bind(sqlite3_stmt *st, const struct table *t, const char *pk,
    uint64_t mask, const Labsync__Value *const *vals)
{
	int	 n = 1;

	sqlite3_bind_text(st, 1, pk, -1, SQLITE_STATIC);
	for (int i = 0; i < t->ncols; i++)
		if (mask & (1ULL << i))
			store_bind_value(st, ++n, vals[i]);
}

/* After a failed write: was it one of this node's constraints (NOT NULL,
   CHECK, UNIQUE, a foreign key) the sender's schema does not have? */
static int
merge_refused(struct store *s)
{
	s->refused_row = (sqlite3_extended_errcode(s->db) & 0xff) ==
	    SQLITE_CONSTRAINT;
	return -1;
}

/*
 * Write the given values (NULL value: SQL NULL) of the columns in mask,
 * creating the row if it is absent; m learns its rowid then.
 */
static int
merge_row_write(struct store *s, struct table *t, const char *pk,
    uint64_t mask, const Labsync__Value *const *vals, struct row_meta *m)
{
	sqlite3_stmt	*st;

	if ((st = merge_upsert_stmt(s, t, mask)) == NULL)
		return -1;
	merge_row_bind(st, t, pk, mask, vals);
	if (store_step_done(s, st) == -1)
		return merge_refused(s);
	if (t->find_row != NULL && !m->row) {
		m->row = 1;
		m->rid = sqlite3_last_insert_rowid(s->db);
	}
	return 0;
}

/*
 * A change of every column, of a row that is probably new here: written
 * at once, with its clocks, unless the key has clocks (a delete) or the
 * row is there. 1: done; 0: not new, take the merge.
 */
static int
merge_row_insert_new(struct store *s, struct table *t, const char *pk,
    const struct col_clock *now, const Labsync__Value *const *vals)
{
	struct row_meta	 m;
	uint64_t	 all = t->ncols == 64 ? ~0ULL : (1ULL << t->ncols) - 1;
	int		 rc;

	memset(&m, 0, sizeof(m));
	m.r = *now;
	for (int i = 0; i < t->ncols; i++)
		m.cols[i] = *now;
	if (t->insert_new == NULL) {
		/* clocks by key: they go in first, as a probe */
		if (merge_row_save(s, t, pk, &m) == -1)
			return -1;
		if (sqlite3_changes(s->db) != 1)
			return 0;
		if (merge_row_write(s, t, pk, all, vals, &m) == 0)
			return 1;
		if (!s->refused_row)
			return -1;
		/* refused by a constraint: the probe goes, the full merge
		   decides (and keeps the change aside if it is refused too) */
		s->refused_row = 0;
		sqlite3_bind_text(s->st_row_drop, 1, t->name, -1,
		    SQLITE_STATIC);
		sqlite3_bind_text(s->st_row_drop, 2, pk, -1, SQLITE_STATIC);
		return store_step_done(s, s->st_row_drop) == -1 ? -1 : 0;
	}
	/* no other writer until the commit: whether the table has keys
	   with clocks (deleted rows) stays known, the merge tells its own */
	if (t->no_keys == -1) {
		sqlite3_bind_text(s->st_row_any, 1, t->name, -1, SQLITE_STATIC);
		if ((rc = merge_step_one(s, s->st_row_any)) == -1)
			return -1;
		t->no_keys = rc == 1 &&
		    sqlite3_column_int(s->st_row_any, 0) == 0;
		sqlite3_reset(s->st_row_any);
	}
	/* a probe for its key's clocks, unless there are none */
	sqlite3_bind_text(s->st_row_get, 1, t->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s->st_row_get, 2, pk, -1, SQLITE_STATIC);
	if (t->no_keys != 1 &&
	    (rc = merge_step_one(s, s->st_row_get)) != 0) {
		sqlite3_reset(s->st_row_get);
		return rc == 1 ? 0 : -1;
	}
	merge_row_bind(t->insert_new, t, pk, all, vals);
	if (store_step_done(s, t->insert_new) == -1) {
		/* a CHECK is tested before the conflict that would have
		   skipped the insert: the full merge decides */
		merge_refused(s);
		if (!s->refused_row)
			return -1;
		s->refused_row = 0;
		return 0;
	}
	if (sqlite3_changes(s->db) != 1)
		return 0;
	m.row = 1;
	m.rid = sqlite3_last_insert_rowid(s->db);
	return merge_row_save(s, t, pk, &m) == -1 ? -1 : 1;
}

/* Columns a change may list, known here or not (a newer peer's table
   may be wider); more is malformed. */
#define MERGE_WIRE_COLUMNS	(2 * STORE_MAX_COLUMNS)

/*
 * Move the columns of c that are local here behind c->n_columns (the
 * caller puts them back, for freeing the message): they are neither
 * applied nor logged nor relayed. How many moved.
 */
static size_t
merge_drop_local(const struct table *t, Labsync__Change *c)
{
	Labsync__Column	*local[MERGE_WIRE_COLUMNS];
	size_t		 kept = 0, nlocal = 0;
	int		 i;

	if (t == NULL || c->n_columns > MERGE_WIRE_COLUMNS)
		return 0;	/* kept aside whole, or refused */
	for (size_t j = 0; j < c->n_columns; j++) {
		i = c->columns[j]->name != NULL ?
		    schema_column_find(t, c->columns[j]->name, 0) : -1;
		if (i >= 0 && t->cols[i].local) {
			log_debug("%s:%" PRIu64 ": column %s.%s is local "
			    "here: not applied", c->origin, c->seq, t->name,
			    t->cols[i].name);
			local[nlocal++] = c->columns[j];
		} else
			c->columns[kept++] = c->columns[j];
	}
	for (size_t j = 0; j < nlocal; j++)
		c->columns[kept + j] = local[j];
	c->n_columns = kept;
	return nlocal;
}

/*
 * The merge. An upsert sets a column if its (hlc, origin) beats both the
 * column's clock and the row's newest delete. A delete at D wins over
 * every write older than D: if no upsert newer than D exists the row goes,
 * otherwise the columns written before D become NULL. The result depends
 * only on the set of changes, not on their order.
 */
static int
merge_change(struct store *s, struct table *t, struct origin *o,
    const Labsync__Change *c, const int *idx)
{
	const Labsync__Value	*vals[STORE_MAX_COLUMNS];
	struct row_meta		 m;
	struct col_clock	 now = { c->hlc, o->id };
	uint64_t		 mask = 0;

	/* a change of every column is usually of a row new here: it goes in
	   at once, sparing the lookups, and only a row known already takes
	   the whole merge below */
	if (c->op == LABSYNC__OP__OP_UPSERT &&
	    c->n_columns == (size_t)t->ncols) {
		int	 rc;

		/* no column twice (merge_change_columns): all are there */
		for (size_t j = 0; j < c->n_columns; j++)
			vals[idx[j]] = c->columns[j]->value;
		rc = merge_row_insert_new(s, t, c->pk, &now, vals);
		if (rc != 0)
			return rc == 1 ? 0 : -1;
	}
	if (merge_row_load(s, t, c->pk, &m, 1) == -1)
		return -1;
	if (c->op != LABSYNC__OP__OP_UPSERT) {	/* a delete, an erasure */
		if (merge_clock_cmp(s, now.hlc, now.origin, m.d.hlc,
		    m.d.origin) <= 0)
			return 0;	/* an older delete: nothing changes */
		m.d = now;
		if (merge_clock_cmp(s, m.r.hlc, m.r.origin, m.d.hlc,
		    m.d.origin) < 0) {
			sqlite3_bind_text(t->delete_row, 1, c->pk, -1,
			    SQLITE_STATIC);
			if (store_step_done(s, t->delete_row) == -1)
				return merge_refused(s);
			if (m.row) {
				/* its clocks go by key from now on */
				sqlite3_bind_text(s->st_rowid_drop, 1, t->name,
				    -1, SQLITE_STATIC);
				sqlite3_bind_int64(s->st_rowid_drop, 2, m.rid);
				if (store_step_done(s, s->st_rowid_drop) == -1)
					return -1;
				m.row = m.entry = 0;
			}
		} else {
			for (int i = 0; i < t->ncols; i++) {
				if (merge_clock_cmp(s, m.cols[i].hlc,
				    m.cols[i].origin, m.d.hlc, m.d.origin) < 0) {
					mask |= 1ULL << i;
					vals[i] = NULL;
				}
			}
			if (mask != 0 &&
			    merge_row_write(s, t, c->pk, mask, vals, &m) == -1)
				return -1;
		}
		return merge_row_save(s, t, c->pk, &m);
	}

	if (merge_clock_cmp(s, now.hlc, now.origin, m.d.hlc, m.d.origin) <= 0)
		return 0;	/* deleted later: nothing changes */
	if (!m.exists) {
		for (int i = 0; i < t->ncols; i++)
			m.cols[i] = (struct col_clock){ 0, 0 };
	}
	for (size_t j = 0; j < c->n_columns; j++) {
		int i = idx[j];

		if (merge_clock_cmp(s, now.hlc, now.origin, m.cols[i].hlc,
		    m.cols[i].origin) <= 0)
			continue;
		mask |= 1ULL << i;
		vals[i] = c->columns[j]->value;
		m.cols[i] = now;
	}
	if (merge_clock_cmp(s, now.hlc, now.origin, m.r.hlc, m.r.origin) > 0)
		m.r = now;
	/* also creates the row when it is absent (a revive, or first seen) */
	if (merge_row_write(s, t, c->pk, mask, vals, &m) == -1)
		return -1;
	return merge_row_save(s, t, c->pk, &m);
}

/* How much of a change fits this node's schema. */
struct merge_fit {
	struct table	*t;		/* NULL: unknown table */
	enum reason	 whole;		/* the whole change cannot be taken */
	int		 idx[MERGE_WIRE_COLUMNS];	/* column in t, or -1 */
	enum reason	 why[MERGE_WIRE_COLUMNS];	/* REASON_OK: fits */
	int		 nkept;		/* columns that do not fit */
};

/*
 * merge_change, except that a write this node's own constraints refuse
 * (its schema may be stricter than the sender's) keeps the change aside
 * whole, refused, instead of failing the batch: SQLite undid the failing
 * statement, and merge_change wrote nothing before it that stays.
 */
static int
merge_or_keep(struct store *s, struct table *t, struct origin *o,
    const Labsync__Change *c, const int *idx, const Labsync__Change *whole,
    const ProtobufCBinaryData *raw, uint64_t since, int *kept)
{
	s->refused_row = 0;
	if (merge_change(s, t, o, c, idx) == 0)
		return 0;
	if (!s->refused_row)
		return -1;
	s->refused_row = 0;
	log_warnx("%s #%" PRIu64 ": %s %s is refused by a constraint of "
	    "this node's schema (%s): kept aside", whole->origin, whole->seq,
	    whole->table, whole->pk, sqlite3_errmsg(s->db));
	(*kept)++;
	return aside_keep(s, whole, -1, raw, REASON_CONSTRAINT, since);
}

/*
 * The content of a protocol-valid change against this node's tables,
 * by the rules of rules.c: what a receiver keeps aside rather than
 * refusing the batch. why: words on the first part that does not fit.
 */
static void
merge_fit(struct store *s, const Labsync__Change *c, struct merge_fit *f,
    char *why, size_t whylen)
{
	char	 words[256];
	int	 hint = -1;

	f->whole = REASON_OK;
	f->nkept = 0;
	if ((f->t = schema_table_find(s, c->table)) == NULL) {
		store_seterr(why, whylen, "unknown table '%.64s'", c->table);
		f->whole = REASON_UNKNOWN_TABLE;
		return;
	}
	/* a partner we know writes only its tables, wherever it came from */
	if (c->origin != NULL &&
	    !schema_origin_may_write(s, c->origin, f->t->name)) {
		store_seterr(why, whylen, "partner %.32s may not write table "
		    "%s", c->origin, f->t->name);
		f->whole = REASON_NOT_WRITABLE;
		return;
	}
	if ((f->whole = rules_check_key(f->t->name, f->t->pk, c->pk,
	    c->pk != NULL ? strlen(c->pk) : 0, why, whylen)) != REASON_OK)
		return;
	for (size_t j = 0; j < c->n_columns; j++) {
		const Labsync__Column *col = c->columns[j];
		int i = schema_column_find(f->t, col->name, hint + 1);

		f->idx[j] = i;
		if (i < 0) {
			f->why[j] = REASON_UNKNOWN_COLUMN;
			store_seterr(words, sizeof(words), "unknown column "
			    "%s.%.64s", f->t->name, col->name);
		} else {
			hint = i;
			f->why[j] = rules_check_wire(f->t->name, col->name,
			    f->t->cols[i].aff, col->value, words,
			    sizeof(words));
		}
		if (f->why[j] != REASON_OK && f->nkept++ == 0)
			store_seterr(why, whylen, "%s", words);
	}
}

/*
 * Check one change. Protocol faults (origin, sequence, clock, operation,
 * duplicate columns) come first: the caller refuses the batch for them.
 * Then its content (reason_keep says which codes): a receiver applies
 * such a change as far as it fits and keeps the rest aside.
 */
static enum reason
merge_check(struct store *s, const Labsync__Change *c, int allow_own,
    int snapshot, char *why, size_t whylen)
{
	struct merge_fit f;

	if (c->origin == NULL || c->origin[0] == '\0' ||
	    strlen(c->origin) > 32) {
		store_seterr(why, whylen, "bad origin");
		return REASON_BAD_ORIGIN;
	}
	for (const char *p = c->origin; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '_' || *p == '-')) {
			store_seterr(why, whylen, "bad origin");
			return REASON_BAD_ORIGIN;
		}
	if (!allow_own && strcmp(c->origin, s->node_id) == 0) {
		store_seterr(why, whylen, "change claims to originate from "
		    "this node (%s)", s->node_id);
		return REASON_OWN_ORIGIN;
	}
	if (vector_origin_find(s, c->origin) == NULL &&
	    s->norigins >= STORE_MAX_ORIGINS) {
		store_seterr(why, whylen, "too many origins (%d): %s refused",
		    STORE_MAX_ORIGINS, c->origin);
		return REASON_TOO_MANY_ORIGINS;
	}
	/* a snapshot's changes are states, of no place in a sequence; an
	   erasure keeps its own (its audit row is known by it) */
	if (snapshot ? (c->seq != 0 && c->op != LABSYNC__OP__OP_ERASE) ||
	    c->seq >= (1ULL << ORIGIN_SHIFT) :
	    c->seq == 0 || c->seq >= (1ULL << ORIGIN_SHIFT)) {
		store_seterr(why, whylen, "sequence %" PRIu64 " out of range",
		    c->seq);
		return REASON_BAD_SEQUENCE;
	}
	if (c->hlc == 0 || c->hlc >= (1ULL << 63)) {
		store_seterr(why, whylen, "bad hlc");
		return REASON_BAD_CLOCK;
	}
	if (c->table == NULL) {
		store_seterr(why, whylen, "change without a table");
		return REASON_MALFORMED;
	}
	if (c->op != LABSYNC__OP__OP_UPSERT && c->op != LABSYNC__OP__OP_DELETE &&
	    c->op != LABSYNC__OP__OP_ERASE) {
		store_seterr(why, whylen, "unknown operation %d", (int)c->op);
		return REASON_BAD_OPERATION;
	}
	if (c->op != LABSYNC__OP__OP_UPSERT && c->n_columns != 0) {
		store_seterr(why, whylen, "delete with columns");
		return REASON_BAD_OPERATION;
	}
	/* who asked goes into the audit and labsyncctl's lines: a name */
	if (c->op == LABSYNC__OP__OP_ERASE && c->erased_by != NULL) {
		const char *p = c->erased_by;

		for (; *p != '\0' && (unsigned char)*p >= 0x20 && *p != 0x7f;
		    p++)
			;
		if (*p != '\0' || p - c->erased_by > 256) {
			store_seterr(why, whylen, "erasure with a bad asker");
			return REASON_BAD_OPERATION;
		}
	}
	if (c->n_columns > MERGE_WIRE_COLUMNS) {
		store_seterr(why, whylen, "%zu columns", c->n_columns);
		return REASON_MALFORMED;
	}
	for (size_t j = 0; j < c->n_columns; j++) {
		if (c->columns[j]->name == NULL) {
			store_seterr(why, whylen, "column without a name");
			return REASON_MALFORMED;
		}
		for (size_t k = 0; k < j; k++)
			if (strcmp(c->columns[k]->name,
			    c->columns[j]->name) == 0) {
				store_seterr(why, whylen, "column %.64s.%.64s "
				    "twice", c->table, c->columns[j]->name);
				return REASON_DUPLICATE_COLUMN;
			}
	}
	merge_fit(s, c, &f, why, whylen);
	if (f.whole != REASON_OK)
		return f.whole;
	for (size_t j = 0; j < c->n_columns; j++)
		if (f.why[j] != REASON_OK)
			return f.why[j];
	return REASON_OK;
}

enum reason
merge_validate(struct store *s, const Labsync__Change *c, int allow_own,
    char *why, size_t whylen)
{
	return merge_check(s, c, allow_own, 0, why, whylen);
}

enum reason
merge_validate_snapshot(struct store *s, const Labsync__Change *c, char *why,
    size_t whylen)
{
	return merge_check(s, c, 1, 1, why, whylen);
}

/*
 * Merge what of c fits this node's tables; keep the rest aside (aside.c)
 * with since (0: now). *kept: parts kept. A change with nothing that
 * fits changes no row (the row appears once its parts are released).
 */
int
merge_fitting(struct store *s, struct origin *o, Labsync__Change *c,
    const ProtobufCBinaryData *raw, uint64_t since, int *kept)
{
	struct merge_fit	 f;
	Labsync__Change		 sub;
	Labsync__Column		*cols[STORE_MAX_COLUMNS];
	int			 idx[STORE_MAX_COLUMNS];
	char			 words[256];

	*kept = 0;
	merge_fit(s, c, &f, words, sizeof(words));
	if (f.whole != REASON_OK) {
		/* an erasure too: a table unknown here, or one its origin
		   (a partner) may not write, is not scrubbed for it */
		*kept = 1;
		return aside_keep(s, c, -1, raw, f.whole, since);
	}
	if (c->op == LABSYNC__OP__OP_ERASE) {
		if (erase_carry_out(s->db, c) == -1)
			return -1;
		s->erased = 1;
	}
	if (f.nkept == 0)
		return merge_or_keep(s, f.t, o, c, f.idx, c, raw, since, kept);
	sub = *c;
	sub.columns = cols;
	sub.n_columns = 0;
	for (size_t j = 0; j < c->n_columns; j++) {
		if (f.why[j] != REASON_OK) {
			if (aside_keep(s, c, (int)j, NULL, f.why[j], since) == -1)
				return -1;
			(*kept)++;
			continue;
		}
		idx[sub.n_columns] = f.idx[j];
		cols[sub.n_columns++] = c->columns[j];
	}
	if (sub.n_columns == 0)
		return 0;
	return merge_or_keep(s, f.t, o, &sub, idx, c, raw, since, kept);
}

/* Open the transaction remote changes are applied in. */
int
merge_apply_begin(struct store *s)
{
	store_settle(s);
	s->apply_mark = s->noutbox;
	s->erased = 0;
	checkpoint_bound(s);
	if (store_begin(s) == -1)
		return -1;
	/* no other writer until the commit: whether any erasure was carried
	   out here stays known (the merge sets erased for its own) */
	s->erasures = store_pragma_int(s, "SELECT EXISTS (SELECT 1 FROM"
	    " labsync_erasure)") != 0;
	/* with triggers on (not the daemon's connection), their WHEN
	   clauses keep them quiet meanwhile */
	if (!s->capture_off) {
		sqlite3_bind_int(s->st_applying, 1, 1);
		if (store_step_done(s, s->st_applying) == -1)
			goto fail;
	}
	for (size_t i = 0; i < s->ntables; i++)
		s->tables[i].no_keys = -1;
	if (changelog_at_begin(s) == -1)
		goto fail;
	return 0;
fail:
	log_warnx("apply failed, rolled back: %s", sqlite3_errmsg(s->db));
	store_rollback(s, s->apply_mark);
	return -1;
}

/* Apply changes inside merge_apply_begin's transaction; adds to *st. */
int
merge_apply_more(struct store *s, Labsync__Change *const *changes,
    const ProtobufCBinaryData *raw, size_t n, int catchup,
    struct merge_stats *st)
{
	uint64_t	 limit = clock_physical_ms(s->clock) + s->max_skew_ms;
	int		 relay = !s->no_relay && !catchup;

	for (size_t i = 0; i < n; i++) {
		Labsync__Change *c = changes[i];
		struct origin *o;
		size_t full = c->n_columns, dropped;
		int kept, erased, ret;

		if (!catchup && strcmp(c->origin, s->node_id) == 0)
			return -1;
		if ((o = vector_origin_get(s, c->origin)) == NULL)
			return -1;
		if (c->seq <= o->seq) {
			st->duplicates++;
			continue;
		}
		if (c->seq > o->seq + 1) {
			st->gaps++;
			continue;
		}
		if (s->max_skew_ms > 0 && CLOCK_MS(c->hlc) > limit) {
			st->held++;
			continue;
		}
		clock_absorb(s->clock, c->hlc);
		/* an upsert older than an erasure of its row: the delete rule
		   leaves nothing of it to apply, and its values are neither
		   logged nor relayed (nor kept aside) */
		erased = c->op == LABSYNC__OP__OP_UPSERT &&
		    (s->erasures || s->erased) ? erase_covers(s, c) : 0;
		if (erased == -1)
			return -1;
		if (erased) {
			c->n_columns = 0;
			ret = changelog_append(s, o, c, 1, NULL, relay);
			c->n_columns = full;
			if (ret == -1)
				return -1;
			log_debug("%s:%" PRIu64 ": of %s %s, erased since: "
			    "logged without its values", c->origin, c->seq,
			    c->table, c->pk);
			kept = 0;
			goto applied;
		}
		/* a change kept aside in part stays whole in the log; without
		   a column local here, it is packed again */
		dropped = merge_drop_local(schema_table_find(s, c->table), c);
		if (merge_fitting(s, o, c, raw != NULL && !dropped ? &raw[i] :
		    NULL, 0, &kept) == -1 ||
		    changelog_append(s, o, c, kept == 0, raw != NULL &&
		    !dropped ? &raw[i] : NULL, relay) == -1) {
			c->n_columns = full;
			return -1;
		}
		c->n_columns = full;
applied:
		if (kept > 0)
			st->kept++;
		o->seq = c->seq;
		st->applied++;
		if (o == s->self) {
			st->own++;
			s->published = c->seq;	/* relayed: not again */
		}
	}
	return 0;
}

/*
 * A snapshot's changes, inside merge_apply_begin's transaction: merged
 * like any change (local columns dropped, what does not fit kept
 * aside), the clock absorbing theirs, but neither logged nor counted in
 * the vector: they are states, not steps of an origin's history.
 */
int
merge_snapshot_more(struct store *s, Labsync__Change *const *changes,
    size_t n, struct merge_stats *st)
{
	uint64_t	 limit = clock_physical_ms(s->clock) + s->max_skew_ms;

	for (size_t i = 0; i < n; i++) {
		Labsync__Change *c = changes[i];
		struct origin *o;
		size_t full = c->n_columns;
		int kept, rc;

		if ((o = vector_origin_get(s, c->origin)) == NULL)
			return -1;
		if (s->max_skew_ms > 0 && CLOCK_MS(c->hlc) > limit) {
			st->held++;
			continue;
		}
		clock_absorb(s->clock, c->hlc);
		merge_drop_local(schema_table_find(s, c->table), c);
		rc = merge_fitting(s, o, c, NULL, 0, &kept);
		c->n_columns = full;
		if (rc == -1)
			return -1;
		if (kept > 0)
			st->kept++;
		st->applied++;
	}
	return 0;
}

int
merge_snapshot_end(struct store *s, const Labsync__Vector *v, int *own)
{
	sqlite3_stmt	*st = NULL;
	int		 ret = -1, jumped = 0;

	*own = 0;
	if (sqlite3_prepare_v2(s->db, "UPDATE labsync_origin SET floor ="
	    " max(floor, ?1) WHERE id = ?2", -1, &st, NULL) != SQLITE_OK) {
		log_warnx("snapshot: %s", sqlite3_errmsg(s->db));
		return -1;
	}
	for (size_t i = 0; v != NULL && i < v->n_entries; i++) {
		const Labsync__VectorEntry *e = v->entries[i];
		struct origin *o;

		if (e->origin == NULL || e->seq > ORIGIN_SEQ_MAX)
			goto done;
		if ((o = vector_origin_get(s, e->origin)) == NULL)
			goto done;
		if (e->seq <= o->seq)
			continue;
		sqlite3_bind_int64(st, 1, (int64_t)e->seq);
		sqlite3_bind_int64(st, 2, o->id);
		if (store_step_done(s, st) == -1)
			goto done;
		log_debug("snapshot: %s's changes up to %" PRIu64 " taken in as "
		    "state (we held %" PRIu64 ")", o->name, e->seq, o->seq);
		/* vector_save keeps it at commit; ours in labsync_state
		   too, which the triggers count on from */
		o->seq = e->seq;
		jumped = 1;
		if (o == s->self)
			*own = 1;
	}
	/* the change feed lacks what came in as state: every cursor so far
	   falls below its floor (a reader starts again from the rows) */
	if (jumped) {
		s->at++;
		s->at_dirty = 1;
		sqlite3_finalize(st);
		if (sqlite3_prepare_v2(s->db, "UPDATE labsync_state SET"
		    " at_floor = max(at_floor, ?1)", -1, &st, NULL) !=
		    SQLITE_OK) {
			st = NULL;
			log_warnx("snapshot: %s", sqlite3_errmsg(s->db));
			goto done;
		}
		sqlite3_bind_int64(st, 1, s->at);
		if (store_step_done(s, st) == -1)
			goto done;
	}
	ret = 0;
done:
	sqlite3_finalize(st);
	return ret;
}

/* Commit (or with commit 0, roll back) merge_apply_begin's transaction. */
int
merge_apply_end(struct store *s, int commit)
{
	if (commit) {
		sqlite3_bind_int(s->st_applying, 1, 0);
		if (changelog_at_end(s) == 0 && (s->capture_off ||
		    store_step_done(s, s->st_applying) == 0) &&
		    store_commit(s) == 0) {
			s->held = NULL;
			if (s->erased)
				checkpoint_truncate(s);
			s->erased = 0;
			return 0;
		}
	}
	/* SQLite's last error, also when merge_apply_more failed */
	log_warnx("apply failed, rolled back: %s", sqlite3_errmsg(s->db));
	store_rollback(s, s->apply_mark);
	return -1;
}

void
merge_apply_abort(struct store *s)
{
	store_rollback(s, s->apply_mark);
}
