/*
 * changelog.c: the change log (labsync_log), one row per change of any
 * origin, keyed by origin and sequence. Its value columns grow with the
 * widest synced table; local changes are written by the capture triggers
 * (capture.c), applied ones by changelog_append. Read back, an entry is
 * packed as a change: our own new ones into the outbox, a peer's missing
 * ones for catch-up.
 *
 * The log keeps a change as its columns, local or applied (SQL cannot
 * pack protobuf, and packed changes repeat every column's name); it is
 * packed when it is read.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <sqlite3.h>

#include "clock.h"
#include "log.h"
#include "store.h"
#include "wire.h"

#include "store_private.h"

/* A log entry's packed change; stack holds most. */
struct changelog_bytes {
	const uint8_t	*data;
	size_t		 len;
	uint8_t		*heap;
	uint8_t		 stack[4096];
};

Labsync__Value *
changelog_value(sqlite3_stmt *st, int col, Labsync__Value *v)
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
 * A pseudonymised column's value as it is sent: the hex HMAC-SHA-256,
 * under the node's pseudonym key, of its bytes (text, blob) or of its
 * text form (integer, real: as SQLite writes them); NULL stays NULL.
 */
void
changelog_pseudonym(struct store *s, sqlite3_stmt *st, int col,
    Labsync__Value *v, char hex[2 * 32 + 1])
{
	uint8_t		 mac[crypto_auth_hmacsha256_BYTES];
	const uint8_t	*p;

	_Static_assert(crypto_auth_hmacsha256_BYTES == 32, "HMAC size");
	int		 len;

	if (v->kind_case == LABSYNC__VALUE__KIND_NULL)
		return;
	if (v->kind_case == LABSYNC__VALUE__KIND_BLOB) {
		p = v->blob.data;
		len = (int)v->blob.len;
	} else {
		p = sqlite3_column_text(st, col);
		len = sqlite3_column_bytes(st, col);
	}
	crypto_auth_hmacsha256(mac, p != NULL ? p : (const uint8_t *)"",
	    (unsigned long long)len, s->pseudonym_key);
	sodium_bin2hex(hex, 2 * sizeof(mac) + 1, mac, sizeof(mac));
	sodium_memzero(mac, sizeof(mac));
	labsync__value__init(v);
	v->kind_case = LABSYNC__VALUE__KIND_TEXT;
	v->text = hex;
}

/*
 * The packed change of the log row st is on (st_log_range's columns):
 * the bytes as received, or a local change packed from its columns.
 * Sets *o to its origin; release lb with changelog_bytes_free.
 */
static int
changelog_bytes(struct store *s, sqlite3_stmt *st, struct origin **o,
    struct changelog_bytes *lb)
{
	Labsync__Change	 c = LABSYNC__CHANGE__INIT;
	Labsync__Column	 cols[STORE_MAX_COLUMNS], *colp[STORE_MAX_COLUMNS];
	Labsync__Value	 vals[STORE_MAX_COLUMNS];
	char		 hex[STORE_MAX_COLUMNS][2 * crypto_auth_hmacsha256_BYTES
			    + 1];
	const struct table *t;
	uint64_t	 key = (uint64_t)sqlite3_column_int64(st, LOG_KEY);
	uint64_t	 mask;
	size_t		 len, bound;

	lb->heap = NULL;
	if ((*o = vector_origin_byid(s, (int64_t)(key >> ORIGIN_SHIFT))) ==
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
	switch (sqlite3_column_int(st, LOG_OP)) {
	case 1:
		c.op = LABSYNC__OP__OP_DELETE;
		break;
	case 2:		/* kept packed (erase.c): not expected here */
		c.op = LABSYNC__OP__OP_ERASE;
		break;
	default:
		c.op = LABSYNC__OP__OP_UPSERT;
		break;
	}
	mask = (uint64_t)sqlite3_column_int64(st, LOG_MASK);
	if (c.table == NULL || c.pk == NULL) {
		log_warnx("change log: entry %s:%" PRIu64 " has no table or "
		    "key", c.origin, c.seq);
		return -1;
	}
	if ((t = schema_table_find(s, c.table)) == NULL && mask != 0)
		log_warnx("change log: %s:%" PRIu64 " is of table %s, which "
		    "is no longer synced: sent without its columns", c.origin,
		    c.seq, c.table);
	/* at most a tag and a 10-byte varint per field beside its bytes */
	bound = 6 * 11 + strlen(c.origin) + strlen(c.table) + strlen(c.pk);
	c.columns = colp;
	for (int i = 0; t != NULL && c.op == LABSYNC__OP__OP_UPSERT &&
	    i < t->ncols; i++) {
		/* a column local now is not sent, even if it was logged */
		if (!(mask & (1ULL << i)) || t->cols[i].local)
			continue;
		/* never the value itself (a city has its key: config.c) */
		if (t->cols[i].pseudonymise && *o == s->self &&
		    !s->pseudonym_keyed)
			continue;
		labsync__column__init(&cols[c.n_columns]);
		cols[c.n_columns].name = t->cols[i].name;
		cols[c.n_columns].value = changelog_value(st,
		    LOG_V0 + i, &vals[i]);
		/* ours only: others' arrive pseudonymised already */
		if (t->cols[i].pseudonymise && *o == s->self)
			changelog_pseudonym(s, st, LOG_V0 + i, &vals[i],
			    hex[i]);
		colp[c.n_columns] = &cols[c.n_columns];
		c.n_columns++;
		bound += 5 * 11 + strlen(t->cols[i].name);
		if (vals[i].kind_case == LABSYNC__VALUE__KIND_TEXT)
			bound += strlen(vals[i].text);
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

static void
changelog_bytes_free(struct changelog_bytes *lb)
{
	free(lb->heap);
	lb->heap = NULL;
}

/* How many value columns (v0, v1, ...) the log has. */
static int
changelog_width(struct store *s)
{
	int64_t	 n = store_pragma_int(s, "SELECT count(*) FROM"
	    " pragma_table_info('labsync_log') WHERE name GLOB 'v[0-9]*'");

	return n > 0 ? (int)n : 0;
}

/* Value columns for the widest synced table, before triggers use them. */
int
changelog_widen(struct store *s)
{
	for (int i = changelog_width(s); i < schema_widest(s); i++) {
		char	*sql = store_sql("ALTER TABLE labsync_log "
		    "ADD COLUMN v%d", i);
		int	 ret = store_exec(s, sql);

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
int
changelog_prepare(struct store *s)
{
	char	*sql, *cols = NULL, *args = NULL;
	int	 ncols = schema_widest(s), have = changelog_width(s), ret;

	s->log_width = ncols < have ? ncols : have;
	cols = store_append(cols, "%s", "");
	args = store_append(args, "%s", "");
	for (int i = 0; i < s->log_width; i++) {
		cols = store_append(cols, ", v%d", i);
		args = store_append(args, ", ?");
	}
	sql = store_sql("SELECT key, hlc, body, tbl, pk, op, mask%s"
	    " FROM labsync_log WHERE key > ? AND key <= ? ORDER BY key"
	    " LIMIT ?", cols);
	ret = store_prepare(s, &s->st_log_range, sql);
	sqlite3_free(sql);
	sql = store_sql("INSERT INTO labsync_log(key, hlc, body, tbl,"
	    " pk, op, mask%s, at) VALUES (?, ?, ?, ?, ?, ?, ?%s, ?)", cols,
	    args);
	if (ret == 0)
		ret = store_prepare(s, &s->st_log_put, sql);
	if (ret == 0 && s->st_at_get == NULL)
		ret = store_prepare(s, &s->st_at_get, "SELECT at FROM "
		    "labsync_state");
	if (ret == 0 && s->st_at_put == NULL)
		ret = store_prepare(s, &s->st_at_put, "UPDATE labsync_state "
		    "SET at = max(at, ?)");
	sqlite3_free(cols);
	sqlite3_free(args);
	sqlite3_free(sql);
	return ret;
}

/*
 * Read the changes a peer with vector have lacks, origin by origin in
 * sequence order, packed, to cb.
 */
int
changelog_read_missing(struct store *s, const Labsync__Vector *have,
    size_t max_changes, size_t max_bytes, store_change_cb cb, void *arg,
    int *more)
{
	size_t	 count = 0, bytes = 0;
	int	 rc;

	*more = 0;
	for (size_t i = 0; i < s->norigins; i++) {
		struct origin *o = &s->origins[i];
		uint64_t from = vector_entry_seq(have, o->name);
		uint64_t base = (uint64_t)o->id << ORIGIN_SHIFT;
		uint64_t got = 0;

		if (o->committed <= from)
			continue;
		/* compacted away: a range from here would have a gap, which
		   the asker would drop anyway; it needs a snapshot */
		if (from < o->floor) {
			if (!o->floor_said)
				log_warnx("catch-up: a peer holds %s up to "
				    "%llu, our log keeps it from %llu only "
				    "(compacted): not sent", o->name,
				    (unsigned long long)from,
				    (unsigned long long)o->floor + 1);
			o->floor_said = 1;
			continue;
		}
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
			struct changelog_bytes lb;
			struct origin *lo;
			int fail;

			if (changelog_bytes(s, s->st_log_range, &lo, &lb) == -1) {
				sqlite3_reset(s->st_log_range);
				return -1;
			}
			if (count > 0 && bytes + lb.len > max_bytes) {
				changelog_bytes_free(&lb);
				break;
			}
			fail = cb(arg, o->name, lb.data, lb.len) == -1;
			bytes += lb.len;
			changelog_bytes_free(&lb);
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

/* The HLC of our own change seq; 0 if the log lacks it. */
uint64_t
changelog_own_hlc(struct store *s, uint64_t seq)
{
	char	*sql;
	int64_t	 v;

	if (s->self == NULL || seq == 0 || seq > ORIGIN_SEQ_MAX)
		return 0;
	sql = store_sql("SELECT coalesce((SELECT hlc FROM labsync_log WHERE"
	    " key = %lld), 0)", (long long)((uint64_t)s->self->id <<
	    ORIGIN_SHIFT | seq));
	v = store_pragma_int(s, sql);
	sqlite3_free(sql);
	return v > 0 ? (uint64_t)v : 0;
}

/*
 * Entries the log holds: of each origin, those above its floor (the log
 * holds an origin's entries from floor + 1 to its sequence, no gap).
 */
int64_t
changelog_count(struct store *s)
{
	int64_t	 n = 0;

	for (size_t i = 0; i < s->norigins; i++)
		if (s->origins[i].seq > s->origins[i].floor)
			n += (int64_t)(s->origins[i].seq -
			    s->origins[i].floor);
	return n;
}

/* The log lacks origin's entries up to this sequence (compacted). */
uint64_t
changelog_floor(struct store *s, const char *origin)
{
	struct origin	*o = vector_origin_find(s, origin);

	return o != NULL ? o->floor : 0;
}

/*
 * Bytes the log and its index take: dbstat's sum of their pages if this
 * SQLite has it, else the live pages of the whole database (an upper
 * bound). dbstat walks every page: above CHANGELOG_MEASURE_MAX entries
 * (a peer away for long) the bytes per entry last measured stand in, so
 * that status and /metrics stay cheap.
 */
int64_t
changelog_bytes_used(struct store *s)
{
	int64_t	 entries = changelog_count(s), n;

	if (entries > CHANGELOG_MEASURE_MAX && s->log_entry_bytes > 0)
		return entries * s->log_entry_bytes;
	n = store_pragma_int(s, "SELECT sum(pgsize) FROM dbstat"
	    " WHERE name IN ('labsync_log', 'labsync_log_at') AND"
	    " aggregate = 1");
	if (n >= 0 && entries > 0)
		s->log_entry_bytes = n / entries > 0 ? n / entries : 1;
	if (n < 0)
		n = store_pragma_int(s, "SELECT (p.page_count -"
		    " f.freelist_count) * z.page_size FROM pragma_page_count()"
		    " AS p, pragma_freelist_count() AS f, pragma_page_size()"
		    " AS z");
	return n;
}

/*
 * Our own changes committed since the last call (the triggers wrote them
 * to the log), up to max, into the outbox: a read, no transaction.
 */
int
changelog_take_local(struct store *s, int max, int *n)
{
	uint64_t	 base, seq;
	int		 rc, ret = 0, erased = 0;

	*n = 0;
	if (s->observer || s->hold_local || s->self == NULL)
		return 0;
	base = (uint64_t)s->self->id << ORIGIN_SHIFT;
	sqlite3_bind_int64(s->st_log_range, 1, (int64_t)(base | s->published));
	sqlite3_bind_int64(s->st_log_range, 2, (int64_t)(base | ORIGIN_SEQ_MAX));
	sqlite3_bind_int64(s->st_log_range, 3, max);
	while ((rc = sqlite3_step(s->st_log_range)) == SQLITE_ROW) {
		struct changelog_bytes lb;
		struct origin *o;

		seq = (uint64_t)sqlite3_column_int64(s->st_log_range, LOG_KEY) &
		    ORIGIN_SEQ_MAX;
		if (changelog_bytes(s, s->st_log_range, &o, &lb) == -1) {
			ret = -1;
			break;
		}
		if (outbox_add(s, o->id, lb.data, lb.len) == -1)
			ret = -1;
		changelog_bytes_free(&lb);
		if (ret == -1)
			break;
		clock_absorb(s->clock, (uint64_t)sqlite3_column_int64(
		    s->st_log_range, LOG_HLC));
		if (sqlite3_column_int(s->st_log_range, LOG_OP) == 2)
			erased = 1;
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
		checkpoint_nudge(s);
	/* a local erasure (erase_local) was committed: cut the WAL back */
	if (erased)
		checkpoint_truncate(s);
	return ret;
}

/* Local changes committed but not read into the outbox yet. */
int
changelog_pending(struct store *s)
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

/*
 * An applied change goes into the log as its values, as a local one does
 * (changelog_bytes packs it again when it is read): its column names, in
 * every packed change, made the entry twice the size of its row. One
 * that was kept aside in part (as_values 0) is kept packed, whole, as
 * received: relays and catch-up forward what this node could not apply.
 * So is an erasure: who asked and when have no columns in the log. The
 * relay sends the bytes as received.
 */
int
changelog_append(struct store *s, struct origin *o, Labsync__Change *c,
    int as_values, const ProtobufCBinaryData *raw, int relay)
{
	sqlite3_stmt	*st = s->st_log_put;
	struct table	*t = as_values && c->op != LABSYNC__OP__OP_ERASE ?
			    schema_table_find(s, c->table) : NULL;
	uint8_t		 stackbuf[4096], *buf = stackbuf;
	size_t		 len;
	uint64_t	 mask = 0;
	int		 del = c->op != LABSYNC__OP__OP_UPSERT, ret = -1, i = -1;

	if (raw != NULL && raw->data != NULL) {
		buf = raw->data;	/* as the origin packed it */
		len = raw->len;
	} else if (t != NULL && !relay) {
		len = 0;		/* not needed */
	} else {
		len = labsync__change__get_packed_size(c);
		if (len > sizeof(stackbuf) && (buf = malloc(len)) == NULL)
			return -1;
		labsync__change__pack(c, buf);
	}
	sqlite3_clear_bindings(st);
	sqlite3_bind_int64(st, 1,
	    (int64_t)((uint64_t)o->id << ORIGIN_SHIFT | c->seq));
	sqlite3_bind_int64(st, 2, (int64_t)c->hlc);
	sqlite3_bind_text(st, 4, c->table, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, c->pk, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, (int)c->op);	/* 0, 1 or 2 (an erasure) */
	if (t == NULL)
		sqlite3_bind_blob(st, 3, buf, (int)len, SQLITE_STATIC);
	for (size_t j = 0; t != NULL && !del && j < c->n_columns; j++) {
		i = schema_column_find(t, c->columns[j]->name, i + 1);
		if (i < 0 || i >= s->log_width)
			goto done;	/* merged: cannot be */
		mask |= 1ULL << i;
		store_bind_value(st, LOG_PUT_V0 + i, c->columns[j]->value);
	}
	sqlite3_bind_int64(st, 7, (int64_t)mask);
	/* its place in our commit order: the change feed's cursor */
	sqlite3_bind_int64(st, LOG_PUT_V0 + s->log_width, ++s->at);
	s->at_dirty = 1;
	if (store_step_done(s, st) == -1)
		goto done;
	ret = relay ? outbox_add(s, o->id, buf, len) : 0;
done:
	if (buf != stackbuf && (raw == NULL || buf != raw->data))
		free(buf);
	return ret;
}

/*
 * The apply transaction numbers the entries it logs (labsync_log.at)
 * after those already there: it reads the count when it begins, and
 * writes it back before it commits (no other writer can come between:
 * it holds the write lock).
 */
int
changelog_at_begin(struct store *s)
{
	int	 rc = sqlite3_step(s->st_at_get);

	s->at = rc == SQLITE_ROW ? sqlite3_column_int64(s->st_at_get, 0) : 0;
	s->at_dirty = 0;
	sqlite3_reset(s->st_at_get);
	return rc == SQLITE_ROW ? 0 : -1;
}

int
changelog_at_end(struct store *s)
{
	if (!s->at_dirty)
		return 0;
	s->at_dirty = 0;
	sqlite3_bind_int64(s->st_at_put, 1, s->at);
	return store_step_done(s, s->st_at_put);
}

/* Whether labsync_origin has origin id (this connection may not know it
   yet). */
static int
changelog_origin_held(struct store *s, int64_t id)
{
	char	*sql = store_sql("SELECT count(*) FROM labsync_origin WHERE"
	    " id = %lld", (long long)id);
	int64_t	 n = store_pragma_int(s, sql);

	sqlite3_free(sql);
	return n > 0;
}

/*
 * The change feed: the log's entries after cursor since in this node's
 * commit order (labsync_log.at), of table (NULL: every table), at most
 * limit, each packed as it is sent, to cb. The feed has no copy of its
 * own: compaction and erasure act on it as on the log.
 */
int
changelog_read_feed(struct store *s, int64_t since, const char *table,
    int limit, changelog_feed_cb cb, void *arg)
{
	sqlite3_stmt	*st = NULL;
	char		*sql, *cols = store_append(NULL, "%s", "");
	int		 rc, ret = -1, reloaded = 0;

	for (int i = 0; i < s->log_width; i++)
		cols = store_append(cols, ", v%d", i);
	sql = store_sql("SELECT key, hlc, body, tbl, pk, op, mask%s, at"
	    " FROM labsync_log WHERE at > ?1 AND (?2 IS NULL OR tbl = ?2)"
	    " ORDER BY at LIMIT ?3", cols);
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		log_warnx("sqlite: %s", sqlite3_errmsg(s->db));
		goto done;
	}
	sqlite3_bind_int64(st, 1, since);
	if (table != NULL)
		sqlite3_bind_text(st, 2, table, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct changelog_bytes lb;
		struct origin *o;
		int64_t id = sqlite3_column_int64(st, LOG_KEY) >> ORIGIN_SHIFT;
		int fail;

		/* an origin that came after this connection read them (a
		   long labsyncctl watch): read them again, in the snapshot
		   this read holds, which has it. Never inside a transaction,
		   whose origins in memory may be ahead of the database. */
		if (vector_origin_byid(s, id) == NULL && !reloaded &&
		    sqlite3_get_autocommit(s->db) &&
		    changelog_origin_held(s, id)) {
			reloaded = 1;
			if (vector_load(s) == -1)
				goto done;
		}
		/* said so; the feed goes on, past it (data NULL): a broken
		   entry last would hold the reader's cursor back for good */
		if (changelog_bytes(s, st, &o, &lb) == -1) {
			if (cb(arg, sqlite3_column_int64(st, LOG_V0 +
			    s->log_width), NULL, 0) == -1)
				goto done;
			continue;
		}
		fail = cb(arg, sqlite3_column_int64(st, LOG_V0 + s->log_width),
		    lb.data, lb.len) == -1;
		changelog_bytes_free(&lb);
		if (fail)
			goto done;
	}
	if (rc != SQLITE_DONE) {
		log_warnx("sqlite: %s", sqlite3_errmsg(s->db));
		goto done;
	}
	ret = 0;
done:
	sqlite3_finalize(st);
	sqlite3_free(sql);
	sqlite3_free(cols);
	return ret;
}

/* labsync_state's at (the newest cursor) or at_floor (the newest one
   compaction removed); -1 if the database fails. */
int64_t
changelog_feed_mark(struct store *s, int floor)
{
	return store_pragma_int(s, floor ? "SELECT at_floor FROM "
	    "labsync_state" : "SELECT at FROM labsync_state");
}
