/*
 * capture.c: local writes become changes of ours inside the writer's own
 * transaction, whoever writes (the HTTP API, labsyncctl, any SQLite
 * client). The capture triggers give each write the next HLC (kept in
 * labsync_state, so it never goes back and is above every remote clock
 * the daemon applied), the next sequence of this node, a log row with the
 * written values and the row's clocks. The daemon then only reads new
 * rows of the log and publishes them: a local commit is never followed by
 * a second write transaction.
 *
 * The log keeps a change as its columns, local or applied (SQL cannot
 * pack protobuf, and packed changes repeat every column's name); it is
 * packed when it is read.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "clock.h"
#include "log.h"
#include "store_private.h"
#include "wire.h"

/* A column's clock in labsync_row.clocks: 16 hex digits of HLC, 8 of
   origin id, one after another in column order. */
#define CLOCK_SQL	"printf('%%016x%%08x', %s, %s)"
#define CLOCK_ZERO	"'000000000000000000000000'"

/* Milliseconds since the epoch as SQLite sees them. */
#define NOW_MS_SQL	"CAST(round((julianday('now') - 2440587.5) * " \
			"86400000.0) AS INTEGER)"

/* What a stamped write holds, as SQL: a delete, or for each column
   whether it was written and its value, and the mask of those. */
struct stamp_src {
	int		 del;
	char		*written[STORE_MAX_COLUMNS];
	char		*value[STORE_MAX_COLUMNS];
	char		*mask;
};

static void
store_src_free(struct stamp_src *src, int ncols)
{
	for (int i = 0; i < ncols; i++) {
		sqlite3_free(src->written[i]);
		sqlite3_free(src->value[i]);
	}
	sqlite3_free(src->mask);
}

/* An INSERT (every column written) or, with upd, an UPDATE of the same
   key (a column is written if its value changed). */
static void
store_src_row(struct stamp_src *src, const struct table *t, int upd)
{
	memset(src, 0, sizeof(*src));
	src->mask = sqlite3_mprintf(upd ? "0" : "%lld", (long long)
	    (t->ncols == 64 ? ~0ULL : (1ULL << t->ncols) - 1));
	for (int i = 0; i < t->ncols; i++) {
		const char *c = t->cols[i].name;

		if (!upd) {
			src->written[i] = sqlite3_mprintf("1");
			src->value[i] = sqlite3_mprintf("NEW.\"%w\"", c);
			continue;
		}
		src->written[i] = sqlite3_mprintf("(OLD.\"%w\" IS NOT "
		    "NEW.\"%w\")", c, c);
		src->value[i] = sqlite3_mprintf("CASE WHEN %s THEN NEW.\"%w\" "
		    "END", src->written[i], c);
		src->mask = store_append(src->mask, " | (%s << %d)",
		    src->written[i], i);
	}
}

/*
 * A write of some columns: the clocks of its row as SQL, in an upsert's
 * DO UPDATE: each column's the new clock ("hlc, origin" of a stamp) if
 * written, otherwise as the old ones say. A column added after them has
 * none.
 */
static char *
store_clocks_sql(const struct table *t, const struct stamp_src *src,
    const char *hlc, const char *origin)
{
	char	*sql = NULL;

	for (int i = 0; i < t->ncols; i++)
		sql = store_append(sql, "%sCASE WHEN %s THEN " CLOCK_SQL
		    " WHEN clocks IS NULL THEN " CLOCK_SQL " ELSE coalesce("
		    "nullif(substr(clocks, %d, 24), ''), " CLOCK_ZERO ") END",
		    i ? " || " : "", src->written[i], hlc, origin, "r_hlc",
		    "r_origin", i * 24 + 1);
	return sql;
}

/* The same for a row without clocks: only the written columns have. */
static char *
store_clocks_new_sql(const struct table *t, const struct stamp_src *src)
{
	char	*sql = NULL;

	for (int i = 0; i < t->ncols; i++)
		sql = store_append(sql, "%sCASE WHEN %s THEN " CLOCK_SQL
		    " ELSE " CLOCK_ZERO " END", i ? " || " : "",
		    src->written[i], "hlc", "self");
	return sql;
}

/* The row's clocks, kept by key in labsync_row. */
static char *
store_stamp_by_key(char *sql, const struct table *t, const char *key,
    const struct stamp_src *src, int all)
{
	char	*absent, *present;

	if (src->del)
		return store_append(sql, " INSERT INTO labsync_row(tbl, pk,"
		    " r_hlc, r_origin, d_hlc, d_origin, clocks) SELECT %Q, %s,"
		    " 0, 0, hlc, self, NULL FROM labsync_state WHERE applying = 0"
		    " ON CONFLICT(tbl, pk) DO UPDATE SET d_hlc = excluded.d_hlc,"
		    " d_origin = excluded.d_origin;", t->name, key);
	if (all || t->ncols == 0)
		return store_append(sql, " INSERT INTO labsync_row(tbl, pk,"
		    " r_hlc, r_origin, d_hlc, d_origin, clocks) SELECT %Q, %s,"
		    " hlc, self, 0, 0, NULL FROM labsync_state WHERE applying = 0"
		    " ON CONFLICT(tbl, pk) DO UPDATE SET r_hlc = excluded.r_hlc,"
		    " r_origin = excluded.r_origin, clocks = NULL;", t->name,
		    key);
	absent = store_clocks_new_sql(t, src);
	present = store_clocks_sql(t, src, "excluded.r_hlc",
	    "excluded.r_origin");
	sql = store_append(sql, " INSERT INTO labsync_row(tbl, pk, r_hlc,"
	    " r_origin, d_hlc, d_origin, clocks) SELECT %Q, %s, hlc, self,"
	    " 0, 0, %s FROM labsync_state WHERE applying = 0"
	    " ON CONFLICT(tbl, pk) DO UPDATE SET r_hlc = excluded.r_hlc,"
	    " r_origin = excluded.r_origin, clocks = %s;", t->name, key,
	    absent, present);
	sqlite3_free(absent);
	sqlite3_free(present);
	return sql;
}

/*
 * The row's clocks, kept by rowid in labsync_rowid while the row is
 * there, by key in labsync_row once it is deleted. An entry at the rowid
 * with another key is stale: it is written over.
 */
static char *
store_stamp_by_rowid(char *sql, const struct table *t, const char *key,
    const char *rid, const struct stamp_src *src, int all)
{
	char	*absent, *present;

	if (src->del)
		return store_append(sql, " INSERT INTO labsync_row(tbl, pk,"
		    " r_hlc, r_origin, d_hlc, d_origin, clocks) SELECT %Q, %s,"
		    " coalesce(e.r_hlc, 0), coalesce(e.r_origin, 0), hlc, self,"
		    " e.clocks FROM labsync_state LEFT JOIN labsync_rowid AS e"
		    " ON e.tbl = %Q AND e.rid = %s AND e.pk = %s"
		    " WHERE applying = 0"
		    " ON CONFLICT(tbl, pk) DO UPDATE SET d_hlc = excluded.d_hlc,"
		    " d_origin = excluded.d_origin;"
		    " DELETE FROM labsync_rowid WHERE tbl = %Q AND rid = %s AND"
		    " (SELECT applying FROM labsync_state) = 0;", t->name, key,
		    t->name, rid, key, t->name, rid);
	if (all || t->ncols == 0)
		/* a new row: the clocks of its key, if it had any, are older
		   than ours (above every clock applied) and decide nothing */
		return store_append(sql, " INSERT INTO labsync_rowid(tbl, rid,"
		    " pk, r_hlc, r_origin, d_hlc, d_origin, clocks) SELECT %Q,"
		    " %s, %s, hlc, self, 0, 0, NULL FROM labsync_state WHERE"
		    " applying = 0 ON CONFLICT(tbl, rid) DO UPDATE SET"
		    " pk = excluded.pk, r_hlc = excluded.r_hlc,"
		    " r_origin = excluded.r_origin, d_hlc = 0, d_origin = 0,"
		    " clocks = NULL;"
		    " DELETE FROM labsync_row WHERE tbl = %Q AND pk = %s AND"
		    " (SELECT applying FROM labsync_state) = 0;",
		    t->name, rid, key, t->name, key);
	/* a row there has its clocks by rowid (store_rows_check), if any */
	absent = store_clocks_new_sql(t, src);
	present = store_clocks_sql(t, src, "excluded.r_hlc",
	    "excluded.r_origin");
	sql = store_append(sql, " INSERT INTO labsync_rowid(tbl, rid, pk,"
	    " r_hlc, r_origin, d_hlc, d_origin, clocks) SELECT %Q, %s, %s,"
	    " hlc, self, 0, 0, %s FROM labsync_state WHERE applying = 0"
	    " ON CONFLICT(tbl, rid) DO UPDATE SET r_hlc = excluded.r_hlc,"
	    " r_origin = excluded.r_origin, d_hlc = CASE WHEN pk IS excluded.pk"
	    " THEN d_hlc ELSE 0 END, d_origin = CASE WHEN pk IS excluded.pk"
	    " THEN d_origin ELSE 0 END, clocks = CASE WHEN pk IS excluded.pk"
	    " THEN %s ELSE excluded.clocks END, pk = excluded.pk;",
	    t->name, rid, key, absent, present);
	sqlite3_free(absent);
	sqlite3_free(present);
	return sql;
}

/*
 * The statements that stamp one write: key is the SQL of its primary
 * key, rid of its rowid (NULL: the table's clocks are kept by key). A
 * write of every column leaves the row's clocks NULL (all are the
 * newest upsert's); a partial one spells out each column's clock. Each
 * reads labsync_state and does nothing while a connection applies remote
 * changes with triggers on (applying); refuse, if not empty, is CASE arms
 * (WHEN ... THEN RAISE(...)) that refuse the write first. Cheaper than a
 * WHEN clause and SELECTs of their own (tests/bench/RESULTS.md).
 */
static char *
store_stamp_sql(const struct table *t, const char *key, const char *rid,
    const struct stamp_src *src, int all, const char *refuse)
{
	char	*sql;

	sql = sqlite3_mprintf(" UPDATE labsync_state SET hlc = %s%s%s"
	    "max(hlc + 1, " NOW_MS_SQL " << 16)%s, seq = seq + 1"
	    " WHERE applying = 0;"
	    " INSERT INTO labsync_log(key, hlc, tbl, pk, op, mask",
	    refuse[0] != '\0' ? "CASE " : "", refuse,
	    refuse[0] != '\0' ? " ELSE " : "",
	    refuse[0] != '\0' ? " END" : "");
	for (int i = 0; !src->del && i < t->ncols; i++)
		sql = store_append(sql, ", v%d", i);
	sql = store_append(sql, ") SELECT self << %d | seq, hlc, %Q, %s,"
	    " %d, %s", ORIGIN_SHIFT, t->name, key, src->del,
	    src->del ? "0" : src->mask);
	for (int i = 0; !src->del && i < t->ncols; i++)
		sql = store_append(sql, ", %s", src->value[i]);
	sql = store_append(sql, " FROM labsync_state WHERE applying = 0;");
	if (rid == NULL)
		return store_stamp_by_key(sql, t, key, src, all);
	return store_stamp_by_rowid(sql, t, key, rid, src, all);
}

/* SQL of one column expression per row side, e.g. NEW."id". */
static char *
store_ref(const char *side, const char *col)
{
	return sqlite3_mprintf("%s.\"%w\"", side, col);
}

/*
 * The capture triggers. Each refuses the write when the node does not take
 * local writes (the message says why), then stamps it; a changed primary
 * key is a delete and an insert. With labsync_state.applying set (a
 * connection applying remote changes with triggers on) they do nothing.
 */
int
store_triggers(struct store *s, struct table *t)
{
	struct stamp_src ins, upd, del = { .del = 1 };
	char	*sql, *guard, *checked, *changed = NULL, *nk, *ok;
	char	*ins_sql, *upd_sql, *rekey_sql, *del_sql, *ins_only;
	char	*nr = NULL, *or = NULL, *move;
	int	 ret;

	store_src_row(&ins, t, 0);
	store_src_row(&upd, t, 1);
	nk = store_ref("NEW", t->pk);
	ok = store_ref("OLD", t->pk);
	if (t->rowid != NULL) {
		nr = sqlite3_mprintf("NEW.%s", t->rowid);
		or = sqlite3_mprintf("OLD.%s", t->rowid);
	}
	/* a row given another rowid (UPDATE ... SET rowid, rare) takes its
	   clocks along; the update trigger does it first when it fires */
	move = nr == NULL ? sqlite3_mprintf("%s", "") : sqlite3_mprintf(
	    " UPDATE OR REPLACE labsync_rowid SET rid = %s WHERE %s IS NOT %s"
	    " AND tbl = %Q AND rid = %s AND (SELECT applying FROM"
	    " labsync_state) = 0;", nr, or, nr, t->name, or);
	guard = sqlite3_mprintf(
	    "WHEN writable = 0 THEN RAISE(ABORT, 'labsync: this node is an "
	    "observer, local writes are refused')"
	    " WHEN writable = 2 THEN RAISE(ABORT, 'labsync: this node is "
	    "checking with its peers for changes of its own that it lost "
	    "(start-up or restore), writes are refused until it is done')");
	checked = sqlite3_mprintf("%s WHEN typeof(%s) <> 'text' OR %s = '' "
	    "THEN RAISE(ABORT, 'labsync: primary key %q.%q must be non-empty "
	    "text')", guard, nk, nk, t->name, t->pk);
	for (int i = 0; i < t->ncols; i++)
		changed = store_append(changed, "%s%s", i ? " OR " : "",
		    upd.written[i]);
	if (changed == NULL)
		changed = sqlite3_mprintf("0");
	ins_sql = store_stamp_sql(t, nk, nr, &ins, 1, checked);
	upd_sql = store_stamp_sql(t, nk, nr, &upd, 0, guard);
	/* a changed key: the old one deleted (refused if the new one is
	   bad), the new one inserted */
	rekey_sql = store_stamp_sql(t, ok, or, &del, 0, checked);
	del_sql = store_stamp_sql(t, ok, or, &del, 0, guard);
	ins_only = store_stamp_sql(t, nk, nr, &ins, 1, "");
	sql = sqlite3_mprintf(
	    "DROP TRIGGER IF EXISTS \"labsync_%w_ins\";"
	    "DROP TRIGGER IF EXISTS \"labsync_%w_upd\";"
	    "DROP TRIGGER IF EXISTS \"labsync_%w_rekey\";"
	    "DROP TRIGGER IF EXISTS \"labsync_%w_del\";"
	    "DROP TRIGGER IF EXISTS \"labsync_%w_move\";"
	    "CREATE TRIGGER \"labsync_%w_ins\" AFTER INSERT ON \"%w\""
	    " BEGIN%s END;"
	    "CREATE TRIGGER \"labsync_%w_upd\" AFTER UPDATE ON \"%w\""
	    " WHEN %s IS %s AND (%s) BEGIN%s%s END;"
	    "CREATE TRIGGER \"labsync_%w_rekey\" AFTER UPDATE ON \"%w\""
	    " WHEN %s IS NOT %s BEGIN%s%s END;"
	    "CREATE TRIGGER \"labsync_%w_del\" AFTER DELETE ON \"%w\""
	    " BEGIN%s END;",
	    t->name, t->name, t->name, t->name, t->name,
	    t->name, t->name, ins_sql,
	    t->name, t->name, ok, nk, changed, move, upd_sql,
	    t->name, t->name, ok, nk, rekey_sql, ins_only,
	    t->name, t->name, del_sql);
	if (nr != NULL)
		sql = store_append(sql, "CREATE TRIGGER \"labsync_%w_move\""
		    " AFTER UPDATE ON \"%w\" WHEN %s IS %s AND NOT (%s)"
		    " BEGIN%s END;", t->name, t->name, ok, nk, changed, move);
	ret = store_exec(s, sql);
	sqlite3_free(sql);
	sqlite3_free(guard);
	sqlite3_free(checked);
	sqlite3_free(changed);
	sqlite3_free(nk);
	sqlite3_free(ok);
	sqlite3_free(ins_sql);
	sqlite3_free(upd_sql);
	sqlite3_free(rekey_sql);
	sqlite3_free(del_sql);
	sqlite3_free(ins_only);
	sqlite3_free(nr);
	sqlite3_free(or);
	sqlite3_free(move);
	store_src_free(&ins, t->ncols);
	store_src_free(&upd, t->ncols);
	return ret;
}

/* Queued writes of tables no longer synced cannot be stamped: say so. */
static int
store_replay_orphans(struct store *s)
{
	sqlite3_stmt	*st;
	char		*sql = sqlite3_mprintf("SELECT tbl, count(*) FROM "
	    "main.labsync_pending WHERE tbl NOT IN (''");
	int		 rc;

	for (size_t k = 0; k < s->ntables; k++)
		sql = store_append(sql, ", %Q", s->tables[k].name);
	sql = store_append(sql, ") GROUP BY tbl");
	rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	sqlite3_free(sql);
	if (rc != SQLITE_OK)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		log_warnx("upgrade: %d queued writes of table %s, which is "
		    "no longer synced, are dropped", sqlite3_column_int(st, 1),
		    (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/*
 * Upgrade from format 1, whose triggers queued writes in labsync_pending
 * for the daemon to stamp: what is still queued is stamped now, in order,
 * by the statements the triggers run, and the queue goes. Needs
 * labsync_state.self set.
 */
int
store_replay_pending(struct store *s)
{
	char	*sql = NULL;
	int	 ret = -1;

	if (store_exec(s, "CREATE TEMP VIEW labsync_replay AS"
	    " SELECT * FROM main.labsync_pending WHERE 0") == -1)
		return -1;
	for (size_t k = 0; k < s->ntables; k++) {
		struct table *t = &s->tables[k];
		struct stamp_src src, del = { .del = 1 };
		long long all = t->ncols == 64 ? -1LL :
		    (long long)((1ULL << t->ncols) - 1);
		char *up, *down;

		memset(&src, 0, sizeof(src));
		src.mask = sqlite3_mprintf("(NEW.mask & %lld)", all);
		for (int i = 0; i < t->ncols; i++) {
			src.written[i] = sqlite3_mprintf("((NEW.mask >> %d) & 1)",
			    i);
			src.value[i] = sqlite3_mprintf("CASE WHEN %s THEN NEW.v%d "
			    "END", src.written[i], i);
		}
		/* by key: store_rows_check moves them after */
		up = store_stamp_sql(t, "NEW.pk", NULL, &src, 0, "");
		down = store_stamp_sql(t, "NEW.pk", NULL, &del, 0, "");
		sql = sqlite3_mprintf(
		    "CREATE TEMP TRIGGER \"labsync_replay_%w_up\" INSTEAD OF"
		    " INSERT ON labsync_replay WHEN NEW.tbl = %Q AND NEW.op = 0"
		    " AND (NEW.mask & %lld) <> 0 BEGIN%s END;"
		    "CREATE TEMP TRIGGER \"labsync_replay_%w_del\" INSTEAD OF"
		    " INSERT ON labsync_replay WHEN NEW.tbl = %Q AND NEW.op = 1"
		    " BEGIN%s END;", t->name, t->name, all, up, t->name,
		    t->name, down);
		sqlite3_free(up);
		sqlite3_free(down);
		store_src_free(&src, t->ncols);
		if (store_exec(s, sql) == -1)
			goto done;
		sqlite3_free(sql);
		sql = NULL;
	}
	if (store_replay_orphans(s) == -1 ||
	    store_exec(s, "INSERT INTO labsync_replay"
	    " SELECT * FROM main.labsync_pending ORDER BY id") == -1)
		goto done;
	ret = 0;
done:
	sqlite3_free(sql);
	/* the view's triggers go with it */
	if (store_exec(s, "DROP VIEW temp.labsync_replay") == -1 ||
	    (ret == 0 && store_exec(s, "DROP TABLE main.labsync_pending") == -1))
		ret = -1;
	return ret;
}

/* labsync_row.clocks of format 1, 12 bytes per column (HLC and origin,
   little-endian), as format 2's text. */
static void
store_clocks_text_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const uint8_t	*b = sqlite3_value_blob(argv[0]);
	int		 n = sqlite3_value_bytes(argv[0]) / 12;
	char		*out;

	(void)argc;
	if (sqlite3_value_type(argv[0]) != SQLITE_BLOB) {
		sqlite3_result_value(ctx, argv[0]);
		return;
	}
	if ((out = sqlite3_malloc(n * 24 + 1)) == NULL) {
		sqlite3_result_error_nomem(ctx);
		return;
	}
	out[0] = '\0';
	for (int i = 0; i < n; i++) {
		uint64_t h = 0;
		uint32_t o = 0;

		for (int j = 7; j >= 0; j--)
			h = h << 8 | b[i * 12 + j];
		for (int j = 11; j >= 8; j--)
			o = o << 8 | b[i * 12 + j];
		snprintf(out + i * 24, 25, "%016" PRIx64 "%08" PRIx32, h, o);
	}
	sqlite3_result_text(ctx, out, n * 24, sqlite3_free);
}

int
store_clocks_upgrade(struct store *s)
{
	if (sqlite3_create_function(s->db, "labsync_clocks_text", 1,
	    SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, store_clocks_text_fn,
	    NULL, NULL) != SQLITE_OK)
		return -1;
	return store_exec(s, "UPDATE labsync_row SET clocks = "
	    "labsync_clocks_text(clocks) WHERE typeof(clocks) = 'blob'");
}

/* --- reading the log ----------------------------------------------------- */

static Labsync__Value *
store_value_from_column(sqlite3_stmt *st, int col, Labsync__Value *v)
{
	labsync__value__init(v);
	switch (sqlite3_column_type(st, col)) {
	case SQLITE_INTEGER:
		v->kind_case = LABSYNC__VALUE__KIND_INTEGER;
		v->integer = sqlite3_column_int64(st, col);
		break;
	case SQLITE_FLOAT:
		v->kind_case = LABSYNC__VALUE__KIND_REAL;
		v->real = sqlite3_column_double(st, col);
		break;
	case SQLITE_TEXT:
		v->kind_case = LABSYNC__VALUE__KIND_TEXT;
		v->text = UNCONST(sqlite3_column_text(st, col));
		break;
	case SQLITE_BLOB:
		v->kind_case = LABSYNC__VALUE__KIND_BLOB;
		v->blob.data = UNCONST(sqlite3_column_blob(st, col));
		v->blob.len = sqlite3_column_bytes(st, col);
		break;
	default:
		v->kind_case = LABSYNC__VALUE__KIND_NULL;
		v->null = 1;
		break;
	}
	return v;
}

/*
 * The packed change of the log row st is on (st_log_range's columns):
 * the bytes as received, or a local change packed from its columns.
 * Sets *o to its origin; release lb with store_log_bytes_free.
 */
int
store_log_bytes(struct store *s, sqlite3_stmt *st, struct origin **o,
    struct log_bytes *lb)
{
	Labsync__Change	 c = LABSYNC__CHANGE__INIT;
	Labsync__Column	 cols[STORE_MAX_COLUMNS], *colp[STORE_MAX_COLUMNS];
	Labsync__Value	 vals[STORE_MAX_COLUMNS];
	const struct table *t;
	uint64_t	 key = (uint64_t)sqlite3_column_int64(st, LOG_KEY);
	uint64_t	 mask;
	size_t		 len, bound;

	lb->heap = NULL;
	if ((*o = store_origin_byid(s, (int64_t)(key >> ORIGIN_SHIFT))) ==
	    NULL) {
		log_warnx("change log: entry %" PRIu64 " of an unknown origin",
		    key);
		return -1;
	}
	if (sqlite3_column_type(st, LOG_BODY) != SQLITE_NULL) {
		lb->data = sqlite3_column_blob(st, LOG_BODY);
		lb->len = sqlite3_column_bytes(st, LOG_BODY);
		return 0;
	}
	c.origin = (*o)->name;
	c.seq = key & ORIGIN_SEQ_MAX;
	c.hlc = (uint64_t)sqlite3_column_int64(st, LOG_HLC);
	c.table = UNCONST(sqlite3_column_text(st, LOG_TBL));
	c.pk = UNCONST(sqlite3_column_text(st, LOG_PK));
	c.op = sqlite3_column_int(st, LOG_OP) == 1 ? LABSYNC__OP__OP_DELETE :
	    LABSYNC__OP__OP_UPSERT;
	mask = (uint64_t)sqlite3_column_int64(st, LOG_MASK);
	if (c.table == NULL || c.pk == NULL) {
		log_warnx("change log: entry %s:%" PRIu64 " has no table or "
		    "key", c.origin, c.seq);
		return -1;
	}
	if ((t = store_table_find(s, c.table)) == NULL && mask != 0)
		log_warnx("change log: %s:%" PRIu64 " is of table %s, which "
		    "is no longer synced: sent without its columns", c.origin,
		    c.seq, c.table);
	/* at most a tag and a 10-byte varint per field beside its bytes */
	bound = 6 * 11 + strlen(c.origin) + strlen(c.table) + strlen(c.pk);
	c.columns = colp;
	for (int i = 0; t != NULL && c.op == LABSYNC__OP__OP_UPSERT &&
	    i < t->ncols; i++) {
		if (!(mask & (1ULL << i)))
			continue;
		labsync__column__init(&cols[c.n_columns]);
		cols[c.n_columns].name = t->cols[i].name;
		cols[c.n_columns].value = store_value_from_column(st,
		    LOG_V0 + i, &vals[i]);
		colp[c.n_columns] = &cols[c.n_columns];
		c.n_columns++;
		bound += 5 * 11 + strlen(t->cols[i].name);
		if (vals[i].kind_case == LABSYNC__VALUE__KIND_TEXT)
			bound += (size_t)sqlite3_column_bytes(st, LOG_V0 + i);
		else if (vals[i].kind_case == LABSYNC__VALUE__KIND_BLOB)
			bound += vals[i].blob.len;
	}
	/* protobuf-c's size pass walks the whole change: skip it when the
	   bound shows that the stack holds it */
	len = bound <= sizeof(lb->stack) ? 0 :
	    labsync__change__get_packed_size(&c);
	if (len > sizeof(lb->stack) && (lb->heap = malloc(len)) == NULL)
		return -1;
	lb->len = labsync__change__pack(&c, lb->heap != NULL ? lb->heap :
	    lb->stack);
	lb->data = lb->heap != NULL ? lb->heap : lb->stack;
	return 0;
}

void
store_log_bytes_free(struct log_bytes *lb)
{
	free(lb->heap);
	lb->heap = NULL;
}

/*
 * Our own changes committed since the last call (the triggers wrote them
 * to the log), up to max, into the outbox: a read, no transaction.
 */
int
store_take_local(struct store *s, int max, int *n)
{
	uint64_t	 base, seq;
	int		 rc, ret = 0;

	*n = 0;
	if (s->observer || s->hold_local || s->self == NULL)
		return 0;
	base = (uint64_t)s->self->id << ORIGIN_SHIFT;
	sqlite3_bind_int64(s->st_log_range, 1, (int64_t)(base | s->published));
	sqlite3_bind_int64(s->st_log_range, 2, (int64_t)(base | ORIGIN_SEQ_MAX));
	sqlite3_bind_int64(s->st_log_range, 3, max);
	while ((rc = sqlite3_step(s->st_log_range)) == SQLITE_ROW) {
		struct log_bytes lb;
		struct origin *o;

		seq = (uint64_t)sqlite3_column_int64(s->st_log_range, LOG_KEY) &
		    ORIGIN_SEQ_MAX;
		if (store_log_bytes(s, s->st_log_range, &o, &lb) == -1) {
			ret = -1;
			break;
		}
		if (store_outbox_add(s, o->id, lb.data, lb.len) == -1)
			ret = -1;
		store_log_bytes_free(&lb);
		if (ret == -1)
			break;
		clock_absorb(s->clock, (uint64_t)sqlite3_column_int64(
		    s->st_log_range, LOG_HLC));
		s->published = seq;
		(*n)++;
	}
	sqlite3_reset(s->st_log_range);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		log_warnx("sqlite: %s", sqlite3_errmsg(s->db));
		ret = -1;
	}
	if (s->published > s->self->seq)
		s->self->seq = s->self->committed = s->published;
	if (*n > 0)
		store_checkpointer_nudge(s);
	return ret;
}

/* Local changes committed but not read into the outbox yet. */
int
store_pending_count(struct store *s)
{
	sqlite3_stmt	*st;
	int64_t		 seq = -1;

	if (s->self == NULL || sqlite3_prepare_v2(s->db, "SELECT seq FROM "
	    "labsync_state", -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		seq = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (seq < 0)
		return -1;
	return (uint64_t)seq > s->published ? (int)(seq - s->published) : 0;
}
