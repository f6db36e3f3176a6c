/*
 * aside.c: the keep-aside store (labsync_aside). A received change whose
 * content this node cannot take (a table or column it does not know, a
 * value that does not fit its column, a bad key) does not refuse its
 * batch: merge.c applies the parts that fit and keeps the rest here, with
 * the change's origin, sequence and clock and a reason code. The change
 * counts as received (the vector moves on; the log keeps it whole, for
 * relays). A part is kept whole (a change of an unknown table, or with a
 * bad key) or as one column's value.
 *
 * aside_release tries every kept part again (after the layout changed,
 * or on labsyncctl retry) and merges what fits now by the normal rule,
 * with its original clock: a later write of the column still wins.
 * aside_summary says per origin what is kept (for our heartbeats), and
 * aside_list and aside_discard serve labsyncctl.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sqlite3.h>

#include "clock.h"
#include "log.h"
#include "store.h"

#include "store_private.h"
#include "wire.h"

int
aside_prepare(struct store *s)
{
	return store_prepare(s, &s->st_aside_put,
	    "INSERT INTO labsync_aside(origin, seq, hlc, tbl, pk, op, col,"
	    " body, reason, state, since_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
	    " ?7, ?8, ?9, ?10, ?11)");
}

/*
 * Keep part of c aside: column j (its value), or with j -1 the whole
 * change (raw: as received, or NULL to pack it). since: when it was
 * first kept (0: now).
 */
int
aside_keep(struct store *s, const Labsync__Change *c, int j,
    const ProtobufCBinaryData *raw, enum reason r, uint64_t since)
{
	sqlite3_stmt	*st = s->st_aside_put;
	uint8_t		 stackbuf[1024], *buf = stackbuf;
	size_t		 len;
	int		 ret;

	if (j < 0 && raw != NULL && raw->data != NULL) {
		buf = raw->data;
		len = raw->len;
	} else {
		len = j < 0 ? labsync__change__get_packed_size(c) :
		    c->columns[j]->value != NULL ?
		    labsync__value__get_packed_size(c->columns[j]->value) : 0;
		if (len > sizeof(stackbuf) && (buf = malloc(len)) == NULL) {
			log_warn("keeping a change aside");
			return -1;
		}
		if (j < 0)
			labsync__change__pack(c, buf);
		else if (len > 0)
			labsync__value__pack(c->columns[j]->value, buf);
	}
	sqlite3_bind_text(st, 1, c->origin, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)c->seq);
	sqlite3_bind_int64(st, 3, (int64_t)c->hlc);
	sqlite3_bind_text(st, 4, c->table != NULL ? c->table : "", -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(st, 5, c->pk != NULL ? c->pk : "", -1,
	    SQLITE_STATIC);
	sqlite3_bind_int(st, 6, (int)c->op);
	if (j < 0)
		sqlite3_bind_null(st, 7);
	else
		sqlite3_bind_text(st, 7, c->columns[j]->name, -1,
		    SQLITE_STATIC);
	sqlite3_bind_blob(st, 8, buf, (int)len, SQLITE_STATIC);
	sqlite3_bind_int(st, 9, (int)r);
	sqlite3_bind_text(st, 10, reason_keep_name(reason_keep(r)), -1,
	    SQLITE_STATIC);
	sqlite3_bind_int64(st, 11, (int64_t)(since != 0 ? since :
	    clock_system_ms()));
	ret = store_step_done(s, st);
	sqlite3_clear_bindings(st);
	if (buf != stackbuf && (raw == NULL || buf != raw->data))
		free(buf);
	if (ret == 0)
		log_debug("kept aside %s #%" PRIu64 " %s%s%s: %s (%s)",
		    c->origin, c->seq, c->table, j < 0 ? "" : ".",
		    j < 0 ? "" : c->columns[j]->name, reason_name(r),
		    reason_keep_name(reason_keep(r)));
	return ret;
}

/* One kept part, read back: its change (one column, or whole). */
struct aside_part {
	int64_t		 id;
	uint64_t	 since;
	Labsync__Change	 c;
	Labsync__Column	 col, *colp;
	Labsync__Change	*whole;		/* unpacked, or NULL */
	Labsync__Value	*value;		/* unpacked, or NULL */
	char		*origin, *table, *pk, *name;
};

static void
aside_part_free(struct aside_part *p)
{
	labsync__change__free_unpacked(p->whole, NULL);
	labsync__value__free_unpacked(p->value, NULL);
	free(p->origin);
	free(p->table);
	free(p->pk);
	free(p->name);
}

static char *
aside_text(sqlite3_stmt *st, int i)
{
	const char	*t = (const char *)sqlite3_column_text(st, i);

	return strdup(t != NULL ? t : "");
}

/* Read kept part id into p; 0, or -1 (gone or unreadable: dropped). */
static int
aside_part_load(sqlite3_stmt *st, int64_t id, struct aside_part *p)
{
	const void	*body;
	int		 len, ret = -1;

	memset(p, 0, sizeof(*p));
	p->id = id;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) != SQLITE_ROW)
		goto done;
	body = sqlite3_column_blob(st, 7);
	len = sqlite3_column_bytes(st, 7);
	p->since = (uint64_t)sqlite3_column_int64(st, 8);
	if (sqlite3_column_type(st, 6) == SQLITE_NULL) {
		p->whole = len > 0 ? labsync__change__unpack(NULL,
		    (size_t)len, body) : NULL;
		/* it was checked when it came: it names its origin */
		if (p->whole == NULL || p->whole->origin == NULL ||
		    strcmp(p->whole->origin, (const char *)
		    sqlite3_column_text(st, 0)) != 0 ||
		    p->whole->table == NULL) {
			log_warnx("kept change %" PRId64 " does not decode: "
			    "dropped", id);
			goto done;
		}
		ret = 0;
		goto done;
	}
	labsync__change__init(&p->c);
	labsync__column__init(&p->col);
	p->origin = aside_text(st, 0);
	p->table = aside_text(st, 3);
	p->pk = aside_text(st, 4);
	p->name = aside_text(st, 6);
	if (p->origin == NULL || p->table == NULL || p->pk == NULL ||
	    p->name == NULL)
		goto done;
	if ((p->value = labsync__value__unpack(NULL, (size_t)len,
	    body)) == NULL) {
		log_warnx("kept value %" PRId64 " does not decode", id);
		goto done;
	}
	p->c.origin = p->origin;
	p->c.seq = (uint64_t)sqlite3_column_int64(st, 1);
	p->c.hlc = (uint64_t)sqlite3_column_int64(st, 2);
	p->c.table = p->table;
	p->c.pk = p->pk;
	p->c.op = LABSYNC__OP__OP_UPSERT;
	p->col.name = p->name;
	p->col.value = p->value;
	p->colp = &p->col;
	p->c.columns = &p->colp;
	p->c.n_columns = 1;
	ret = 0;
done:
	sqlite3_reset(st);
	return ret;
}

/*
 * Try every kept part again, inside merge_apply_begin's transaction: a
 * part that fits now is merged with its original clock, one that does
 * not is kept again (its reason may have changed). *released: parts
 * merged; *kept: parts still kept.
 */
int
aside_release(struct store *s, int *released, int *kept)
{
	sqlite3_stmt	*ids = NULL, *get = NULL, *del = NULL;
	int64_t		*v = NULL;
	size_t		 n = 0, cap = 0;
	int		 ret = -1, rc;

	*released = *kept = 0;
	if (sqlite3_prepare_v2(s->db, "SELECT id FROM labsync_aside ORDER BY"
	    " origin, seq, id", -1, &ids, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "SELECT origin, seq, hlc, tbl, pk, op,"
	    " col, body, since_ms FROM labsync_aside WHERE id = ?", -1, &get,
	    NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "DELETE FROM labsync_aside WHERE"
	    " id = ?", -1, &del, NULL) != SQLITE_OK) {
		log_warnx("sqlite: %s", sqlite3_errmsg(s->db));
		goto done;
	}
	while ((rc = sqlite3_step(ids)) == SQLITE_ROW) {
		if (n == cap) {
			int64_t *nv = reallocarray(v, cap ? cap * 2 : 64,
			    sizeof(*v));

			if (nv == NULL) {
				log_warn("releasing kept changes");
				goto done;
			}
			v = nv;
			cap = cap ? cap * 2 : 64;
		}
		v[n++] = sqlite3_column_int64(ids, 0);
	}
	if (rc != SQLITE_DONE) {
		log_warnx("sqlite: %s", sqlite3_errmsg(s->db));
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		struct aside_part p;
		struct origin *o;
		Labsync__Change *c;
		int left;

		rc = aside_part_load(get, v[i], &p);
		sqlite3_bind_int64(del, 1, v[i]);
		if (store_step_done(s, del) == -1) {
			aside_part_free(&p);
			goto done;
		}
		if (rc == -1) {
			aside_part_free(&p);
			continue;	/* unreadable: dropped, said so */
		}
		c = p.whole != NULL ? p.whole : &p.c;
		if ((o = vector_origin_get(s, c->origin)) == NULL ||
		    merge_fitting(s, o, c, NULL, p.since, &left) == -1) {
			aside_part_free(&p);
			goto done;
		}
		if (left == 0)
			(*released)++;
		else
			(*kept)++;
		aside_part_free(&p);
	}
	if (*released > 0)
		log_info("applied %d kept-aside changes (%d still kept)",
		    *released, *kept);
	ret = 0;
done:
	free(v);
	sqlite3_finalize(ids);
	sqlite3_finalize(get);
	sqlite3_finalize(del);
	return ret;
}

/* Kept changes: counted by state (changes, not parts). */
int
aside_counts(struct store *s, int64_t *waiting, int64_t *refused)
{
	*waiting = store_pragma_int(s, "SELECT count(*) FROM (SELECT DISTINCT"
	    " origin, seq FROM labsync_aside WHERE state = 'waiting')");
	*refused = store_pragma_int(s, "SELECT count(*) FROM (SELECT DISTINCT"
	    " origin, seq FROM labsync_aside WHERE state = 'refused')");
	return *waiting < 0 || *refused < 0 ? -1 : 0;
}

/*
 * What this node keeps aside, per origin, at most max origins (for our
 * heartbeats); free with aside_summary_free.
 */
Labsync__Kept **
aside_summary(struct store *s, size_t max, size_t *n)
{
	sqlite3_stmt	*st;
	Labsync__Kept	**v;

	*n = 0;
	if ((v = calloc(max + 1, sizeof(*v))) == NULL)
		return NULL;
	/* the bare columns come from the row of max(id): the newest */
	if (sqlite3_prepare_v2(s->db, "SELECT origin,"
	    " count(DISTINCT CASE WHEN state = 'waiting' THEN seq END),"
	    " count(DISTINCT CASE WHEN state = 'refused' THEN seq END),"
	    " min(since_ms), max(id), reason, tbl, col FROM labsync_aside"
	    " GROUP BY origin ORDER BY origin LIMIT ?", -1, &st, NULL) !=
	    SQLITE_OK) {
		log_warnx("sqlite: %s", sqlite3_errmsg(s->db));
		return v;
	}
	sqlite3_bind_int64(st, 1, (int64_t)max);
	while (sqlite3_step(st) == SQLITE_ROW) {
		Labsync__Kept *k = calloc(1, sizeof(*k));
		const char *col = (const char *)sqlite3_column_text(st, 7);
		const char *tbl = (const char *)sqlite3_column_text(st, 6);

		if (k == NULL)
			break;
		labsync__kept__init(k);
		k->origin = aside_text(st, 0);
		k->waiting = (uint32_t)sqlite3_column_int64(st, 1);
		k->refused = (uint32_t)sqlite3_column_int64(st, 2);
		k->since_ms = (uint64_t)sqlite3_column_int64(st, 3);
		k->reason = (uint32_t)sqlite3_column_int(st, 5);
		if (asprintf(&k->what, "%.64s%s%.64s", tbl != NULL ? tbl : "",
		    col != NULL ? "." : "", col != NULL ? col : "") == -1)
			k->what = NULL;
		v[(*n)++] = k;
		if (k->origin == NULL || k->what == NULL)
			break;
	}
	sqlite3_finalize(st);
	return v;
}

void
aside_summary_free(Labsync__Kept **v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(v[i]->origin);
		free(v[i]->what);
		free(v[i]);
	}
	free(v);
}

/* labsyncctl refused: every kept part, as lines or (json) one array. */
int
aside_list(struct store *s, int json, FILE *out)
{
	sqlite3_stmt	*st;
	json_t		*a = json ? json_array() : NULL;
	int		 rc;

	if (sqlite3_prepare_v2(s->db, "SELECT origin, seq, tbl, pk, col,"
	    " reason, state, since_ms FROM labsync_aside ORDER BY origin, seq,"
	    " id", -1, &st, NULL) != SQLITE_OK) {
		log_warnx("sqlite: %s", sqlite3_errmsg(s->db));
		json_decref(a);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *col = (const char *)sqlite3_column_text(st, 4);
		enum reason r = sqlite3_column_int(st, 5);
		int64_t since = sqlite3_column_int64(st, 7);

		if (a != NULL) {
			json_array_append_new(a, json_pack("{s:s, s:I, s:s, "
			    "s:s, s:o, s:s, s:s, s:I}",
			    "origin", sqlite3_column_text(st, 0),
			    "seq", (json_int_t)sqlite3_column_int64(st, 1),
			    "table", sqlite3_column_text(st, 2),
			    "id", sqlite3_column_text(st, 3),
			    "column", col != NULL ? json_string(col) :
			    json_null(),
			    "reason", reason_name(r),
			    "state", sqlite3_column_text(st, 6),
			    "since_ms", (json_int_t)since));
			continue;
		}
		fprintf(out, "%s\t%lld\t%s\t%s\t%s\t%s\t%s\t%lld\n",
		    sqlite3_column_text(st, 0),
		    (long long)sqlite3_column_int64(st, 1),
		    sqlite3_column_text(st, 2), sqlite3_column_text(st, 3),
		    col != NULL ? col : "-", reason_name(r),
		    sqlite3_column_text(st, 6), (long long)since);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		json_decref(a);
		return -1;
	}
	if (a != NULL) {
		json_dumpf(a, out, JSON_COMPACT);
		fputc('\n', out);
		json_decref(a);
	}
	return 0;
}

/*
 * Give up the kept parts of change origin/seq on this node: the node then
 * lacks what the others hold, and its checksum shows it. -1 on error,
 * else how many parts went.
 */
int
aside_discard(struct store *s, const char *origin, uint64_t seq)
{
	sqlite3_stmt	*st;
	int		 n = 0, rc;

	if (sqlite3_prepare_v2(s->db, "DELETE FROM labsync_aside WHERE"
	    " origin = ? AND seq = ? RETURNING tbl, pk, col, reason", -1, &st,
	    NULL) != SQLITE_OK) {
		log_warnx("sqlite: %s", sqlite3_errmsg(s->db));
		return -1;
	}
	sqlite3_bind_text(st, 1, origin, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)seq);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *col = (const char *)sqlite3_column_text(st, 2);

		log_warnx("discarded kept change %s #%" PRIu64 " of %s, id %s"
		    "%s%s (%s): this node now differs from its peers",
		    origin, seq, sqlite3_column_text(st, 0),
		    sqlite3_column_text(st, 1), col != NULL ? ", column " : "",
		    col != NULL ? col : "",
		    reason_name(sqlite3_column_int(st, 3)));
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_warnx("sqlite: %s", sqlite3_errmsg(s->db));
		return -1;
	}
	return n;
}
