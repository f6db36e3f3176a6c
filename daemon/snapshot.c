/*
 * snapshot.c: the state instead of the history, for a peer that lacks
 * changes our log no longer holds (labsync_origin.floor). A snapshot
 * reads the synced tables, their rows' clocks and the tombstones, and
 * the version vector, in one read transaction on a read-only connection
 * of its own: the daemon's connection keeps writing meanwhile, and what
 * the snapshot sends is as of one moment.
 *
 * Each row becomes one change per distinct column clock (an upsert of
 * the columns with that clock, with its origin and HLC; an upsert of no
 * column for a newest upsert no column kept the clock of), and one
 * delete for the row's newest delete; a tombstone (a key without its
 * row) is its delete. All have sequence 0. The receiver merges them by
 * the normal rule (merge_snapshot_more), which makes its rows and
 * clocks those of ours wherever ours are newer.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <sqlite3.h>

#include "log.h"
#include "store.h"
#include "wire.h"

#include "store_private.h"

/* Where a snapshot is: each table's rows, then its tombstones. */
enum snapshot_pass {
	SNAP_ROWS,
	SNAP_TOMBSTONES,
};

struct snap_origin {
	int64_t		 id;
	char		*name;
};

struct snapshot {
	struct store		*s;
	sqlite3			*db;		/* read-only, in its transaction */
	Labsync__Vector		*vector;	/* as of the transaction */
	struct snap_origin	*origins;
	size_t			 norigins;
	int64_t			 self;		/* our origin id */
	size_t			 table;		/* at s->tables[table] */
	enum snapshot_pass	 pass;
	int64_t			 after_rid;	/* keyset cursor: rowid ... */
	char			*after_pk;	/* ... or key ("" first) */
	sqlite3_stmt		*st;		/* of table and pass */
	sqlite3_stmt		*st_erased;	/* an erasure of a delete's
						   clock; NULL: none here */
	uint64_t		 total, sent;	/* rows and tombstones */
	uint64_t		 no_clocks;	/* rows without clocks: skipped */
	int			 done;
};

/* Columns of a snapshot statement before the table's values. */
enum { SNAP_R_HLC, SNAP_R_ORIGIN, SNAP_D_HLC, SNAP_D_ORIGIN, SNAP_CLOCKS,
    SNAP_CURSOR, SNAP_PK, SNAP_V0 };

static int64_t
snapshot_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt	*st;
	int64_t		 v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		log_warnx("snapshot: %s", sqlite3_errmsg(db));
		return -1;
	}
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	else
		log_warnx("snapshot: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return v;
}

/* Tombstones of t: keys with a delete and without their row. */
static char *
snapshot_tombstones_sql(const struct table *t, int count)
{
	return store_sql("SELECT %s FROM labsync_row AS k WHERE k.tbl = %Q"
	    " AND k.d_hlc > 0 %s AND NOT EXISTS (SELECT 1 FROM \"%w\" WHERE"
	    " \"%w\" = k.pk) %s", count ? "count(*)" :
	    "0, 0, k.d_hlc, k.d_origin, NULL, k.pk, k.pk",
	    t->name, count ? "" : "AND k.pk > ?1", t->name, t->pk,
	    count ? "" : "ORDER BY k.pk LIMIT ?2");
}

/* The origins, the vector and the rows to send, in the transaction. */
static int
snapshot_load(struct snapshot *sn)
{
	struct store	*s = sn->s;
	sqlite3_stmt	*st = NULL;
	int		 rc, ret = -1;

	if (sqlite3_prepare_v2(sn->db, "SELECT o.id, o.name, CASE o.id WHEN"
	    " st.self THEN max(o.seq, st.seq) ELSE o.seq END, st.self FROM"
	    " labsync_origin AS o, labsync_state AS st ORDER BY o.id", -1, &st,
	    NULL) != SQLITE_OK)
		goto done;
	if ((sn->vector = calloc(1, sizeof(*sn->vector))) == NULL)
		goto done;
	labsync__vector__init(sn->vector);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct snap_origin *o;
		Labsync__VectorEntry **ve, *e;
		uint64_t seq = (uint64_t)sqlite3_column_int64(st, 2);

		sn->self = sqlite3_column_int64(st, 3);
		/*
		 * Ours: as far as we have read our own changes (their
		 * writers commit before we read them). A peer whose vector
		 * held more of ours than we know of would think we lost
		 * them (a restore); the rows it gets may be newer, which
		 * their changes, coming again, do not undo.
		 */
		if (sqlite3_column_int64(st, 0) == sn->self &&
		    seq > vector_own_seq(s))
			seq = vector_own_seq(s);
		if ((o = reallocarray(sn->origins, sn->norigins + 1,
		    sizeof(*o))) == NULL)
			goto done;
		sn->origins = o;
		o = &sn->origins[sn->norigins];
		o->id = sqlite3_column_int64(st, 0);
		if ((o->name = strdup((const char *)sqlite3_column_text(st,
		    1))) == NULL)
			goto done;
		sn->norigins++;
		if (seq == 0)
			continue;
		if ((ve = reallocarray(sn->vector->entries,
		    sn->vector->n_entries + 1, sizeof(*ve))) == NULL)
			goto done;
		sn->vector->entries = ve;
		if ((e = calloc(1, sizeof(*e))) == NULL)
			goto done;
		labsync__vector_entry__init(e);
		ve[sn->vector->n_entries++] = e;
		if ((e->origin = strdup(o->name)) == NULL)
			goto done;
		e->seq = seq;
	}
	if (rc != SQLITE_DONE)
		goto done;
	/* erasures go as erasures, so the receiver audits them and keeps
	   no value an older change of the row brings later */
	if (snapshot_int(sn->db, "SELECT EXISTS (SELECT 1 FROM"
	    " labsync_erasure)") == 1 && sqlite3_prepare_v2(sn->db,
	    "SELECT seq, requested_by, asked_ms FROM labsync_erasure WHERE"
	    " tbl = ?1 AND pk = ?2 AND hlc = ?3 AND origin = ?4 LIMIT 1", -1,
	    &sn->st_erased, NULL) != SQLITE_OK)
		goto done;
	for (size_t i = 0; i < s->ntables; i++) {
		const struct table *t = &s->tables[i];
		char *sql = store_sql("SELECT count(*) FROM \"%w\"", t->name);
		int64_t n = snapshot_int(sn->db, sql);

		sqlite3_free(sql);
		if (n < 0)
			goto done;
		sn->total += (uint64_t)n;
		sql = snapshot_tombstones_sql(t, 1);
		n = snapshot_int(sn->db, sql);
		sqlite3_free(sql);
		if (n < 0)
			goto done;
		sn->total += (uint64_t)n;
	}
	ret = 0;
done:
	if (ret == -1)
		log_warnx("snapshot: reading the vector: %s",
		    sqlite3_errmsg(sn->db));
	sqlite3_finalize(st);
	return ret;
}

struct snapshot *
snapshot_open(struct store *s)
{
	struct snapshot	*sn;
	const char	*path = sqlite3_db_filename(s->db, "main");

	if ((sn = calloc(1, sizeof(*sn))) == NULL) {
		log_warn("snapshot");
		return NULL;
	}
	sn->s = s;
	if ((sn->after_pk = strdup("")) == NULL) {
		log_warn("snapshot");
		free(sn);
		return NULL;
	}
	if (path == NULL || sqlite3_open_v2(path, &sn->db,
	    SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		log_warnx("snapshot: opening %s read-only: %s", path ? path :
		    "the database", sn->db ? sqlite3_errmsg(sn->db) : "?");
		goto fail;
	}
	sqlite3_busy_timeout(sn->db, 5000);
	/* the transaction's first read fixes what it sees (WAL) */
	if (sqlite3_exec(sn->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
	    snapshot_load(sn) == -1)
		goto fail;
	return sn;
fail:
	snapshot_free(sn);
	return NULL;
}

void
snapshot_free(struct snapshot *sn)
{
	if (sn == NULL)
		return;
	sqlite3_finalize(sn->st);
	sqlite3_finalize(sn->st_erased);
	if (sn->db != NULL)
		sqlite3_close(sn->db);	/* ends the read transaction */
	vector_free(sn->vector);
	for (size_t i = 0; i < sn->norigins; i++)
		free(sn->origins[i].name);
	free(sn->origins);
	free(sn->after_pk);
	free(sn);
}

const Labsync__Vector *
snapshot_vector(const struct snapshot *sn)
{
	return sn->vector;
}

void
snapshot_progress(const struct snapshot *sn, uint64_t *sent, uint64_t *total)
{
	*sent = sn->sent;
	*total = sn->total > sn->sent ? sn->total : sn->sent;
}

static const char *
snapshot_origin_name(const struct snapshot *sn, int64_t id)
{
	for (size_t i = 0; i < sn->norigins; i++)
		if (sn->origins[i].id == id)
			return sn->origins[i].name;
	return NULL;
}

/* The statement of the table and pass at hand, bound to the cursor. */
static sqlite3_stmt *
snapshot_stmt(struct snapshot *sn, const struct table *t, int limit)
{
	char	*sql, *cols, *tmp;

	if (sn->st == NULL) {
		if (sn->pass == SNAP_TOMBSTONES)
			sql = snapshot_tombstones_sql(t, 0);
		else {
			cols = store_sql("%s", "");
			for (int i = 0; i < t->ncols; i++) {
				tmp = store_sql("%s, t.\"%w\"", cols,
				    t->cols[i].name);
				sqlite3_free(cols);
				cols = tmp;
			}
			/* clocks by rowid while a row has them there, by key
			   otherwise (see merge.c, merge_row_load) */
			if (t->rowid != NULL)
				sql = store_sql("SELECT"
				    " coalesce(e.r_hlc, k.r_hlc),"
				    " coalesce(e.r_origin, k.r_origin),"
				    " coalesce(e.d_hlc, k.d_hlc),"
				    " coalesce(e.d_origin, k.d_origin),"
				    " CASE WHEN e.tbl IS NULL THEN k.clocks"
				    " ELSE e.clocks END, t.%s, t.\"%w\"%s"
				    " FROM \"%w\" AS t LEFT JOIN labsync_rowid"
				    " AS e ON e.tbl = %Q AND e.rid = t.%s AND"
				    " e.pk = t.\"%w\" LEFT JOIN labsync_row"
				    " AS k ON e.tbl IS NULL AND k.tbl = %Q AND"
				    " k.pk = t.\"%w\" WHERE t.%s > ?1"
				    " ORDER BY t.%s LIMIT ?2", t->rowid,
				    t->pk, cols, t->name, t->name, t->rowid,
				    t->pk, t->name, t->pk, t->rowid, t->rowid);
			else
				sql = store_sql("SELECT k.r_hlc, k.r_origin,"
				    " k.d_hlc, k.d_origin, k.clocks, t.\"%w\","
				    " t.\"%w\"%s FROM \"%w\" AS t LEFT JOIN"
				    " labsync_row AS k ON k.tbl = %Q AND"
				    " k.pk = t.\"%w\" WHERE t.\"%w\" > ?1"
				    " ORDER BY t.\"%w\" LIMIT ?2", t->pk,
				    t->pk, cols, t->name, t->name, t->pk,
				    t->pk, t->pk);
			sqlite3_free(cols);
		}
		if (sqlite3_prepare_v2(sn->db, sql, -1, &sn->st, NULL) !=
		    SQLITE_OK) {
			log_warnx("snapshot of %s: %s", t->name,
			    sqlite3_errmsg(sn->db));
			sqlite3_free(sql);
			return NULL;
		}
		sqlite3_free(sql);
	}
	if (sn->pass == SNAP_ROWS && t->rowid != NULL)
		sqlite3_bind_int64(sn->st, 1, sn->after_rid);
	else
		sqlite3_bind_text(sn->st, 1, sn->after_pk, -1, SQLITE_STATIC);
	sqlite3_bind_int(sn->st, 2, limit);
	return sn->st;
}

/* On to the next pass or table. */
static void
snapshot_next_pass(struct snapshot *sn)
{
	sqlite3_finalize(sn->st);
	sn->st = NULL;
	sn->after_rid = 0;
	sn->after_pk[0] = '\0';
	if (sn->pass == SNAP_ROWS)
		sn->pass = SNAP_TOMBSTONES;
	else {
		sn->pass = SNAP_ROWS;
		sn->table++;
	}
}

/* Pack c and hand it to cb; *bytes grows by its size. */
static int
snapshot_emit(Labsync__Change *c, store_change_cb cb, void *arg,
    size_t *bytes)
{
	uint8_t		 stack[4096], *buf = stack;
	size_t		 len = labsync__change__get_packed_size(c);
	int		 ret;

	if (len > sizeof(stack) && (buf = malloc(len)) == NULL)
		return -1;
	labsync__change__pack(c, buf);
	ret = cb(arg, c->origin, buf, len);
	*bytes += len;
	if (buf != stack)
		free(buf);
	return ret;
}

/* A delete c that is an erasure becomes one, with its sequence and who
   asked (pointing into st_erased's row: reset it after use). */
static int
snapshot_erasure(struct snapshot *sn, Labsync__Change *c)
{
	sqlite3_stmt	*st = sn->st_erased;
	int		 rc;

	if (st == NULL)
		return 0;
	sqlite3_bind_text(st, 1, c->table, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, c->pk, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (int64_t)c->hlc);
	sqlite3_bind_text(st, 4, c->origin, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW) {
		log_warnx("snapshot: %s", sqlite3_errmsg(sn->db));
		return -1;
	}
	c->op = LABSYNC__OP__OP_ERASE;
	c->seq = (uint64_t)sqlite3_column_int64(st, 0);
	c->erased_by = UNCONST(sqlite3_column_text(st, 1));
	c->asked_ms = (uint64_t)sqlite3_column_int64(st, 2);
	return 0;
}

/*
 * The changes of the row st is on: an upsert per distinct column clock,
 * one of no column for a newest upsert that no column kept, and the
 * newest delete. *n counts them.
 */
static int
snapshot_row(struct snapshot *sn, const struct table *t, sqlite3_stmt *st,
    store_change_cb cb, void *arg, size_t *n, size_t *bytes)
{
	struct store	*s = sn->s;
	struct row_meta	 m;
	Labsync__Change	 c = LABSYNC__CHANGE__INIT;
	Labsync__Column	 cols[STORE_MAX_COLUMNS], *colp[STORE_MAX_COLUMNS];
	Labsync__Value	 vals[STORE_MAX_COLUMNS];
	char		 hex[STORE_MAX_COLUMNS][2 *
			    crypto_auth_hmacsha256_BYTES + 1];
	uint64_t	 done = 0;	/* columns sent */
	int		 r_sent = 0;

	memset(&m, 0, sizeof(m));
	merge_meta_read(st, t, &m);
	if (m.r.hlc == 0 && m.d.hlc == 0) {
		sn->no_clocks++;
		return 0;
	}
	c.table = t->name;
	c.pk = UNCONST(sqlite3_column_text(st, SNAP_PK));
	c.columns = colp;
	for (int i = 0; i < t->ncols; i++) {
		struct col_clock k = m.cols[i];

		if ((done & (1ULL << i)) || t->cols[i].local || k.hlc == 0)
			continue;
		c.op = LABSYNC__OP__OP_UPSERT;
		c.hlc = k.hlc;
		c.n_columns = 0;
		if ((c.origin = UNCONST(snapshot_origin_name(sn,
		    k.origin))) == NULL)
			continue;
		for (int j = i; j < t->ncols; j++) {
			if (t->cols[j].local || m.cols[j].hlc != k.hlc ||
			    m.cols[j].origin != k.origin)
				continue;
			done |= 1ULL << j;
			/* ours leave as HMACs (changelog.c), never bare */
			if (t->cols[j].pseudonymise && k.origin == sn->self &&
			    !s->pseudonym_keyed)
				continue;
			labsync__column__init(&cols[c.n_columns]);
			cols[c.n_columns].name = t->cols[j].name;
			cols[c.n_columns].value = changelog_value(st,
			    SNAP_V0 + j, &vals[j]);
			if (t->cols[j].pseudonymise && k.origin == sn->self)
				changelog_pseudonym(s, st, SNAP_V0 + j,
				    &vals[j], hex[j]);
			colp[c.n_columns] = &cols[c.n_columns];
			c.n_columns++;
		}
		if (k.hlc == m.r.hlc && k.origin == m.r.origin)
			r_sent = 1;
		if (snapshot_emit(&c, cb, arg, bytes) == -1)
			return -1;
		(*n)++;
	}
	c.n_columns = 0;
	if (!r_sent && m.r.hlc != 0 && (c.origin = UNCONST(
	    snapshot_origin_name(sn, m.r.origin))) != NULL) {
		c.op = LABSYNC__OP__OP_UPSERT;
		c.hlc = m.r.hlc;
		if (snapshot_emit(&c, cb, arg, bytes) == -1)
			return -1;
		(*n)++;
	}
	if (m.d.hlc != 0 && (c.origin = UNCONST(snapshot_origin_name(sn,
	    m.d.origin))) != NULL) {
		c.op = LABSYNC__OP__OP_DELETE;
		c.hlc = m.d.hlc;
		if (snapshot_erasure(sn, &c) == -1 ||
		    snapshot_emit(&c, cb, arg, bytes) == -1) {
			if (sn->st_erased != NULL)
				sqlite3_reset(sn->st_erased);
			return -1;
		}
		if (sn->st_erased != NULL)
			sqlite3_reset(sn->st_erased);
		(*n)++;
	}
	return 0;
}

/*
 * The next changes of the snapshot, whole rows, until max_changes or
 * about max_bytes; *more: whether rows are left.
 */
int
snapshot_read(struct snapshot *sn, size_t max_changes, size_t max_bytes,
    store_change_cb cb, void *arg, int *more)
{
	struct store	*s = sn->s;
	size_t		 n = 0, bytes = 0;
	int		 rc = SQLITE_DONE, rows, limit;

	while (sn->table < s->ntables && n < max_changes &&
	    bytes < max_bytes) {
		const struct table *t = &s->tables[sn->table];
		sqlite3_stmt *st;

		limit = (int)(max_changes - n);
		if ((st = snapshot_stmt(sn, t, limit)) == NULL)
			return -1;
		rows = 0;
		while (n < max_changes && bytes < max_bytes &&
		    (rc = sqlite3_step(st)) == SQLITE_ROW) {
			rows++;
			if (snapshot_row(sn, t, st, cb, arg, &n, &bytes) == -1) {
				sqlite3_reset(st);
				return -1;
			}
			sn->sent++;
			if (sn->pass == SNAP_ROWS && t->rowid != NULL)
				sn->after_rid = sqlite3_column_int64(st,
				    SNAP_CURSOR);
			else {
				char *pk = strdup((const char *)
				    sqlite3_column_text(st, SNAP_CURSOR));

				if (pk == NULL) {
					sqlite3_reset(st);
					return -1;
				}
				free(sn->after_pk);
				sn->after_pk = pk;
			}
		}
		if (n >= max_changes || bytes >= max_bytes) {
			sqlite3_reset(st);
			break;
		}
		if (rc != SQLITE_DONE) {
			log_warnx("snapshot of %s: %s", t->name,
			    sqlite3_errmsg(sn->db));
			sqlite3_reset(st);
			return -1;
		}
		sqlite3_reset(st);
		if (rows < limit)
			snapshot_next_pass(sn);
	}
	if (sn->table >= s->ntables && !sn->done) {
		sn->done = 1;
		if (sn->no_clocks > 0)
			log_warnx("snapshot: %" PRIu64 " rows without clocks "
			    "(written while their table was not synced) not "
			    "sent", sn->no_clocks);
	}
	*more = !sn->done;
	return 0;
}

/*
 * Whether a peer with vector v lacks changes our log no longer holds;
 * which origin's, in words, into why.
 */
int
snapshot_needed(struct store *s, const Labsync__Vector *v, char *why,
    size_t whylen)
{
	sqlite3_stmt	*st;
	uint64_t	 has, floor;
	int		 rc, need = 0;

	if (sqlite3_prepare_v2(s->db, "SELECT name, floor FROM labsync_origin"
	    " WHERE floor > 0", -1, &st, NULL) != SQLITE_OK) {
		log_warnx("snapshot: %s", sqlite3_errmsg(s->db));
		return -1;
	}
	while (!need && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);

		has = vector_entry_seq(v, name);
		floor = (uint64_t)sqlite3_column_int64(st, 1);
		if ((need = has < floor))
			store_seterr(why, whylen, "it holds %s's changes up to "
			    "%" PRIu64 ", our log none up to %" PRIu64, name,
			    has, floor);
	}
	sqlite3_finalize(st);
	return need;
}
