/*
 * store_merge.c: remote changes into the store. (Local writes are
 * stamped by the capture triggers: capture.c.) The daemon's connection
 * applies with triggers off; one with triggers on sets
 * labsync_state.applying inside the transaction, so they stay quiet.
 *
 * Merge: per column last-writer-wins on (hlc, origin); see README.md,
 * "Merge rules". Per row, labsync_row keeps the newest upsert (r_*), the
 * newest delete (d_*) and each column's clock, as text that the triggers
 * can write too: 16 hex digits of HLC and 8 of origin id per column.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "clock.h"
#include "log.h"
#include "store_private.h"
#include "wire.h"

/* --- merge metadata ---------------------------------------------------- */

#define CLOCK_TEXT	24	/* characters of one column's clock */

/* n hex digits (the triggers write lower case) */
static uint64_t
store_hex(const char *p, int n)
{
	uint64_t	 v = 0;

	for (int i = 0; i < n; i++) {
		char c = p[i];

		v = v << 4 | (uint64_t)(c >= 'a' ? c - 'a' + 10 :
		    c >= 'A' ? c - 'A' + 10 : c - '0');
	}
	return v;
}

static int
store_row_load(struct store *s, const struct table *t, const char *pk,
    struct row_meta *m)
{
	int	 rc;

	memset(m, 0, sizeof(*m));
	sqlite3_bind_text(s->st_row_get, 1, t->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s->st_row_get, 2, pk, -1, SQLITE_STATIC);
	rc = sqlite3_step(s->st_row_get);
	if (rc == SQLITE_ROW) {
		const char *b = (const char *)
		    sqlite3_column_text(s->st_row_get, 4);
		int n = sqlite3_column_bytes(s->st_row_get, 4) / CLOCK_TEXT;

		m->exists = 1;
		m->r.hlc = sqlite3_column_int64(s->st_row_get, 0);
		m->r.origin = sqlite3_column_int64(s->st_row_get, 1);
		m->d.hlc = sqlite3_column_int64(s->st_row_get, 2);
		m->d.origin = sqlite3_column_int64(s->st_row_get, 3);
		/* NULL clocks: every column was written by the newest upsert;
		   columns added since have none */
		for (int i = 0; i < t->ncols; i++)
			m->cols[i] = b == NULL ? m->r : (struct col_clock){0, 0};
		for (int i = 0; b != NULL && i < n && i < t->ncols; i++) {
			m->cols[i].hlc = store_hex(b + i * CLOCK_TEXT, 16);
			m->cols[i].origin = (int64_t)store_hex(b + i *
			    CLOCK_TEXT + 16, 8);
		}
	}
	sqlite3_reset(s->st_row_get);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/* v as n lower-case hex digits, the way the triggers' printf writes it */
static void
store_put_hex(char *p, uint64_t v, int n)
{
	static const char digits[] = "0123456789abcdef";

	while (n-- > 0) {
		p[n] = digits[v & 0xf];
		v >>= 4;
	}
}

static int
store_row_save(struct store *s, const struct table *t, const char *pk,
    const struct row_meta *m)
{
	sqlite3_stmt	*st = m->exists ? s->st_row_upd : s->st_row_put;
	char		 b[STORE_MAX_COLUMNS * CLOCK_TEXT];
	int		 same = 1;

	/* row_load just told whether it exists: no upsert needed */
	for (int i = 0; i < t->ncols && same; i++)
		same = m->cols[i].hlc == m->r.hlc &&
		    m->cols[i].origin == m->r.origin;
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, pk, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (int64_t)m->r.hlc);
	sqlite3_bind_int64(st, 4, m->r.origin);
	sqlite3_bind_int64(st, 5, (int64_t)m->d.hlc);
	sqlite3_bind_int64(st, 6, m->d.origin);
	/* spelt out only when the columns' clocks differ (rare) */
	if (same) {
		sqlite3_bind_null(st, 7);
	} else {
		for (int i = 0; i < t->ncols; i++) {
			store_put_hex(b + i * CLOCK_TEXT, m->cols[i].hlc, 16);
			store_put_hex(b + i * CLOCK_TEXT + 16,
			    (uint32_t)m->cols[i].origin, 8);
		}
		sqlite3_bind_text(st, 7, b, t->ncols * CLOCK_TEXT,
		    SQLITE_STATIC);
	}
	return store_step_done(s, st);
}

/* INSERT ... ON CONFLICT DO UPDATE for the columns in mask, cached. */
static sqlite3_stmt *
store_upsert_stmt(struct store *s, struct table *t, uint64_t mask)
{
	struct upsert_stmt	*u;
	char			*cols, *vals, *sets, *sql, *tmp;
	int			 n = 1;

	for (int i = 0; i < t->nupserts; i++)
		if (t->upserts[i].mask == mask)
			return t->upserts[i].stmt;
	cols = sqlite3_mprintf("\"%w\"", t->pk);
	vals = sqlite3_mprintf("?1");
	sets = sqlite3_mprintf("");
	for (int i = 0; i < t->ncols; i++) {
		if (!(mask & (1ULL << i)))
			continue;
		n++;
		tmp = sqlite3_mprintf("%s, \"%w\"", cols, t->cols[i].name);
		sqlite3_free(cols);
		cols = tmp;
		tmp = sqlite3_mprintf("%s, ?%d", vals, n);
		sqlite3_free(vals);
		vals = tmp;
		tmp = sqlite3_mprintf("%s%s\"%w\" = excluded.\"%w\"", sets,
		    n > 2 ? ", " : "", t->cols[i].name, t->cols[i].name);
		sqlite3_free(sets);
		sets = tmp;
	}
	if (n == 1)
		sql = sqlite3_mprintf("INSERT INTO \"%w\"(%s) VALUES (%s) "
		    "ON CONFLICT DO NOTHING", t->name, cols, vals);
	else
		sql = sqlite3_mprintf("INSERT INTO \"%w\"(%s) VALUES (%s) "
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

static void
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

/* Write the given values (NULL value: SQL NULL) of the columns in mask. */
static int
store_row_write(struct store *s, struct table *t, const char *pk,
    uint64_t mask, const Labsync__Value *const *vals)
{
	sqlite3_stmt	*st;
	int		 n = 1;

	if ((st = store_upsert_stmt(s, t, mask)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, pk, -1, SQLITE_STATIC);
	for (int i = 0; i < t->ncols; i++)
		if (mask & (1ULL << i))
			store_bind_value(st, ++n, vals[i]);
	return store_step_done(s, st);
}

static int
store_log_append(struct store *s, struct origin *o, Labsync__Change *c,
    const ProtobufCBinaryData *raw, int relay)
{
	uint8_t		 stackbuf[4096], *buf = stackbuf;
	size_t		 len;
	int		 ret = -1;

	if (raw != NULL && raw->data != NULL) {
		buf = raw->data;	/* as the origin packed it */
		len = raw->len;
	} else {
		len = labsync__change__get_packed_size(c);
		if (len > sizeof(stackbuf) && (buf = malloc(len)) == NULL)
			return -1;
		labsync__change__pack(c, buf);
	}
	sqlite3_bind_int64(s->st_log_put, 1,
	    (int64_t)((uint64_t)o->id << ORIGIN_SHIFT | c->seq));
	sqlite3_bind_int64(s->st_log_put, 2, (int64_t)c->hlc);
	sqlite3_bind_blob(s->st_log_put, 3, buf, (int)len, SQLITE_STATIC);
	if (store_step_done(s, s->st_log_put) == 0 &&
	    (!relay || store_outbox_add(s, o->id, buf, len) == 0))
		ret = 0;
	if (buf != stackbuf && (raw == NULL || buf != raw->data))
		free(buf);
	return ret;
}

/*
 * The merge. An upsert sets a column if its (hlc, origin) beats both the
 * column's clock and the row's newest delete. A delete at D wins over
 * every write older than D: if no upsert newer than D exists the row goes,
 * otherwise the columns written before D become NULL. The result depends
 * only on the set of changes, not on their order.
 */
static int
store_merge(struct store *s, struct table *t, struct origin *o,
    const Labsync__Change *c)
{
	const Labsync__Value	*vals[STORE_MAX_COLUMNS];
	struct row_meta		 m;
	struct col_clock	 now = { c->hlc, o->id };
	uint64_t		 mask = 0;
	int			 hint = -1;

	/* a change of every column is usually of a row new here: its clocks
	   go in first, sparing the lookup, and only a row known already
	   (they were there) takes the whole merge below */
	if (c->op != LABSYNC__OP__OP_DELETE &&
	    c->n_columns == (size_t)t->ncols) {
		for (size_t j = 0; j < c->n_columns; j++) {
			int i = store_column_find(t, c->columns[j]->name,
			    hint + 1);

			if ((hint = i) < 0)
				break;
			mask |= 1ULL << i;
			vals[i] = c->columns[j]->value;
		}
		if (mask == (t->ncols == 64 ? ~0ULL : (1ULL << t->ncols) - 1)) {
			memset(&m, 0, sizeof(m));
			m.r = now;
			for (int i = 0; i < t->ncols; i++)
				m.cols[i] = now;
			if (store_row_save(s, t, c->pk, &m) == -1)
				return -1;
			if (sqlite3_changes(s->db) == 1)
				return store_row_write(s, t, c->pk, mask, vals);
		}
		mask = 0;
		hint = -1;
	}
	if (store_row_load(s, t, c->pk, &m) == -1)
		return -1;
	if (c->op == LABSYNC__OP__OP_DELETE) {
		if (store_clock_cmp(s, now.hlc, now.origin, m.d.hlc,
		    m.d.origin) <= 0)
			return 0;	/* an older delete: nothing changes */
		m.d = now;
		if (store_clock_cmp(s, m.r.hlc, m.r.origin, m.d.hlc,
		    m.d.origin) < 0) {
			sqlite3_bind_text(t->delete_row, 1, c->pk, -1,
			    SQLITE_STATIC);
			if (store_step_done(s, t->delete_row) == -1)
				return -1;
		} else {
			for (int i = 0; i < t->ncols; i++) {
				if (store_clock_cmp(s, m.cols[i].hlc,
				    m.cols[i].origin, m.d.hlc, m.d.origin) < 0) {
					mask |= 1ULL << i;
					vals[i] = NULL;
				}
			}
			if (mask != 0 &&
			    store_row_write(s, t, c->pk, mask, vals) == -1)
				return -1;
		}
		return store_row_save(s, t, c->pk, &m);
	}

	if (store_clock_cmp(s, now.hlc, now.origin, m.d.hlc, m.d.origin) <= 0)
		return 0;	/* deleted later: nothing changes */
	if (!m.exists) {
		for (int i = 0; i < t->ncols; i++)
			m.cols[i] = (struct col_clock){ 0, 0 };
	}
	for (size_t j = 0; j < c->n_columns; j++) {
		/* validated: every column exists */
		int i = store_column_find(t, c->columns[j]->name,
		    j > 0 ? hint + 1 : 0);

		hint = i;
		if (i < 0 || store_clock_cmp(s, now.hlc, now.origin,
		    m.cols[i].hlc, m.cols[i].origin) <= 0)
			continue;
		mask |= 1ULL << i;
		vals[i] = c->columns[j]->value;
		m.cols[i] = now;
	}
	if (store_clock_cmp(s, now.hlc, now.origin, m.r.hlc, m.r.origin) > 0)
		m.r = now;
	/* also creates the row when it is absent (a revive, or first seen) */
	if (store_row_write(s, t, c->pk, mask, vals) == -1)
		return -1;
	return store_row_save(s, t, c->pk, &m);
}

static int
store_value_fits(enum affinity aff, const Labsync__Value *v)
{
	switch (v->kind_case) {
	case LABSYNC__VALUE__KIND_NULL:
		return 1;
	case LABSYNC__VALUE__KIND_INTEGER:
		return aff != AFF_TEXT;
	case LABSYNC__VALUE__KIND_REAL:
		return aff == AFF_REAL || aff == AFF_NUMERIC || aff == AFF_BLOB;
	case LABSYNC__VALUE__KIND_TEXT:
		return (aff == AFF_TEXT || aff == AFF_BLOB) &&
		    strlen(v->text) <= STORE_MAX_VALUE;
	case LABSYNC__VALUE__KIND_BLOB:
		return aff == AFF_BLOB && v->blob.len <= STORE_MAX_VALUE;
	default:
		return 0;
	}
}

static const char *
store_affinity_name(enum affinity aff)
{
	static const char *const names[] = { "INTEGER", "REAL", "TEXT", "BLOB",
	    "NUMERIC" };

	return names[aff];
}

int
store_validate(struct store *s, const Labsync__Change *c, int allow_own,
    char *why, size_t whylen)
{
	struct table	*t;
	uint64_t	 seen = 0;
	int		 i = -1;	/* the last column found */

	if (c->origin == NULL || c->origin[0] == '\0' ||
	    strlen(c->origin) > 32) {
		store_seterr(why, whylen, "bad origin");
		return -1;
	}
	for (const char *p = c->origin; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '_' || *p == '-')) {
			store_seterr(why, whylen, "bad origin");
			return -1;
		}
	if (!allow_own && strcmp(c->origin, s->node_id) == 0) {
		store_seterr(why, whylen, "change claims to originate from "
		    "this node (%s)", s->node_id);
		return -1;
	}
	if (store_origin_find(s, c->origin) == NULL &&
	    s->norigins >= STORE_MAX_ORIGINS) {
		store_seterr(why, whylen, "too many origins (%d): %s refused",
		    STORE_MAX_ORIGINS, c->origin);
		return -1;
	}
	if (c->seq == 0 || c->seq >= (1ULL << ORIGIN_SHIFT)) {
		store_seterr(why, whylen, "sequence %" PRIu64 " out of range",
		    c->seq);
		return -1;
	}
	if (c->hlc == 0 || c->hlc >= (1ULL << 63)) {
		store_seterr(why, whylen, "bad hlc");
		return -1;
	}
	if (c->table == NULL || (t = store_table_find(s, c->table)) == NULL) {
		store_seterr(why, whylen, "unknown table '%.64s'",
		    c->table != NULL ? c->table : "");
		return -1;
	}
	if (c->pk == NULL || c->pk[0] == '\0' ||
	    strlen(c->pk) > STORE_MAX_PK) {
		store_seterr(why, whylen, "bad primary key for %s", t->name);
		return -1;
	}
	if (c->op != LABSYNC__OP__OP_UPSERT && c->op != LABSYNC__OP__OP_DELETE) {
		store_seterr(why, whylen, "unknown operation %d", (int)c->op);
		return -1;
	}
	if (c->op == LABSYNC__OP__OP_DELETE && c->n_columns != 0) {
		store_seterr(why, whylen, "delete with columns");
		return -1;
	}
	for (size_t j = 0; j < c->n_columns; j++) {
		const Labsync__Column *col = c->columns[j];

		if (col->name == NULL ||
		    (i = store_column_find(t, col->name, i + 1)) < 0) {
			store_seterr(why, whylen, "unknown column %s.%.64s",
			    t->name, col->name != NULL ? col->name : "");
			return -1;
		}
		if (seen & (1ULL << i)) {
			store_seterr(why, whylen, "column %s.%s twice",
			    t->name, col->name);
			return -1;
		}
		seen |= 1ULL << i;
		if (col->value == NULL ||
		    !store_value_fits(t->cols[i].aff, col->value)) {
			store_seterr(why, whylen, "wrong type for %s.%s "
			    "(%s)", t->name, col->name,
			    store_affinity_name(t->cols[i].aff));
			return -1;
		}
	}
	return 0;
}

int
store_apply(struct store *s, Labsync__Change *const *changes, size_t n,
    int catchup, struct store_apply_stats *st)
{
	return store_apply_raw(s, changes, NULL, n, catchup, st);
}

int
store_apply_raw(struct store *s, Labsync__Change *const *changes,
    const ProtobufCBinaryData *raw, size_t n, int catchup,
    struct store_apply_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (store_apply_begin(s) == -1)
		return -1;
	if (store_apply_more(s, changes, raw, n, catchup, st) == -1) {
		store_apply_end(s, 0);
		memset(st, 0, sizeof(*st));
		return -1;
	}
	if (store_apply_end(s, 1) == -1) {
		memset(st, 0, sizeof(*st));
		return -1;
	}
	return 0;
}

/* Open the transaction remote changes are applied in. */
int
store_apply_begin(struct store *s)
{
	store_settle(s);
	s->apply_mark = s->noutbox;
	store_checkpointer_bound(s);
	if (store_begin(s) == -1)
		return -1;
	/* with triggers on (not the daemon's connection), their WHEN
	   clauses keep them quiet meanwhile */
	if (!s->capture_off) {
		sqlite3_bind_int(s->st_applying, 1, 1);
		if (store_step_done(s, s->st_applying) == -1)
			goto fail;
	}
	return 0;
fail:
	log_warnx("apply failed, rolled back: %s", sqlite3_errmsg(s->db));
	store_rollback(s, s->apply_mark);
	return -1;
}

/* Apply changes inside store_apply_begin's transaction; adds to *st. */
int
store_apply_more(struct store *s, Labsync__Change *const *changes,
    const ProtobufCBinaryData *raw, size_t n, int catchup,
    struct store_apply_stats *st)
{
	uint64_t	 limit = clock_physical_ms(s->clock) + s->max_skew_ms;
	int		 relay = !s->no_relay && !catchup;

	for (size_t i = 0; i < n; i++) {
		Labsync__Change *c = changes[i];
		struct origin *o;
		struct table *t = store_table_find(s, c->table);

		if (t == NULL)
			return -1;	/* validated: cannot happen */
		if (!catchup && strcmp(c->origin, s->node_id) == 0)
			return -1;
		if ((o = store_origin_get(s, c->origin)) == NULL)
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
		if (store_merge(s, t, o, c) == -1 ||
		    store_log_append(s, o, c, raw != NULL ? &raw[i] : NULL,
		    relay) == -1)
			return -1;
		o->seq = c->seq;
		st->applied++;
		if (o == s->self) {
			st->own++;
			s->published = c->seq;	/* relayed: not again */
		}
	}
	return 0;
}

/* Commit (or with commit 0, roll back) store_apply_begin's transaction. */
int
store_apply_end(struct store *s, int commit)
{
	if (commit) {
		sqlite3_bind_int(s->st_applying, 1, 0);
		if ((s->capture_off ||
		    store_step_done(s, s->st_applying) == 0) &&
		    store_commit(s) == 0) {
			s->held = NULL;
			return 0;
		}
	}
	/* SQLite's last error, also when store_apply_more failed */
	log_warnx("apply failed, rolled back: %s", sqlite3_errmsg(s->db));
	store_rollback(s, s->apply_mark);
	return -1;
}

void
store_apply_abort(struct store *s)
{
	store_rollback(s, s->apply_mark);
}
