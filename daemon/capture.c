/*
 * capture.c: the capture triggers. Local writes become changes of ours
 * inside the writer's own transaction, whoever writes (the HTTP API,
 * labsyncctl, any SQLite client): each write gets the next HLC (by
 * clock.c's step rule, from the one kept in labsync_state, so it never
 * goes back and is above every remote clock the daemon applied), the
 * next sequence of this node, a log row with the written values and the
 * row's clocks. The daemon then only reads new rows of the log and
 * publishes them (changelog_take_local): a local commit is never followed
 * by a second write transaction.
 *
 * Also the upgrade of what format 1's triggers left: queued writes and
 * clocks as blobs.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "clock.h"
#include "log.h"
#include "rules.h"
#include "store.h"

#include "store_private.h"
#include "wire.h"

/* A column's clock in labsync_row.clocks: 16 hex digits of HLC, 8 of
   origin id, one after another in column order. */
#define CLOCK_SQL	"printf('%%016x%%08x', %s, %s)"
#define CLOCK_ZERO	"'000000000000000000000000'"

/* What a stamped write holds, as SQL: a delete, or for each column
   whether it was written and its value, and the mask of those. */
struct stamp_src {
	int		 del;
	char		*written[STORE_MAX_COLUMNS];
	char		*value[STORE_MAX_COLUMNS];
	char		*mask;
};

static void
capture_src_free(struct stamp_src *src, int ncols)
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
capture_src_row(struct stamp_src *src, const struct table *t, int upd)
{
	uint64_t	 all = 0;

	memset(src, 0, sizeof(*src));
	for (int i = 0; i < t->ncols; i++)
		if (!t->cols[i].local)
			all |= 1ULL << i;
	src->mask = store_sql(upd ? "0" : "%lld", (long long)all);
	for (int i = 0; i < t->ncols; i++) {
		const char *c = t->cols[i].name;

		/* a local column is neither stamped nor logged */
		if (t->cols[i].local) {
			src->written[i] = store_sql("0");
			src->value[i] = store_sql("NULL");
			continue;
		}
		if (!upd) {
			src->written[i] = store_sql("1");
			src->value[i] = store_sql("NEW.\"%w\"", c);
			continue;
		}
		src->written[i] = store_sql("(OLD.\"%w\" IS NOT "
		    "NEW.\"%w\")", c, c);
		src->value[i] = store_sql("CASE WHEN %s THEN NEW.\"%w\" "
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
capture_clocks_sql(const struct table *t, const struct stamp_src *src,
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
capture_clocks_new_sql(const struct table *t, const struct stamp_src *src)
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
capture_stamp_by_key(char *sql, const struct table *t, const char *key,
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
	absent = capture_clocks_new_sql(t, src);
	present = capture_clocks_sql(t, src, "excluded.r_hlc",
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
capture_stamp_by_rowid(char *sql, const struct table *t, const char *key,
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
	/* a row there has its clocks by rowid (merge_rows_check), if any */
	absent = capture_clocks_new_sql(t, src);
	present = capture_clocks_sql(t, src, "excluded.r_hlc",
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
capture_stamp_sql(const struct table *t, const char *key, const char *rid,
    const struct stamp_src *src, int all, const char *refuse)
{
	char	*sql, step[256];

	if (clock_step_sql(step, sizeof(step), "hlc", CLOCK_NOW_MS_SQL) == -1)
		fatalx("%s: clock_step_sql does not fit", __func__);
	sql = store_sql(" UPDATE labsync_state SET hlc = %s%s%s%s%s,"
	    " seq = seq + 1, at = at + 1 WHERE applying = 0;"
	    " INSERT INTO labsync_log(key, hlc, tbl, pk, op, mask, at",
	    refuse[0] != '\0' ? "CASE " : "", refuse,
	    refuse[0] != '\0' ? " ELSE " : "", step,
	    refuse[0] != '\0' ? " END" : "");
	for (int i = 0; !src->del && i < t->ncols; i++)
		sql = store_append(sql, ", v%d", i);
	sql = store_append(sql, ") SELECT self << %d | seq, hlc, %Q, %s,"
	    " %d, %s, at", ORIGIN_SHIFT, t->name, key, src->del,
	    src->del ? "0" : src->mask);
	for (int i = 0; !src->del && i < t->ncols; i++)
		sql = store_append(sql, ", %s", src->value[i]);
	sql = store_append(sql, " FROM labsync_state WHERE applying = 0;");
	if (rid == NULL)
		return capture_stamp_by_key(sql, t, key, src, all);
	return capture_stamp_by_rowid(sql, t, key, rid, src, all);
}

/* SQL of one column expression per row side, e.g. NEW."id". */
static char *
capture_ref(const char *side, const char *col)
{
	return store_sql("%s.\"%w\"", side, col);
}

/*
 * The CASE arms that refuse a write: guard's, then those of the rules
 * (rules.c) for key, for old (the key of a row that goes, or NULL) and
 * for the values of src that are written (none if NULL). NULL: no memory.
 */
static char *
capture_rules(const char *guard, const struct table *t, const char *key,
    const char *old, const struct stamp_src *src)
{
	char	*sql = sqlite3_mprintf("%s", guard);

	sql = rules_key_sql(sql, t->name, t->pk, key);
	if (old != NULL && sql != NULL)
		sql = rules_key_sql(sql, t->name, t->pk, old);
	for (int i = 0; src != NULL && i < t->ncols && sql != NULL; i++)
		sql = rules_value_sql(sql, t->name, t->cols[i].name,
		    t->cols[i].aff, src->value[i]);
	return sql;
}

/* The CASE arms that refuse any local write to t: a partner's node takes
   none to a table it may not write, an observer or a recovering node
   none at all. */
static char *
capture_guard(struct store *s, const struct table *t)
{
	if (!schema_writable(s, t->name))
		return store_sql("WHEN 1 THEN RAISE(ABORT, 'labsync: this node "
		    "is a partner that may not write table %q, local writes to "
		    "it are refused')", t->name);
	return store_sql(
	    "WHEN writable = 0 THEN RAISE(ABORT, 'labsync: this node is an "
	    "observer, local writes are refused')"
	    " WHEN writable = 2 THEN RAISE(ABORT, 'labsync: this node is "
	    "checking with its peers for changes of its own that it lost "
	    "(start-up or restore), writes are refused until it is done')");
}

/*
 * The statements the delete trigger of t runs, for the key `key` (SQL)
 * of a row that is not there (its clocks are kept by key): an erasure
 * of a row deleted before (erase.c) stamps its delete with them.
 */
char *
capture_delete_sql(struct store *s, const struct table *t, const char *key)
{
	struct stamp_src del = { .del = 1 };
	char	*guard, *ok, *sql;

	guard = capture_guard(s, t);
	if ((ok = capture_rules(guard, t, key, NULL, NULL)) == NULL)
		fatalx("%s: out of memory", __func__);
	sql = capture_stamp_sql(t, key, NULL, &del, 0, ok);
	sqlite3_free(guard);
	sqlite3_free(ok);
	return sql;
}

/*
 * The capture triggers. Each refuses the write when the node does not take
 * local writes or the write breaks a rule of rules.c (the message says
 * why), then stamps it; a changed primary
 * key is a delete and an insert. With labsync_state.applying set (a
 * connection applying remote changes with triggers on) they do nothing.
 */
int
capture_triggers(struct store *s, struct table *t)
{
	struct stamp_src ins, upd, del = { .del = 1 };
	char	*sql, *guard, *changed = NULL, *nk, *ok;
	char	*ins_ok, *upd_ok, *rekey_ok, *del_ok;
	char	*ins_sql, *upd_sql, *rekey_sql, *del_sql, *ins_only;
	char	*nr = NULL, *or = NULL, *move;
	int	 ret;

	capture_src_row(&ins, t, 0);
	capture_src_row(&upd, t, 1);
	nk = capture_ref("NEW", t->pk);
	ok = capture_ref("OLD", t->pk);
	if (t->rowid != NULL) {
		nr = store_sql("NEW.%s", t->rowid);
		or = store_sql("OLD.%s", t->rowid);
	}
	/* a row given another rowid (UPDATE ... SET rowid, rare) takes its
	   clocks along; the update trigger does it first when it fires */
	move = nr == NULL ? store_sql("%s", "") : store_sql(
	    " UPDATE OR REPLACE labsync_rowid SET rid = %s WHERE %s IS NOT %s"
	    " AND tbl = %Q AND rid = %s AND (SELECT applying FROM"
	    " labsync_state) = 0;", nr, or, nr, t->name, or);
	guard = capture_guard(s, t);
	/* the rules (rules.c) after it: the keys, the values written */
	ins_ok = capture_rules(guard, t, nk, NULL, &ins);
	upd_ok = capture_rules(guard, t, nk, NULL, &upd);
	rekey_ok = capture_rules(guard, t, nk, ok, &ins);
	del_ok = capture_rules(guard, t, ok, NULL, NULL);
	if (ins_ok == NULL || upd_ok == NULL || rekey_ok == NULL ||
	    del_ok == NULL)
		fatalx("%s: out of memory", __func__);
	for (int i = 0; i < t->ncols; i++)
		changed = store_append(changed, "%s%s", i ? " OR " : "",
		    upd.written[i]);
	if (changed == NULL)
		changed = store_sql("0");
	ins_sql = capture_stamp_sql(t, nk, nr, &ins, 1, ins_ok);
	upd_sql = capture_stamp_sql(t, nk, nr, &upd, 0, upd_ok);
	/* a changed key: the old one deleted (refused if the new one or the
	   row is bad), the new one inserted */
	rekey_sql = capture_stamp_sql(t, ok, or, &del, 0, rekey_ok);
	del_sql = capture_stamp_sql(t, ok, or, &del, 0, del_ok);
	ins_only = capture_stamp_sql(t, nk, nr, &ins, 1, "");
	sql = store_sql(
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
	sqlite3_free(ins_ok);
	sqlite3_free(upd_ok);
	sqlite3_free(rekey_ok);
	sqlite3_free(del_ok);
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
	capture_src_free(&ins, t->ncols);
	capture_src_free(&upd, t->ncols);
	return ret;
}

/* Queued writes of tables no longer synced cannot be stamped: say so. */
static int
capture_replay_orphans(struct store *s)
{
	sqlite3_stmt	*st;
	char		*sql = store_sql("SELECT tbl, count(*) FROM "
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
capture_replay_pending(struct store *s)
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
		src.mask = store_sql("(NEW.mask & %lld)", all);
		for (int i = 0; i < t->ncols; i++) {
			src.written[i] = store_sql("((NEW.mask >> %d) & 1)",
			    i);
			src.value[i] = store_sql("CASE WHEN %s THEN NEW.v%d "
			    "END", src.written[i], i);
		}
		/* by key: merge_rows_check moves them after */
		up = capture_stamp_sql(t, "NEW.pk", NULL, &src, 0, "");
		down = capture_stamp_sql(t, "NEW.pk", NULL, &del, 0, "");
		sql = store_sql(
		    "CREATE TEMP TRIGGER \"labsync_replay_%w_up\" INSTEAD OF"
		    " INSERT ON labsync_replay WHEN NEW.tbl = %Q AND NEW.op = 0"
		    " AND (NEW.mask & %lld) <> 0 BEGIN%s END;"
		    "CREATE TEMP TRIGGER \"labsync_replay_%w_del\" INSTEAD OF"
		    " INSERT ON labsync_replay WHEN NEW.tbl = %Q AND NEW.op = 1"
		    " BEGIN%s END;", t->name, t->name, all, up, t->name,
		    t->name, down);
		sqlite3_free(up);
		sqlite3_free(down);
		capture_src_free(&src, t->ncols);
		if (store_exec(s, sql) == -1)
			goto done;
		sqlite3_free(sql);
		sql = NULL;
	}
	if (capture_replay_orphans(s) == -1 ||
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
capture_clocks_text_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
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
capture_clocks_upgrade(struct store *s)
{
	if (sqlite3_create_function(s->db, "labsync_clocks_text", 1,
	    SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, capture_clocks_text_fn,
	    NULL, NULL) != SQLITE_OK)
		return -1;
	return store_exec(s, "UPDATE labsync_row SET clocks = "
	    "labsync_clocks_text(clocks) WHERE typeof(clocks) = 'blob'");
}

