/*
 * erase.c: erasures. An erasure is a delete (merge.c merges it by the
 * delete rule) that also scrubs, on every node that carries it out, what
 * the node still holds of the row from before it: the values of every
 * older log entry of its key (the entry stays, an upsert without columns,
 * so that sequences stay gapless and relays still forward it) and the
 * parts of its key kept aside. An audit row in labsync_erasure records
 * it, without a value. After its commit the WAL is cut back (checkpoint.c)
 * and secure_delete (store.c) has zeroed what the scrub freed.
 *
 * Local erasures are written on the writer's connection (rows.c: the
 * delete's trigger logs it, erase_local marks the entry as an erasure),
 * applied ones by the merge (erase_carry_out). An older upsert that
 * arrives after the erasure is logged without its values (erase_covers).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sqlite3.h>

#include "clock.h"
#include "log.h"
#include "store.h"

#include "store_private.h"
#include "wire.h"

#define ERASE_STR(x)	#x
#define ERASE_XSTR(x)	ERASE_STR(x)
#define ERASE_SHIFT	ERASE_XSTR(ORIGIN_SHIFT)	/* in SQL text */

/* Entries older than the erasure at (?3 hlc, ?4 origin name), by the
   merge's (hlc, origin) order; the log's origin is its key's top bits. */
#define ERASE_OLDER_LOG \
    "(hlc < ?3 OR (hlc = ?3 AND (SELECT name FROM labsync_origin" \
    " WHERE id = labsync_log.key >> " ERASE_SHIFT ") < ?4))"
#define ERASE_OLDER_ASIDE \
    "(hlc < ?3 OR (hlc = ?3 AND origin < ?4))"

static int
erase_exec(sqlite3 *db, const char *sql, const char *tbl, const char *pk,
    uint64_t hlc, const char *origin)
{
	sqlite3_stmt	*st;
	int		 rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		log_warnx("erase: %s", sqlite3_errmsg(db));
		return -1;
	}
	sqlite3_bind_text(st, 1, tbl, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, pk, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (int64_t)hlc);
	sqlite3_bind_text(st, 4, origin, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_warnx("erase: %s", sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

/* SET clauses that empty a log entry: no body, no mask, every v* NULL. */
static char *
erase_empty_sql(sqlite3 *db)
{
	sqlite3_stmt	*st;
	char		*sql = sqlite3_mprintf("body = NULL, mask = 0");

	if (sql == NULL || sqlite3_prepare_v2(db, "SELECT name FROM"
	    " pragma_table_info('labsync_log') WHERE name GLOB 'v[0-9]*'",
	    -1, &st, NULL) != SQLITE_OK) {
		sqlite3_free(sql);
		return NULL;
	}
	while (sql != NULL && sqlite3_step(st) == SQLITE_ROW) {
		char *n = sqlite3_mprintf("%s, \"%w\" = NULL", sql,
		    (const char *)sqlite3_column_text(st, 0));

		sqlite3_free(sql);
		sql = n;
	}
	sqlite3_finalize(st);
	return sql;
}

/*
 * Carry out the erasure c (of origin c->origin) in the caller's
 * transaction: the values of older log entries of its key and its kept
 * parts go, and the audit row is written once (a kept erasure applied
 * again later finds it there).
 */
int
erase_carry_out(sqlite3 *db, const Labsync__Change *c)
{
	sqlite3_stmt	*st;
	char		*set, *sql;
	int		 rc, ret;

	if ((set = erase_empty_sql(db)) == NULL)
		return -1;
	/* upserts only: deletes and erasures hold no value. A scan of the
	   log: erasures are rare, an index by key would cost every write */
	sql = sqlite3_mprintf("UPDATE labsync_log SET %s WHERE"
	    " tbl = ?1 AND pk = ?2 AND op = 0 AND (body IS NOT NULL OR"
	    " mask <> 0) AND " ERASE_OLDER_LOG, set);
	sqlite3_free(set);
	if (sql == NULL)
		return -1;
	ret = erase_exec(db, sql, c->table, c->pk, c->hlc, c->origin);
	sqlite3_free(sql);
	if (ret == -1 || erase_exec(db, "DELETE FROM labsync_aside WHERE"
	    " tbl = ?1 AND pk = ?2 AND " ERASE_OLDER_ASIDE, c->table, c->pk,
	    c->hlc, c->origin) == -1)
		return -1;
	if (sqlite3_prepare_v2(db, "INSERT INTO labsync_erasure(tbl, pk,"
	    " origin, seq, hlc, requested_by, asked_ms, done_ms) SELECT ?1, ?2,"
	    " ?3, ?4, ?5, ?6, ?7, ?8 WHERE NOT EXISTS (SELECT 1 FROM"
	    " labsync_erasure WHERE origin = ?3 AND seq = ?4)", -1, &st,
	    NULL) != SQLITE_OK) {
		log_warnx("erase: %s", sqlite3_errmsg(db));
		return -1;
	}
	sqlite3_bind_text(st, 1, c->table, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, c->pk, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, c->origin, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (int64_t)c->seq);
	sqlite3_bind_int64(st, 5, (int64_t)c->hlc);
	sqlite3_bind_text(st, 6, c->erased_by != NULL ? c->erased_by : "", -1,
	    SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, (int64_t)c->asked_ms);
	sqlite3_bind_int64(st, 8, (int64_t)clock_system_ms());
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_warnx("erase: %s", sqlite3_errmsg(db));
		return -1;
	}
	log_info("erased %s %s (erasure %s:%" PRIu64 ", asked by %s)",
	    c->table, c->pk, c->origin, c->seq,
	    c->erased_by != NULL && c->erased_by[0] != '\0' ? c->erased_by :
	    "?");
	return 0;
}

/* Our sequence now, for erase_local; 0 if it cannot be read. */
uint64_t
erase_seq(sqlite3 *db)
{
	sqlite3_stmt	*st;
	int64_t		 v = 0;

	if (sqlite3_prepare_v2(db, "SELECT seq FROM labsync_state", -1, &st,
	    NULL) != SQLITE_OK)
		return 0;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v > 0 ? (uint64_t)v : 0;
}

/*
 * A local erasure, in the writer's transaction, right after the delete
 * whose entry the capture trigger wrote (our newest): the entry becomes
 * an erasure (op 2, kept packed with who asked and when: a log row has
 * no columns for them), then it is carried out here. by: who asked;
 * seq: our sequence before the delete. 1 if the delete was not
 * captured (a table that is not synced).
 */
int
erase_local(sqlite3 *db, const char *by, uint64_t seq)
{
	Labsync__Change	 c = LABSYNC__CHANGE__INIT;
	sqlite3_stmt	*st = NULL;
	uint8_t		*buf = NULL;
	char		*tbl = NULL, *pk = NULL, *origin = NULL;
	size_t		 len;
	int64_t		 key;
	int		 ret = -1;

	if (sqlite3_prepare_v2(db, "SELECT l.key, l.hlc, l.tbl, l.pk, o.name"
	    " FROM labsync_state AS s JOIN labsync_log AS l ON l.key ="
	    " (s.self << " ERASE_SHIFT " | s.seq) JOIN labsync_origin AS o"
	    " ON o.id = s.self"
	    " WHERE l.op = 1 AND s.seq > ?", -1, &st, NULL) != SQLITE_OK)
		goto sqlfail;
	sqlite3_bind_int64(st, 1, (int64_t)seq);
	if (sqlite3_step(st) != SQLITE_ROW) {
		ret = 1;
		goto done;
	}
	key = sqlite3_column_int64(st, 0);
	/* copies: the statement ends before the log is written */
	if (sqlite3_column_text(st, 2) == NULL ||
	    sqlite3_column_text(st, 3) == NULL ||
	    (tbl = strdup((const char *)sqlite3_column_text(st, 2))) == NULL ||
	    (pk = strdup((const char *)sqlite3_column_text(st, 3))) == NULL ||
	    (origin = strdup((const char *)sqlite3_column_text(st, 4))) ==
	    NULL)
		goto done;
	c.seq = (uint64_t)key & ORIGIN_SEQ_MAX;
	c.hlc = (uint64_t)sqlite3_column_int64(st, 1);
	c.table = tbl;
	c.pk = pk;
	c.origin = origin;
	c.op = LABSYNC__OP__OP_ERASE;
	c.erased_by = UNCONST(by);
	c.asked_ms = clock_system_ms();
	sqlite3_finalize(st);
	st = NULL;
	len = labsync__change__get_packed_size(&c);
	if ((buf = malloc(len)) == NULL)
		goto done;
	labsync__change__pack(&c, buf);
	if (erase_carry_out(db, &c) == -1)
		goto done;
	if (sqlite3_prepare_v2(db, "UPDATE labsync_log SET op = 2, body = ?"
	    " WHERE key = ?", -1, &st, NULL) != SQLITE_OK)
		goto sqlfail;
	sqlite3_bind_blob(st, 1, buf, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, key);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto sqlfail;
	ret = 0;
	goto done;
sqlfail:
	log_warnx("erase: %s", sqlite3_errmsg(db));
done:
	sqlite3_finalize(st);
	free(buf);
	free(tbl);
	free(pk);
	free(origin);
	return ret;
}

/* 1 if labsync keeps clocks of key pk of table (a tombstone), 0 if not. */
static int
erase_known(struct store *s, const char *table, const char *pk)
{
	sqlite3_stmt	*st;
	int		 known = 0;

	if (sqlite3_prepare_v2(s->db, "SELECT EXISTS (SELECT 1 FROM"
	    " labsync_row WHERE tbl = ? AND pk = ?)", -1, &st, NULL) !=
	    SQLITE_OK)
		return 0;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, pk, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		known = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return known;
}

/*
 * A row deleted before: its key has a tombstone here, the row is gone,
 * but old values of it may still be in the logs. In the caller's
 * transaction, stamp a delete of it by the statements (and with the
 * refusals) of its table's delete trigger, run from a temporary trigger,
 * for erase_local to make an erasure of. 0 stamped; 1 the key is not
 * known here (or its table not synced); -1 failed, -2 refused by the
 * trigger: err says why.
 */
int
erase_absent(struct store *s, const char *table, const char *pk, char *err,
    size_t errlen)
{
	struct table	*t;
	sqlite3_stmt	*st = NULL;
	char		*body, *sql;
	int		 rc, ret = -1;

	if ((t = schema_table_find(s, table)) == NULL ||
	    !erase_known(s, table, pk))
		return 1;
	body = capture_delete_sql(s, t, "NEW.pk");
	sql = store_sql("DROP VIEW IF EXISTS temp.labsync_erase;"
	    "CREATE TEMP VIEW labsync_erase AS SELECT NULL AS pk WHERE 0;"
	    "CREATE TEMP TRIGGER labsync_erase_del INSTEAD OF INSERT ON"
	    " labsync_erase BEGIN%s END;", body);
	sqlite3_free(body);
	rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
	sqlite3_free(sql);
	if (rc != SQLITE_OK || sqlite3_prepare_v2(s->db, "INSERT INTO"
	    " temp.labsync_erase(pk) VALUES (?)", -1, &st, NULL) !=
	    SQLITE_OK) {
		store_seterr(err, errlen, "%s", sqlite3_errmsg(s->db));
		goto done;
	}
	sqlite3_bind_text(st, 1, pk, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_DONE)
		ret = 0;
	else {
		store_seterr(err, errlen, "%s", sqlite3_errmsg(s->db));
		if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_TRIGGER)
			ret = -2;
	}
done:
	sqlite3_finalize(st);
	/* its trigger goes with it */
	sqlite3_exec(s->db, "DROP VIEW IF EXISTS temp.labsync_erase", NULL,
	    NULL, NULL);
	return ret;
}

/* The statement erase_covers steps. */
int
erase_prepare(struct store *s)
{
	return store_prepare(s, &s->st_erased, "SELECT EXISTS (SELECT 1 FROM"
	    " labsync_erasure WHERE tbl = ?1 AND pk = ?2 AND (hlc > ?3 OR"
	    " (hlc = ?3 AND origin > ?4)))");
}

/*
 * 1 if an erasure newer than c (by the merge's order) erased c's row:
 * c then keeps no value here, 0 if not, -1 on error.
 */
int
erase_covers(struct store *s, const Labsync__Change *c)
{
	sqlite3_stmt	*st = s->st_erased;
	int		 rc, ret;

	if (c->table == NULL || c->pk == NULL)
		return 0;
	sqlite3_bind_text(st, 1, c->table, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, c->pk, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (int64_t)c->hlc);
	sqlite3_bind_text(st, 4, c->origin, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	ret = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) != 0 : -1;
	sqlite3_reset(st);
	if (ret == -1)
		log_warnx("erase: %s", sqlite3_errmsg(s->db));
	return ret;
}

/* ms since the epoch as ISO 8601 UTC, to the second. */
static void
erase_iso(int64_t ms, char *buf, size_t len)
{
	time_t		 t = (time_t)(ms / 1000);
	struct tm	 tm;

	if (ms <= 0 || gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "-");
}

/*
 * Whether peer holds origin's change seq: "yes" if its confirmed vector
 * covers it (labsync_peer_seen), "no" if it does not yet, "unknown" if
 * nothing is known of that peer. The origin itself holds it.
 */
static const char *
erase_confirmed(sqlite3_stmt *st, const char *peer, const char *origin,
    int64_t seq)
{
	const char	*r = "unknown";

	if (strcmp(peer, origin) == 0)
		return "yes";
	sqlite3_bind_text(st, 1, peer, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, origin, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_type(st, 0) != SQLITE_NULL)
		r = sqlite3_column_int64(st, 0) >= seq ? "yes" : "no";
	sqlite3_reset(st);
	return r;
}

/*
 * labsyncctl erasures: the audit rows, oldest first, as lines or (json)
 * one array; for each of peers, whether it confirmed the erasure.
 */
int
erase_list(struct store *s, char *const *peers, size_t npeers, int json,
    FILE *out)
{
	sqlite3_stmt	*st = NULL, *seen = NULL;
	json_t		*a = json ? json_array() : NULL;
	char		 asked[32], done[32];
	int		 rc = SQLITE_ERROR, ret = -1;

	if (sqlite3_prepare_v2(s->db, "SELECT tbl, pk, origin, seq,"
	    " requested_by, asked_ms, done_ms FROM labsync_erasure ORDER BY"
	    " asked_ms, origin, seq", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "SELECT max(seq) FROM labsync_peer_seen"
	    " WHERE peer = ?1 AND origin = ?2", -1, &seen, NULL) != SQLITE_OK)
		goto done;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *origin = (const char *)sqlite3_column_text(st, 2);
		int64_t seq = sqlite3_column_int64(st, 3);
		int64_t asked_ms = sqlite3_column_int64(st, 5);
		int64_t done_ms = sqlite3_column_int64(st, 6);
		json_t *p = NULL;

		if (a != NULL) {
			p = json_object();
			for (size_t i = 0; i < npeers; i++)
				json_object_set_new(p, peers[i],
				    json_string(erase_confirmed(seen, peers[i],
				    origin, seq)));
			json_array_append_new(a, json_pack("{s:s, s:s, s:s,"
			    " s:I, s:s, s:I, s:I, s:o}",
			    "table", sqlite3_column_text(st, 0),
			    "id", sqlite3_column_text(st, 1),
			    "origin", origin, "seq", (json_int_t)seq,
			    "requested_by", sqlite3_column_text(st, 4),
			    "asked_ms", (json_int_t)asked_ms,
			    "done_ms", (json_int_t)done_ms,
			    "peers", p));
			continue;
		}
		erase_iso(asked_ms, asked, sizeof(asked));
		erase_iso(done_ms, done, sizeof(done));
		fprintf(out, "%s\t%s\t%s\t%s\t%s:%lld\t%s\t",
		    asked, sqlite3_column_text(st, 4),
		    sqlite3_column_text(st, 0), sqlite3_column_text(st, 1),
		    origin, (long long)seq, done);
		for (size_t i = 0; i < npeers; i++)
			fprintf(out, "%s%s=%s", i ? "," : "", peers[i],
			    erase_confirmed(seen, peers[i], origin, seq));
		fprintf(out, "%s\n", npeers == 0 ? "-" : "");
	}
	if (rc != SQLITE_DONE)
		goto done;
	if (a != NULL) {
		json_dumpf(a, out, JSON_COMPACT);
		fputc('\n', out);
	}
	ret = 0;
done:
	if (ret == -1)
		log_warnx("sqlite: %s", sqlite3_errmsg(s->db));
	sqlite3_finalize(st);
	sqlite3_finalize(seen);
	json_decref(a);
	return ret;
}
