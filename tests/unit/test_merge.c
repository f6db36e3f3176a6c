/*
 * test_merge.c: the merge is a function of the set of changes.
 *
 * For each of 200 fixed seeds a random history of three origins (dense
 * conflicts over a few keys, equal HLCs across origins, partial and full
 * upserts with every kind of value, deletes) is delivered to three stores,
 * each in its own random order with duplicates and premature changes
 * (skipped as gaps, delivered again later), in batches of 1 to 8. The
 * three dumps must be byte-identical, and identical to a reference model
 * of the merge rule (README.md, "Merge rules"):
 *
 *   clock = (hlc, origin name), compared lexicographically;
 *   a row is alive iff its newest upsert is newer than its newest delete;
 *   a column holds the value of the newest upsert newer than the newest
 *   delete that carries the column, else NULL.
 *
 * A fourth store lacks column t1.c at first: it applies what fits and
 * keeps the values of c aside, learns the column at a random point (an
 * ALTER TABLE and the layout read again) and releases what it kept; its
 * dump must equal the model too.
 *
 * A second property (60 seeds) mixes in local writes: a store that is
 * origin o1 writes with plain SQL (upserts, updates, deletes, key changes)
 * between remote batches; its stamped changes go to the other stores, and
 * all of them converge on the model. A third check restores o1 from
 * nothing: it fetches its own changes back, refusing local writes until
 * then, and numbers its next change after them.
 *
 * Opening a store and compiling its statements costs more than a seed's
 * merging; so CHUNK seeds share the same
 * stores, each seed with its own origins (sNNNN-o1...) and keys
 * (sNNNN-k0...) and its own HLC range, so seeds cannot interact. A failure
 * names its seed; `build/test_merge SEED` (`-l SEED` for the local
 * property, `-s SEED` for the snapshot one) reruns that seed alone in
 * fresh stores. For a longer soak,
 * LABSYNC_TEST_SEEDS=5000 build/test_merge runs 5000 seeds (and local
 * seeds in proportion).
 *
 * A fourth property (SNAP_SEEDS) covers snapshots: a store applies any
 * prefix of a seed's history, then a snapshot (snapshot.c, read in
 * batches of random size) of a store that applied everything, or of one
 * that applied another prefix, then the rest in random order: its dump
 * must equal the model, and its vector the larger of the two per origin,
 * with the floor where the snapshot moved it.
 *
 * Also: merge_validate's refusals, idempotent apply, applied changes
 * served from the log as they came, and changes stamped too far in the
 * future held back until the clock allows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>

#include "unit.h"

#include "clock.h"
#include "rows.h"
#include "store.h"
#include "wire.h"

#define SEEDS		200	/* histories of the pure merge property */
#define LOCAL_SEEDS	60	/* histories with local writes */
#define SNAP_SEEDS	100	/* histories with a snapshot in between */
#define CHUNK		50	/* seeds that share stores */
#define NKEYS		5	/* keys per table and seed: dense conflicts */
#define MAX_STREAMS	3	/* origins per seed */
#define MAX_BATCH	8
/* The capture triggers stamp local writes with SQLite's clock, the real
   one: the histories start there (set in main), so that local writes and
   remote changes interleave in HLC order. */
static uint64_t base_ms;
#define BASE_MS		base_ms
#define SEED_MS(seed)	(BASE_MS + (seed) * 1000)	/* a seed's HLCs */
#define SKEW_MS		(60 * 1000)

#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		snprintf(why, whylen, __VA_ARGS__);			\
		goto done;						\
	}								\
} while (0)

/* t1 keeps its rows' clocks by rowid, t2 (WITHOUT ROWID) by key */
static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS t1(id TEXT PRIMARY KEY, a INTEGER, b TEXT,"
    " c REAL) STRICT;\n"
    "CREATE TABLE IF NOT EXISTS t2(id TEXT PRIMARY KEY, x TEXT, y BLOB)"
    " WITHOUT ROWID;\n";

static char schema_path[] = "/tmp/labsync-test-merge.XXXXXX";
/* the same, but t1 lacks column c: a node that does not know it yet */
static const char narrow_sql[] =
    "CREATE TABLE IF NOT EXISTS t1(id TEXT PRIMARY KEY, a INTEGER, b TEXT)"
    " STRICT;\n"
    "CREATE TABLE IF NOT EXISTS t2(id TEXT PRIMARY KEY, x TEXT, y BLOB)"
    " WITHOUT ROWID;\n";
static char narrow_path[] = "/tmp/labsync-test-merge-narrow.XXXXXX";
static char t1_name[] = "t1", t2_name[] = "t2";
static char *table_names[] = { t1_name, t2_name };

/* Apply a batch in one transaction, as the daemon does. */
static int
apply(struct store *s, Labsync__Change *const *changes, size_t n,
    int catchup, struct merge_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (merge_apply_begin(s) == -1)
		return -1;
	if (merge_apply_more(s, changes, NULL, n, catchup, st) == -1) {
		merge_apply_end(s, 0);
		return -1;
	}
	return merge_apply_end(s, 1);
}

struct table_def {
	const char	*name;
	int		 ncols;
	const char	*cols[3];
};

/* in name order, like rows_dump */
static const struct table_def table_defs[] = {
	{ "t1", 3, { "a", "b", "c" } },
	{ "t2", 2, { "x", "y" } },
};

/* The physical clocks the stores see. */
static uint64_t fake_ms;
static uint64_t fake_local_ms;

static uint64_t
fake_now(void)
{
	return fake_ms;
}

static uint64_t
fake_local_now(void)
{
	return fake_local_ms;
}

/* --- values ------------------------------------------------------------ */

static const int64_t int_pool[] = { 0, 1, -1, 42, -7, 1000000007,
    INT64_MAX, INT64_MIN };
static const char *const text_pool[] = { "", "a", "hello",
    "Gr\xc3\xbc\xc3\x9f" "e", "\xe6\x97\xa5\xe6\x9c\xac", "tab\there",
    "\"quoted\"\n" };
static const double real_pool[] = { 0.5, -2.25, 3.0, 1e300, -1e-300,
    12345.678 };
static const uint8_t blob_a[] = { 0x00 };
static const uint8_t blob_b[] = { 0x00, 0x01, 0x02 };
static const uint8_t blob_c[] = { 0xff, 0x00, 0x00, 0xfe };
static const uint8_t blob_d[] = { 'a', 'b', 'c' };
static const struct {
	const uint8_t	*data;
	size_t		 len;
} blob_pool[] = {
	{ blob_a, 0 },		/* the empty blob */
	{ blob_a, sizeof(blob_a) }, { blob_b, sizeof(blob_b) },
	{ blob_c, sizeof(blob_c) }, { blob_d, sizeof(blob_d) },
};

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

enum kind { K_NULL, K_INT, K_REAL, K_TEXT, K_BLOB };

static void
value_set(Labsync__Value *v, struct unit_rng *r, enum kind k)
{
	labsync__value__init(v);
	switch (k) {
	case K_NULL:
		v->kind_case = LABSYNC__VALUE__KIND_NULL;
		v->null = 1;
		break;
	case K_INT:
		v->kind_case = LABSYNC__VALUE__KIND_INTEGER;
		v->integer = int_pool[unit_rng_below(r, NELEM(int_pool))];
		break;
	case K_REAL:
		v->kind_case = LABSYNC__VALUE__KIND_REAL;
		v->real = real_pool[unit_rng_below(r, NELEM(real_pool))];
		break;
	case K_TEXT:
		v->kind_case = LABSYNC__VALUE__KIND_TEXT;
		v->text = UNCONST(text_pool[unit_rng_below(r,
		    NELEM(text_pool))]);
		break;
	case K_BLOB: {
		uint32_t i = unit_rng_below(r, NELEM(blob_pool));

		v->kind_case = LABSYNC__VALUE__KIND_BLOB;
		v->blob.data = UNCONST(blob_pool[i].data);
		v->blob.len = blob_pool[i].len;
		break;
	}
	}
}

/* A random value that fits column col of table t (NULL one time in 5). */
static void
value_random(Labsync__Value *v, struct unit_rng *r, int t, int col)
{
	static const enum kind typed[2][3] = {
		{ K_INT, K_TEXT, K_REAL },	/* t1: a INTEGER, b TEXT, c REAL */
		{ K_TEXT, K_BLOB, K_NULL },	/* t2: x TEXT, y BLOB (any) */
	};

	if (unit_rng_below(r, 5) == 0)
		value_set(v, r, K_NULL);
	else if (t == 1 && col == 1)
		value_set(v, r, (enum kind)unit_rng_range(r, K_INT, K_BLOB));
	else
		value_set(v, r, typed[t][col]);
}

/* --- histories --------------------------------------------------------- */

/*
 * Changes of one origin, as received from the wire (unpacked): c[j] has
 * sequence base + j + 1.
 */
struct stream {
	char		 name[24];
	uint64_t	 base;
	Labsync__Change	**c;
	size_t		 n, cap;
};

/* One seed's changes. */
struct history {
	uint64_t	 seed;
	struct stream	 s[MAX_STREAMS];
	int		 n;
};

static void
stream_push(struct stream *s, Labsync__Change *c)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->c = reallocarray(s->c, s->cap, sizeof(*s->c));
		assert_non_null(s->c);
	}
	s->c[s->n++] = c;
}

static void
history_free(struct history *h)
{
	for (int i = 0; i < h->n; i++) {
		for (size_t j = 0; j < h->s[i].n; j++)
			labsync__change__free_unpacked(h->s[i].c[j], NULL);
		free(h->s[i].c);
	}
	memset(h, 0, sizeof(*h));
}

/* Through the wire: pack c and hand back the decoded copy. */
static Labsync__Change *
wire_copy(const Labsync__Change *c)
{
	size_t		 len = labsync__change__get_packed_size(c);
	uint8_t		*buf = malloc(len ? len : 1);
	Labsync__Change	*out;

	assert_non_null(buf);
	labsync__change__pack(c, buf);
	out = labsync__change__unpack(NULL, len, buf);
	free(buf);
	assert_non_null(out);
	return out;
}

/* A key of seed h->seed. */
static void
seed_pk(char *pk, size_t len, uint64_t seed, struct unit_rng *r)
{
	snprintf(pk, len, "s%04llu-k%u", (unsigned long long)seed,
	    unit_rng_below(r, NKEYS));
}

/*
 * A random history of origin sNNNN-oX: k changes, seq 1..k, HLCs strictly
 * increasing on a coarse grid (half-millisecond steps of one to three), so
 * that different origins often share an HLC and the origin breaks the tie.
 */
static void
history_add_origin(struct history *h, const char *origin, int k,
    struct unit_rng *r)
{
	struct stream	*s = &h->s[h->n++];
	uint64_t	 v = unit_rng_below(r, 3);

	snprintf(s->name, sizeof(s->name), "s%04llu-%s",
	    (unsigned long long)h->seed, origin);
	for (int seq = 1; seq <= k; seq++) {
		Labsync__Change	 c = LABSYNC__CHANGE__INIT;
		Labsync__Column	 cols[3], *colp[3];
		Labsync__Value	 vals[3];
		char		 pk[32];
		int		 t = (int)unit_rng_below(r, 2), op;
		const struct table_def *td = &table_defs[t];

		v += unit_rng_range(r, 1, 3);
		seed_pk(pk, sizeof(pk), h->seed, r);
		c.origin = s->name;
		c.seq = (uint64_t)seq;
		c.hlc = CLOCK_MAKE(SEED_MS(h->seed) + v / 2, v % 2);
		c.table = UNCONST(td->name);
		c.pk = pk;
		c.columns = colp;
		op = (int)unit_rng_below(r, 10);
		if (op < 2)
			c.op = LABSYNC__OP__OP_DELETE;
		else {
			c.op = LABSYNC__OP__OP_UPSERT;
			for (int i = 0; i < td->ncols; i++) {
				/* 2, 3: full rows; else each column by chance
				   (an upsert may carry no column at all) */
				if (op >= 4 && unit_rng_below(r, 2) == 0)
					continue;
				labsync__column__init(&cols[c.n_columns]);
				cols[c.n_columns].name = UNCONST(td->cols[i]);
				value_random(&vals[c.n_columns], r, t, i);
				cols[c.n_columns].value = &vals[c.n_columns];
				colp[c.n_columns] = &cols[c.n_columns];
				c.n_columns++;
			}
		}
		stream_push(s, wire_copy(&c));
	}
}

/* --- stores ------------------------------------------------------------ */

static struct store *
merge_store_open_schema(const char *node_id, struct clock *clock,
    uint64_t skew_ms, const char *schema)
{
	struct store_options	 opt;
	struct store		*s;
	char			 err[512] = "";

	memset(&opt, 0, sizeof(opt));
	opt.path = ":memory:";
	opt.node_id = node_id;
	opt.schema_path = schema;
	opt.tables = table_names;
	opt.ntables = 2;
	opt.cache_size_mib = 1;
	opt.max_clock_skew_ms = skew_ms;
	opt.mode = STORE_DAEMON;
	if ((s = store_open(&opt, clock, err, sizeof(err))) == NULL)
		fail_msg("store_open %s: %s", node_id, err);
	return s;
}

static struct store *
merge_store_open(const char *node_id, struct clock *clock, uint64_t skew_ms)
{
	return merge_store_open_schema(node_id, clock, skew_ms, schema_path);
}

/* A store in a file (a snapshot reads it on a connection of its own). */
static struct store *
merge_store_open_file(const char *node_id, struct clock *clock,
    const char *path)
{
	struct store_options	 opt;
	struct store		*s;
	char			 err[512] = "";

	memset(&opt, 0, sizeof(opt));
	opt.path = path;
	opt.node_id = node_id;
	opt.schema_path = schema_path;
	opt.tables = table_names;
	opt.ntables = 2;
	opt.cache_size_mib = 1;
	opt.max_clock_skew_ms = SKEW_MS;
	opt.mode = STORE_DAEMON;
	if ((s = store_open(&opt, clock, err, sizeof(err))) == NULL)
		fail_msg("store_open %s: %s", node_id, err);
	return s;
}

/* rows_dump of both tables; malloc'd. */
static char *
dump_store(struct store *s)
{
	char	*buf = NULL, err[256] = "";
	size_t	 len = 0;
	FILE	*f = open_memstream(&buf, &len);
	int	 rc;

	assert_non_null(f);
	rc = rows_dump(store_db(s), table_names, 2, NULL, 0, f, err,
	    sizeof(err));
	fclose(f);
	if (rc != 0) {
		free(buf);
		fail_msg("rows_dump: %s", err);
	}
	return buf;
}

/* How many changes of stream st the store holds. */
static uint64_t
stream_held(struct store *s, const struct stream *st)
{
	uint64_t	 seq = vector_origin_seq(s, st->name);

	assert_true(seq >= st->base);
	return seq - st->base;
}

static int
history_done(struct store *s, const struct history *h)
{
	for (int i = 0; i < h->n; i++)
		if (stream_held(s, &h->s[i]) != h->s[i].n)
			return 0;
	return 1;
}

/*
 * One apply of 1..8 changes from h: mostly each origin's next change,
 * some duplicates of what the store holds, some changes ahead of a
 * missing predecessor. The stats must match what the vector predicts.
 * own: the store's node, which takes its own changes back (a restored
 * node); NULL: it takes none.
 */
static int
deliver_batch(struct store *s, const struct history *h, const char *own_node,
    struct unit_rng *r, char *why, size_t whylen)
{
	Labsync__Change		*batch[MAX_BATCH];
	struct merge_stats st;
	uint64_t		 cur[MAX_STREAMS], vec[MAX_STREAMS];
	int			 n = (int)unit_rng_range(r, 1, MAX_BATCH);
	int			 nb = 0, open[MAX_STREAMS], nopen, dup = 0;
	int			 allow_own = own_node != NULL;
	int			 gap = 0, applied = 0, own = 0, ret = -1;
	int			 from[MAX_BATCH];
	char			 vwhy[256];

	for (int i = 0; i < h->n; i++)
		cur[i] = vec[i] = stream_held(s, &h->s[i]);
	while (nb < n) {
		uint32_t pick = unit_rng_below(r, 100);
		const struct stream *str;
		int o;

		nopen = 0;
		for (int i = 0; i < h->n; i++)
			if (cur[i] < h->s[i].n)
				open[nopen++] = i;
		if (pick < 70 && nopen > 0) {		/* the next one */
			o = open[unit_rng_below(r, nopen)];
			batch[nb] = h->s[o].c[cur[o]++];
		} else if (pick < 85 || nopen == 0) {	/* a duplicate */
			o = (int)unit_rng_below(r, h->n);
			if (cur[o] == 0)
				continue;
			batch[nb] = h->s[o].c[unit_rng_below(r, cur[o])];
		} else {				/* too early */
			o = open[unit_rng_below(r, nopen)];
			str = &h->s[o];
			if (cur[o] + 1 >= str->n)
				continue;
			batch[nb] = str->c[unit_rng_range(r, cur[o] + 1,
			    cur[o] + 3 < str->n ? cur[o] + 3 : str->n - 1)];
		}
		from[nb++] = o;
	}
	for (int i = 0; i < nb; i++) {
		uint64_t seq = batch[i]->seq - h->s[from[i]].base;

		enum reason vr = merge_validate(s, batch[i], allow_own, vwhy,
		    sizeof(vwhy));

		/* a store that lacks a column keeps its values aside */
		CHECK(vr == REASON_OK || reason_keep(vr) == KEEP_WAITING,
		    "merge_validate refused %s/%llu: %s", batch[i]->origin,
		    (unsigned long long)batch[i]->seq, vwhy);
		if (seq <= vec[from[i]])
			dup++;
		else if (seq > vec[from[i]] + 1)
			gap++;
		else {
			applied++;
			if (allow_own && strcmp(batch[i]->origin, own_node) == 0)
				own++;
			vec[from[i]] = seq;
		}
	}
	CHECK(apply(s, batch, (size_t)nb, allow_own, &st) == 0,
	    "apply failed");
	CHECK(st.applied == applied && st.duplicates == dup && st.gaps == gap &&
	    st.held == 0 && st.own == own, "apply counted applied %d "
	    "duplicates %d gaps %d held %d own %d, expected %d %d %d 0 %d",
	    st.applied, st.duplicates, st.gaps, st.held, st.own, applied, dup,
	    gap, own);
	for (int i = 0; i < h->n; i++)
		CHECK(stream_held(s, &h->s[i]) == vec[i],
		    "vector of %s is %llu, expected %llu", h->s[i].name,
		    (unsigned long long)vector_origin_seq(s, h->s[i].name),
		    (unsigned long long)(h->s[i].base + vec[i]));
	ret = 0;
done:
	return ret;
}

/* Deliver until the store holds every change of h. */
static int
deliver_all(struct store *s, const struct history *h, const char *own_node,
    struct unit_rng *r, char *why, size_t whylen)
{
	for (int round = 0; !history_done(s, h); round++) {
		if (round == 10000) {
			snprintf(why, whylen, "delivery does not end");
			return -1;
		}
		if (deliver_batch(s, h, own_node, r, why, whylen) == -1)
			return -1;
	}
	return 0;
}

/*
 * The store learns t1.c (added as an operator would, the layout read
 * again) and releases what it kept aside: nothing may stay kept.
 */
static int
widen(struct store *s, char *why, size_t whylen)
{
	int64_t		 waiting, refused;
	int		 released, kept, ret = -1;

	CHECK(sqlite3_exec(store_db(s), "ALTER TABLE t1 ADD COLUMN c REAL",
	    NULL, NULL, NULL) == SQLITE_OK, "alter: %s",
	    sqlite3_errmsg(store_db(s)));
	CHECK(store_reload_layout(s, why, whylen) == 0, "reload failed");
	CHECK(merge_apply_begin(s) == 0, "begin failed");
	if (aside_release(s, &released, &kept) == -1) {
		merge_apply_end(s, 0);
		CHECK(0, "release failed");
	}
	CHECK(merge_apply_end(s, 1) == 0, "commit failed");
	CHECK(kept == 0, "%d parts still kept after the column came", kept);
	CHECK(aside_counts(s, &waiting, &refused) == 0 && waiting == 0 &&
	    refused == 0, "kept: %lld waiting, %lld refused",
	    (long long)waiting, (long long)refused);
	ret = 0;
done:
	return ret;
}

/*
 * Deliver h to a store that lacks t1.c until it learns it (*widened),
 * before round widen_at of this history (-1: not in it).
 */
static int
deliver_narrow(struct store *s, const struct history *h, int widen_at,
    int *widened, char *why, size_t whylen)
{
	struct unit_rng	 order;

	unit_rng_seed(&order, h->seed * 7919 + 4);
	for (int round = 0; !history_done(s, h); round++) {
		if (round == 10000) {
			snprintf(why, whylen, "seed %llu: n4: delivery does "
			    "not end", (unsigned long long)h->seed);
			return -1;
		}
		if (round == widen_at && !*widened) {
			if (widen(s, why, whylen) == -1)
				return -1;
			*widened = 1;
		}
		if (deliver_batch(s, h, NULL, &order, why, whylen) == -1)
			return -1;
	}
	if (widen_at >= 0 && !*widened) {
		if (widen(s, why, whylen) == -1)
			return -1;
		*widened = 1;
	}
	return 0;
}

/* --- the reference model ----------------------------------------------- */

/* (hlc, origin) order. */
static int
clock_cmp(const Labsync__Change *a, const Labsync__Change *b)
{
	if (a->hlc != b->hlc)
		return a->hlc < b->hlc ? -1 : 1;
	return strcmp(a->origin, b->origin);
}

static json_t *
model_json_value(const Labsync__Value *v)
{
	json_t	*o;
	char	*enc;
	size_t	 elen;

	switch (v->kind_case) {
	case LABSYNC__VALUE__KIND_INTEGER:
		return json_integer(v->integer);
	case LABSYNC__VALUE__KIND_REAL:
		return json_real(v->real);
	case LABSYNC__VALUE__KIND_TEXT:
		return json_string(v->text);
	case LABSYNC__VALUE__KIND_BLOB:
		elen = sodium_base64_encoded_len(v->blob.len,
		    sodium_base64_VARIANT_ORIGINAL);
		enc = malloc(elen);
		assert_non_null(enc);
		sodium_bin2base64(enc, elen, v->blob.data, v->blob.len,
		    sodium_base64_VARIANT_ORIGINAL);
		o = json_pack("{s:s}", "base64", enc);
		free(enc);
		return o;
	default:
		return json_null();
	}
}

/* Order of changes by table, then key. */
static int
model_row_cmp(const void *a, const void *b)
{
	const Labsync__Change	*x = *(const Labsync__Change *const *)a;
	const Labsync__Change	*y = *(const Labsync__Change *const *)b;
	int			 c = strcmp(x->table, y->table);

	return c != 0 ? c : strcmp(x->pk, y->pk);
}

/* The row the merge rule predicts from all changes of one row; or NULL. */
static json_t *
model_row(const struct table_def *td, const Labsync__Change *const *row,
    size_t n)
{
	const Labsync__Change	*del = NULL, *best[3] = { NULL };
	const Labsync__Value	*val[3] = { NULL };
	json_t			*o;
	int			 alive = 0;

	for (size_t j = 0; j < n; j++)
		if (row[j]->op == LABSYNC__OP__OP_DELETE &&
		    (del == NULL || clock_cmp(row[j], del) > 0))
			del = row[j];
	for (size_t j = 0; j < n; j++) {
		const Labsync__Change *c = row[j];

		if (c->op != LABSYNC__OP__OP_UPSERT ||
		    (del != NULL && clock_cmp(c, del) <= 0))
			continue;
		alive = 1;
		for (size_t m = 0; m < c->n_columns; m++)
			for (int ci = 0; ci < td->ncols; ci++)
				if (strcmp(td->cols[ci],
				    c->columns[m]->name) == 0 &&
				    (best[ci] == NULL ||
				    clock_cmp(c, best[ci]) > 0)) {
					best[ci] = c;
					val[ci] = c->columns[m]->value;
				}
	}
	if (!alive)
		return NULL;
	o = json_object();
	for (int ci = 0; ci < td->ncols; ci++)
		json_object_set_new(o, td->cols[ci], val[ci] != NULL ?
		    model_json_value(val[ci]) : json_null());
	return o;
}

/* The dump the merge rule predicts for the set of changes in hs. */
static char *
model_dump(const struct history *hs, int nh)
{
	const Labsync__Change	**all = NULL;
	size_t			 nall = 0, len = 0;
	char			*buf = NULL;
	FILE			*f = open_memstream(&buf, &len);

	assert_non_null(f);
	for (int k = 0; k < nh; k++)
		for (int i = 0; i < hs[k].n; i++)
			for (size_t j = 0; j < hs[k].s[i].n; j++) {
				all = reallocarray(all, nall + 1,
				    sizeof(*all));
				assert_non_null(all);
				all[nall++] = hs[k].s[i].c[j];
			}
	/* table names sort like rows_dump's tables, keys bytewise */
	qsort(all, nall, sizeof(*all), model_row_cmp);
	for (size_t j = 0, end; j < nall; j = end) {
		const struct table_def *td = NULL;
		json_t *o;
		char *s;

		for (end = j + 1; end < nall &&
		    model_row_cmp(&all[j], &all[end]) == 0; end++)
			;
		for (size_t t = 0; t < NELEM(table_defs); t++)
			if (strcmp(table_defs[t].name, all[j]->table) == 0)
				td = &table_defs[t];
		assert_non_null(td);
		if ((o = model_row(td, &all[j], end - j)) == NULL)
			continue;
		s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
		assert_non_null(s);
		fprintf(f, "%s\t%s\t%s\n", td->name, all[j]->pk, s);
		free(s);
		json_decref(o);
	}
	fclose(f);
	free(all);
	return buf;
}

/* --- the properties ---------------------------------------------------- */

/* The seed of the first line where a and b differ (keys are sNNNN-kX). */
static unsigned long long
first_diff_seed(const char *a, const char *b)
{
	const char	*line = a, *tab;

	while (*a != '\0' && *a == *b) {
		if (*a == '\n')
			line = a + 1;
		a++;
		b++;
	}
	if ((tab = strchr(line, '\t')) != NULL && tab[1] == 's')
		return strtoull(tab + 2, NULL, 10);
	return 0;
}

/* All dumps equal to the model's; on a difference, print them. */
static int
compare_dumps(char *const *dumps, const char *const *names, int n,
    const char *model, char *why, size_t whylen)
{
	for (int i = 0; i < n; i++) {
		int agree = 1;

		if (strcmp(dumps[i], model) == 0)
			continue;
		fprintf(stderr, "--- model\n%s--- %s\n%s", model, names[i],
		    dumps[i]);
		for (int j = 0; j < n; j++) {
			if (j != i)
				fprintf(stderr, "--- %s\n%s", names[j],
				    dumps[j]);
			if (strcmp(dumps[j], dumps[0]) != 0)
				agree = 0;
		}
		snprintf(why, whylen, "seed %llu: %s differs from the model; "
		    "the stores %s (rerun: build/test_merge %s%llu)",
		    first_diff_seed(dumps[i], model), names[i],
		    agree ? "agree with each other" :
		    "differ among themselves too", names[0][0] == 'o' ?
		    "-l " : names[0][0] == 'p' ? "-s " : "",
		    first_diff_seed(dumps[i], model));
		return -1;
	}
	return 0;
}

/*
 * Seeds first .. first+count-1: three stores, three origins per seed,
 * three delivery orders.
 */
static int
merge_chunk(uint64_t first, int count, char *why, size_t whylen)
{
	static const char *const nodes[] = { "n1", "n2", "n3", "n4" };
	struct history	*hs = calloc(count, sizeof(*hs));
	struct clock	*clock = clock_new(fake_now);
	struct store	*s[4] = { NULL };
	char		*dumps[4] = { NULL }, *model = NULL;
	struct unit_rng	 wr;
	uint64_t	 widen_seed;
	int		 ret = -1, widen_round, widened = 0;

	assert_non_null(hs);
	for (int i = 0; i < 3; i++)
		s[i] = merge_store_open(nodes[i], clock, SKEW_MS);
	/* n4 lacks t1.c at first: kept aside, released once it has it */
	s[3] = merge_store_open_schema(nodes[3], clock, SKEW_MS, narrow_path);
	unit_rng_seed(&wr, first * 31 + 17);
	widen_seed = first + unit_rng_below(&wr, (uint32_t)count);
	widen_round = (int)unit_rng_below(&wr, 30);
	for (int k = 0; k < count; k++) {
		struct history	*h = &hs[k];
		struct unit_rng	 r;

		h->seed = first + (uint64_t)k;
		fake_ms = SEED_MS(h->seed);
		unit_rng_seed(&r, h->seed);
		history_add_origin(h, "o1", (int)unit_rng_range(&r, 6, 12), &r);
		history_add_origin(h, "o2", (int)unit_rng_range(&r, 6, 12), &r);
		history_add_origin(h, "o3", (int)unit_rng_range(&r, 6, 12), &r);
		for (int i = 0; i < 3; i++) {
			struct unit_rng order;

			unit_rng_seed(&order, h->seed * 7919 + (uint64_t)i + 1);
			if (deliver_all(s[i], h, NULL, &order, why, whylen) == -1) {
				/* name the seed, keep the reason */
				char tmp[256];

				snprintf(tmp, sizeof(tmp), "%s", why);
				snprintf(why, whylen, "seed %llu: %s: %s",
				    (unsigned long long)h->seed, nodes[i], tmp);
				goto done;
			}
		}
		if (deliver_narrow(s[3], h, h->seed == widen_seed ?
		    widen_round : -1, &widened, why, whylen) == -1)
			goto done;
	}
	if (!widened && widen(s[3], why, whylen) == -1)
		goto done;
	for (int i = 0; i < 4; i++)
		dumps[i] = dump_store(s[i]);
	model = model_dump(hs, count);
	ret = compare_dumps(dumps, nodes, 4, model, why, whylen);
done:
	for (int i = 0; i < 4; i++) {
		store_free(s[i]);
		free(dumps[i]);
	}
	free(model);
	for (int k = 0; k < count; k++)
		history_free(&hs[k]);
	free(hs);
	clock_free(clock);
	return ret;
}

/* --- snapshots --------------------------------------------------------- */

/* The packed changes of one snapshot batch. */
struct snap_batch {
	Labsync__Change	**c;
	size_t		  n, cap;
};

static int
snap_collect_cb(void *arg, const char *origin, const uint8_t *data,
    size_t len)
{
	struct snap_batch	*b = arg;

	(void)origin;
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 64;
		b->c = reallocarray(b->c, b->cap, sizeof(*b->c));
		assert_non_null(b->c);
	}
	if ((b->c[b->n] = labsync__change__unpack(NULL, len, data)) == NULL)
		return -1;
	b->n++;
	return 0;
}

static void
snap_batch_clear(struct snap_batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		labsync__change__free_unpacked(b->c[i], NULL);
	b->n = 0;
}

/*
 * Take a snapshot of src into dst as the daemon does: batches of 1 to
 * 20 changes, each checked, merged and committed on its own; with the
 * last, dst takes the snapshot's vector.
 */
static int
snap_transfer(struct store *src, struct store *dst, struct unit_rng *r,
    char *why, size_t whylen)
{
	struct snapshot		*sn = snapshot_open(src);
	struct snap_batch	 b = { NULL, 0, 0 };
	struct merge_stats	 st;
	char			 vwhy[256];
	int			 more = 1, own, ret = -1;

	CHECK(sn != NULL, "snapshot_open failed");
	while (more) {
		CHECK(snapshot_read(sn, unit_rng_range(r, 1, 20), 1 << 20,
		    snap_collect_cb, &b, &more) == 0, "snapshot_read failed");
		for (size_t i = 0; i < b.n; i++) {
			enum reason vr = merge_validate_snapshot(dst, b.c[i],
			    vwhy, sizeof(vwhy));

			CHECK(vr == REASON_OK, "snapshot change %s %s/%s "
			    "refused: %s", b.c[i]->origin, b.c[i]->table,
			    b.c[i]->pk, vwhy);
			CHECK(b.c[i]->seq == 0, "a snapshot change with a "
			    "sequence");
		}
		memset(&st, 0, sizeof(st));
		CHECK(merge_apply_begin(dst) == 0, "apply begin failed");
		if (merge_snapshot_more(dst, b.c, b.n, &st) == -1 ||
		    (!more && merge_snapshot_end(dst, snapshot_vector(sn),
		    &own) == -1)) {
			merge_apply_end(dst, 0);
			CHECK(0, "snapshot merge failed");
		}
		CHECK(merge_apply_end(dst, 1) == 0, "snapshot commit failed");
		CHECK(st.held == 0 && st.kept == 0, "snapshot changes held %d "
		    "kept %d", st.held, st.kept);
		snap_batch_clear(&b);
	}
	ret = 0;
done:
	snap_batch_clear(&b);
	free(b.c);
	snapshot_free(sn);
	return ret;
}

/* Apply the first n[i] changes of each origin of h, in order. */
static int
apply_prefix(struct store *s, const struct history *h, const size_t *n,
    char *why, size_t whylen)
{
	struct merge_stats st;
	int		 ret = -1;

	for (int i = 0; i < h->n; i++) {
		if (n[i] == 0)
			continue;
		CHECK(apply(s, h->s[i].c, n[i], 0, &st) == 0 &&
		    st.applied == (int)n[i], "prefix of %s: applied %d of %zu",
		    h->s[i].name, st.applied, n[i]);
	}
	ret = 0;
done:
	return ret;
}

static uint64_t
origin_floor(struct store *s, const char *origin)
{
	sqlite3_stmt	*st;
	uint64_t	 v = 0;

	assert_int_equal(sqlite3_prepare_v2(store_db(s), "SELECT floor FROM"
	    " labsync_origin WHERE name = ?", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, origin, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/*
 * Seeds first .. first+count-1. F applies everything, Q a random prefix
 * of each origin; P1 and P2 each apply a prefix of their own, then take
 * a snapshot (P1 of F, P2 of Q), then deliver the rest.
 */
static int
snapshot_chunk(uint64_t first, int count, char *why, size_t whylen)
{
	static const char *const nodes[] = { "p1", "p2" };
	struct history	*hs = calloc(count, sizeof(*hs));
	struct clock	*clock = clock_new(fake_now);
	struct store	*f = NULL, *q = NULL, *p[2] = { NULL, NULL };
	char		*dumps[2] = { NULL, NULL }, *model = NULL;
	char		 fpath[] = "/tmp/labsync-test-snap-f.XXXXXX";
	char		 qpath[] = "/tmp/labsync-test-snap-q.XXXXXX";
	int		 fd, ret = -1;

	assert_non_null(hs);
	assert_true((fd = mkstemp(fpath)) != -1);
	close(fd);
	assert_true((fd = mkstemp(qpath)) != -1);
	close(fd);
	f = merge_store_open_file("f", clock, fpath);
	q = merge_store_open_file("q", clock, qpath);
	for (int i = 0; i < 2; i++)
		p[i] = merge_store_open(nodes[i], clock, SKEW_MS);
	for (int k = 0; k < count; k++) {
		struct history	*h = &hs[k];
		struct unit_rng	 r, order;
		size_t		 all[MAX_STREAMS], qn[MAX_STREAMS];
		size_t		 pn[2][MAX_STREAMS];

		h->seed = first + (uint64_t)k;
		fake_ms = SEED_MS(h->seed);
		unit_rng_seed(&r, h->seed);
		history_add_origin(h, "o1", (int)unit_rng_range(&r, 6, 12), &r);
		history_add_origin(h, "o2", (int)unit_rng_range(&r, 6, 12), &r);
		history_add_origin(h, "o3", (int)unit_rng_range(&r, 6, 12), &r);
		unit_rng_seed(&order, h->seed * 104729 + 3);
		for (int i = 0; i < h->n; i++) {
			all[i] = h->s[i].n;
			/* Q holds all of an origin now and then */
			qn[i] = unit_rng_below(&order, 3) == 0 ? h->s[i].n :
			    unit_rng_below(&order, (uint32_t)h->s[i].n + 1);
			for (int j = 0; j < 2; j++)
				pn[j][i] = unit_rng_below(&order,
				    (uint32_t)h->s[i].n + 1);
		}
		if (apply_prefix(f, h, all, why, whylen) == -1 ||
		    apply_prefix(q, h, qn, why, whylen) == -1)
			goto fail;
		for (int j = 0; j < 2; j++) {
			struct store *src = j == 0 ? f : q;

			if (apply_prefix(p[j], h, pn[j], why, whylen) == -1 ||
			    snap_transfer(src, p[j], &order, why, whylen) == -1)
				goto fail;
			for (int i = 0; i < h->n; i++) {
				size_t want = j == 0 ? all[i] : qn[i] > pn[j][i] ?
				    qn[i] : pn[j][i];
				uint64_t fl = origin_floor(p[j], h->s[i].name);

				CHECK(stream_held(p[j], &h->s[i]) == want,
				    "seed %llu: %s holds %llu of %s after the "
				    "snapshot, expected %zu",
				    (unsigned long long)h->seed, nodes[j],
				    (unsigned long long)stream_held(p[j],
				    &h->s[i]), h->s[i].name, want);
				CHECK(fl == (want > pn[j][i] ? want : 0),
				    "seed %llu: %s's floor of %s is %llu",
				    (unsigned long long)h->seed, nodes[j],
				    h->s[i].name, (unsigned long long)fl);
			}
			if (deliver_all(p[j], h, NULL, &order, why, whylen) ==
			    -1)
				goto fail;
		}
	}
	for (int j = 0; j < 2; j++)
		dumps[j] = dump_store(p[j]);
	model = model_dump(hs, count);
	ret = compare_dumps(dumps, nodes, 2, model, why, whylen);
	goto done;
fail:
	{
		char tmp[256];

		snprintf(tmp, sizeof(tmp), "%s", why);
		snprintf(why, whylen, "snapshot seeds from %llu: %s",
		    (unsigned long long)first, tmp);
	}
done:
	store_free(f);
	store_free(q);
	for (int j = 0; j < 2; j++) {
		store_free(p[j]);
		free(dumps[j]);
	}
	free(model);
	for (int k = 0; k < count; k++)
		history_free(&hs[k]);
	free(hs);
	clock_free(clock);
	for (int i = 0; i < 2; i++) {
		const char *path = i == 0 ? fpath : qpath;
		char side[64];

		unlink(path);
		snprintf(side, sizeof(side), "%s-wal", path);
		unlink(side);
		snprintf(side, sizeof(side), "%s-shm", path);
		unlink(side);
	}
	return ret;
}

/* Bind a generated value to a local write. */
static void
bind_value(sqlite3_stmt *st, int idx, const Labsync__Value *v)
{
	switch (v->kind_case) {
	case LABSYNC__VALUE__KIND_INTEGER:
		sqlite3_bind_int64(st, idx, v->integer);
		break;
	case LABSYNC__VALUE__KIND_REAL:
		sqlite3_bind_double(st, idx, v->real);
		break;
	case LABSYNC__VALUE__KIND_TEXT:
		sqlite3_bind_text(st, idx, v->text, -1, SQLITE_TRANSIENT);
		break;
	case LABSYNC__VALUE__KIND_BLOB:
		/* a non-NULL pointer: x'' rather than NULL */
		sqlite3_bind_blob(st, idx, v->blob.len ? v->blob.data : blob_a,
		    (int)v->blob.len, SQLITE_TRANSIENT);
		break;
	default:
		sqlite3_bind_null(st, idx);
		break;
	}
}

/* Local writers' statements by their SQL (compiling them is costly). */
struct stmt_cache {
	char		*sql[32];
	sqlite3_stmt	*st[32];
	int		 n;
};

static sqlite3_stmt *
stmt_cache_get(struct stmt_cache *sc, sqlite3 *db, const char *sql)
{
	for (int i = 0; i < sc->n; i++)
		if (strcmp(sc->sql[i], sql) == 0)
			return sc->st[i];
	assert_true(sc->n < 32);
	if (sqlite3_prepare_v2(db, sql, -1, &sc->st[sc->n], NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	sc->sql[sc->n] = strdup(sql);
	return sc->st[sc->n++];
}

static void
stmt_cache_clear(struct stmt_cache *sc)
{
	for (int i = 0; i < sc->n; i++) {
		sqlite3_finalize(sc->st[i]);
		free(sc->sql[i]);
	}
	sc->n = 0;
}

/*
 * One local write with plain SQL, as any SQLite client would make it: an
 * insert-or-update of all or some columns, an UPDATE of some columns
 * (perhaps of no row), a DELETE (perhaps of no row), or a change of key.
 */
static int
local_write(struct store *s, struct stmt_cache *sc, uint64_t seed,
    struct unit_rng *r, char *why, size_t whylen)
{
	int			 t = (int)unit_rng_below(r, 2);
	const struct table_def	*td = &table_defs[t];
	Labsync__Value		 vals[3];
	int			 set[3], nset = 0;
	int			 kind = (int)unit_rng_below(r, 100);
	char			*sql = NULL, *tmp;
	char			 pk[32], newpk[32];
	sqlite3_stmt		*st;
	int			 rc, rekey = 0, ret = -1;

	seed_pk(pk, sizeof(pk), seed, r);
	for (int i = 0; i < td->ncols; i++)
		if (kind < 35 || unit_rng_below(r, 2) == 0) {
			value_random(&vals[nset], r, t, i);
			set[nset++] = i;
		}
	if (kind < 80 && nset == 0) {
		value_random(&vals[0], r, t, 0);
		set[nset++] = 0;
	}
	if (kind < 55) {
		char *cols = sqlite3_mprintf("id"), *qs = sqlite3_mprintf("?1");
		char *upd = sqlite3_mprintf("");

		for (int i = 0; i < nset; i++) {
			tmp = sqlite3_mprintf("%s, %s", cols, td->cols[set[i]]);
			sqlite3_free(cols);
			cols = tmp;
			tmp = sqlite3_mprintf("%s, ?%d", qs, i + 2);
			sqlite3_free(qs);
			qs = tmp;
			tmp = sqlite3_mprintf("%s%s%s = excluded.%s", upd,
			    i ? ", " : "", td->cols[set[i]], td->cols[set[i]]);
			sqlite3_free(upd);
			upd = tmp;
		}
		sql = sqlite3_mprintf("INSERT INTO %s(%s) VALUES (%s) "
		    "ON CONFLICT(id) DO UPDATE SET %s", td->name, cols, qs, upd);
		sqlite3_free(cols);
		sqlite3_free(qs);
		sqlite3_free(upd);
	} else if (kind < 80) {
		char *upd = sqlite3_mprintf("");

		for (int i = 0; i < nset; i++) {
			tmp = sqlite3_mprintf("%s%s%s = ?%d", upd, i ? ", " : "",
			    td->cols[set[i]], i + 2);
			sqlite3_free(upd);
			upd = tmp;
		}
		sql = sqlite3_mprintf("UPDATE %s SET %s WHERE id = ?1",
		    td->name, upd);
		sqlite3_free(upd);
	} else if (kind < 92) {
		nset = 0;
		sql = sqlite3_mprintf("DELETE FROM %s WHERE id = ?1", td->name);
	} else {
		/* a new key: the triggers see a delete and an insert */
		nset = 0;
		rekey = 1;
		seed_pk(newpk, sizeof(newpk), seed, r);
		sql = sqlite3_mprintf("UPDATE %s SET id = ?2 WHERE id = ?1",
		    td->name);
	}
	st = stmt_cache_get(sc, store_db(s), sql);
	sqlite3_bind_text(st, 1, pk, -1, SQLITE_TRANSIENT);
	for (int i = 0; i < nset; i++)
		bind_value(st, i + 2, &vals[i]);
	if (rekey)
		sqlite3_bind_text(st, 2, newpk, -1, SQLITE_TRANSIENT);
	store_capture(s, 1);	/* a local write, as through the HTTP API */
	rc = sqlite3_step(st);
	store_capture(s, 0);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	/* a new key that is taken: refused, and nothing captured */
	CHECK(rc == SQLITE_DONE || (rekey && rc == SQLITE_CONSTRAINT),
	    "%s: %s", sql, sqlite3_errmsg(store_db(s)));
	ret = 0;
done:
	sqlite3_free(sql);
	return ret;
}

/* Collects the outbox: our own changes into a stream, in order. */
static int
collect_own_cb(void *arg, const char *origin, const uint8_t *data,
    size_t len)
{
	(void)origin;
	struct stream	*s = arg;
	Labsync__Change	*c = labsync__change__unpack(NULL, len, data);

	if (c == NULL)
		return -1;
	if (strcmp(c->origin, s->name) != 0) {
		labsync__change__free_unpacked(c, NULL);	/* relayed */
		return 0;
	}
	stream_push(s, c);
	return 0;
}

/*
 * One seed of the local property: store L (origin o1) takes local writes
 * between remote batches of sNNNN-o2 and sNNNN-o3, then h holds o1's new
 * changes (sequences after own_base) and the two remote histories.
 */
static int
local_seed_write(struct store *L, struct stmt_cache *sc, struct history *h,
    uint64_t own_base, char *why, size_t whylen)
{
	struct history	 remote;
	struct unit_rng	 r;
	uint64_t	 last_hlc = 0;
	int		 steps, n, ret = -1;

	memset(&remote, 0, sizeof(remote));
	remote.seed = h->seed;
	fake_ms = fake_local_ms = SEED_MS(h->seed);
	unit_rng_seed(&r, h->seed + 1000000);
	history_add_origin(&remote, "o2", (int)unit_rng_range(&r, 6, 12), &r);
	history_add_origin(&remote, "o3", (int)unit_rng_range(&r, 6, 12), &r);

	steps = (int)unit_rng_range(&r, 10, 20);
	for (int i = 0; i < steps; i++) {
		uint32_t pick = unit_rng_below(&r, 100);

		if (pick < 15)
			fake_local_ms += unit_rng_below(&r, 3);
		else if (pick < 20)
			fake_local_ms -= 1;	/* the clock steps back */
		if (unit_rng_below(&r, 100) < 40 && !history_done(L, &remote)) {
			if (deliver_batch(L, &remote, NULL, &r, why, whylen) == -1)
				goto done;
			continue;
		}
		if (local_write(L, sc, h->seed, &r, why, whylen) == -1)
			goto done;
		if (unit_rng_below(&r, 2) == 0)
			CHECK(changelog_take_local(L, (int)unit_rng_range(&r, 1, 3),
			    &n) == 0, "changelog_take_local failed");
	}
	if (deliver_all(L, &remote, NULL, &r, why, whylen) == -1)
		goto done;
	CHECK(changelog_take_local(L, 1 << 30, &n) == 0, "changelog_take_local failed");
	CHECK(changelog_pending(L) == 0, "local changes left untaken");

	/* o1's new changes, as its peers receive them */
	h->n = 3;
	snprintf(h->s[0].name, sizeof(h->s[0].name), "o1");
	h->s[0].base = own_base;
	CHECK(outbox_drain(L, collect_own_cb, &h->s[0]) == 0,
	    "outbox drain failed");
	CHECK(vector_own_seq(L) == own_base + h->s[0].n, "own seq %llu but "
	    "%zu new changes of ours in the outbox",
	    (unsigned long long)vector_own_seq(L), h->s[0].n);
	for (size_t j = 0; j < h->s[0].n; j++) {
		CHECK(h->s[0].c[j]->seq == own_base + j + 1, "own change %zu "
		    "has seq %llu", j, (unsigned long long)h->s[0].c[j]->seq);
		CHECK(h->s[0].c[j]->hlc > last_hlc, "own HLCs not increasing");
		last_hlc = h->s[0].c[j]->hlc;
	}
	h->s[1] = remote.s[0];
	h->s[2] = remote.s[1];
	memset(&remote, 0, sizeof(remote));	/* h owns them now */
	ret = 0;
done:
	history_free(&remote);
	return ret;
}

/*
 * o1 lost its database: a fresh store for o1 takes every change back from
 * its peers (its own included) while it refuses local writes, then takes
 * local writes again, numbered after its old ones and stamped after them.
 */
static int
local_restore(const struct history *hs, int count, uint64_t own_seq,
    char **dump, char *why, size_t whylen)
{
	struct clock	*clock = clock_new(fake_local_now);
	struct store	*R = merge_store_open("o1", clock, SKEW_MS);
	struct stream	 mine;
	uint64_t	 own_hlc = 0;
	char		*msg = NULL;
	int		 n, rc, ret = -1;

	memset(&mine, 0, sizeof(mine));
	snprintf(mine.name, sizeof(mine.name), "o1");
	mine.base = own_seq;
	CHECK(store_set_writable(R, STORE_RECOVERING) == 0,
	    "store_set_writable failed");
	store_capture(R, 1);
	rc = sqlite3_exec(store_db(R), "INSERT INTO t1(id, a) VALUES "
	    "('early', 1)", NULL, NULL, &msg);
	store_capture(R, 0);
	CHECK(rc != SQLITE_OK && msg != NULL &&
	    strstr(msg, "refused") != NULL, "a local write while recovering "
	    "was not refused (%s)", msg != NULL ? msg : "accepted");
	for (int k = 0; k < count; k++) {
		struct unit_rng order;

		unit_rng_seed(&order, hs[k].seed * 7919 + 2000000);
		if (deliver_all(R, &hs[k], "o1", &order, why, whylen) == -1)
			goto done;
		for (size_t j = 0; j < hs[k].s[0].n; j++)
			if (hs[k].s[0].c[j]->hlc > own_hlc)
				own_hlc = hs[k].s[0].c[j]->hlc;
	}
	CHECK(vector_own_seq(R) == own_seq, "restored own seq %llu, expected "
	    "%llu", (unsigned long long)vector_own_seq(R),
	    (unsigned long long)own_seq);
	*dump = dump_store(R);

	CHECK(store_set_writable(R, STORE_WRITABLE) == 0,
	    "store_set_writable failed");
	/* the fetched changes, relayed on */
	outbox_drain(R, collect_own_cb, &mine);
	for (size_t j = 0; j < mine.n; j++)
		labsync__change__free_unpacked(mine.c[j], NULL);
	mine.n = 0;
	store_capture(R, 1);
	rc = sqlite3_exec(store_db(R), "INSERT INTO t1(id, a) VALUES "
	    "('after-restore', 1)", NULL, NULL, NULL);
	store_capture(R, 0);
	CHECK(rc == SQLITE_OK, "local write after recovery refused");
	CHECK(changelog_take_local(R, 100, &n) == 0 && n == 1, "stamp after recovery");
	CHECK(outbox_drain(R, collect_own_cb, &mine) == 0 &&
	    mine.n == 1, "no new change of ours after recovery");
	CHECK(mine.c[0]->seq == own_seq + 1, "new change has seq %llu, "
	    "expected %llu", (unsigned long long)mine.c[0]->seq,
	    (unsigned long long)own_seq + 1);
	CHECK(mine.c[0]->hlc > own_hlc, "new change stamped before the old "
	    "ones");
	ret = 0;
done:
	for (size_t j = 0; j < mine.n; j++)
		labsync__change__free_unpacked(mine.c[j], NULL);
	free(mine.c);
	sqlite3_free(msg);
	store_free(R);
	clock_free(clock);
	return ret;
}

/*
 * Seeds first .. first+count-1 of the local property: L writes and takes
 * remote changes, then three more stores get o1, o2 and o3 in random
 * orders; all four agree with the model. With restore, a fifth store
 * plays o1 restored from nothing (local_restore) and agrees too.
 */
static int
local_chunk(uint64_t first, int count, int restore, char *why,
    size_t whylen)
{
	static const char *const names[] = { "o1", "n1", "n2", "n3",
	    "o1 (restored)" };
	struct history	*hs = calloc(count, sizeof(*hs));
	struct clock	*clock = clock_new(fake_now);
	struct clock	*local_clock = clock_new(fake_local_now);
	struct stmt_cache sc = { .n = 0 };
	struct store	*s[4] = { NULL };
	char		*dumps[5] = { NULL }, *model = NULL, tmp[256];
	uint64_t	 own_base = 0;
	int		 ret = -1;

	assert_non_null(hs);
	/* the triggers stamp o1's writes by the real clock: the fake one
	   starts there, however long the tests before took (valgrind) */
	base_ms = clock_system_ms() / 1000 * 1000 - first * 1000;
	s[0] = merge_store_open("o1", local_clock, SKEW_MS);
	for (int i = 1; i < 4; i++)
		s[i] = merge_store_open(names[i], clock, SKEW_MS);
	for (int k = 0; k < count; k++) {
		struct history *h = &hs[k];

		h->seed = first + (uint64_t)k;
		if (local_seed_write(s[0], &sc, h, own_base, why,
		    whylen) == -1) {
			snprintf(tmp, sizeof(tmp), "%s", why);
			snprintf(why, whylen, "seed %llu: o1: %s",
			    (unsigned long long)h->seed, tmp);
			goto done;
		}
		own_base += h->s[0].n;
		for (int i = 1; i < 4; i++) {
			struct unit_rng order;

			unit_rng_seed(&order, h->seed * 7919 + (uint64_t)i +
			    1000000);
			if (deliver_all(s[i], h, NULL, &order, why, whylen) == -1) {
				snprintf(tmp, sizeof(tmp), "%s", why);
				snprintf(why, whylen, "seed %llu: %s: %s",
				    (unsigned long long)h->seed, names[i], tmp);
				goto done;
			}
		}
	}
	for (int i = 0; i < 4; i++)
		dumps[i] = dump_store(s[i]);
	if (restore && local_restore(hs, count, own_base, &dumps[4], why,
	    whylen) == -1) {
		snprintf(tmp, sizeof(tmp), "%s", why);
		snprintf(why, whylen, "seeds %llu-%llu: restored o1: %s",
		    (unsigned long long)first,
		    (unsigned long long)first + count - 1, tmp);
		goto done;
	}
	model = model_dump(hs, count);
	ret = compare_dumps(dumps, names, restore ? 5 : 4, model, why, whylen);
done:
	stmt_cache_clear(&sc);
	for (int i = 0; i < 4; i++)
		store_free(s[i]);
	for (int i = 0; i < 5; i++)
		free(dumps[i]);
	free(model);
	for (int k = 0; k < count; k++)
		history_free(&hs[k]);
	free(hs);
	clock_free(clock);
	clock_free(local_clock);
	return ret;
}

/* How many seeds: n, or $LABSYNC_TEST_SEEDS times n / SEEDS (soak runs). */
static uint64_t
seed_count(uint64_t n)
{
	const char	*env = getenv("LABSYNC_TEST_SEEDS");
	uint64_t	 want;

	if (env == NULL || (want = strtoull(env, NULL, 10)) == 0)
		return n;
	return want * n / SEEDS > 0 ? want * n / SEEDS : 1;
}

static void
test_merge_is_a_function_of_the_set_of_changes(void **state)
{
	uint64_t	 last = seed_count(SEEDS);
	char		 why[512];

	(void)state;
	for (uint64_t seed = 1; seed <= last; seed += CHUNK) {
		why[0] = '\0';
		if (merge_chunk(seed, last - seed + 1 < CHUNK ?
		    (int)(last - seed + 1) : CHUNK, why, sizeof(why)) == -1)
			fail_msg("%s", why);
	}
}

static void
test_snapshot_between_prefix_and_rest(void **state)
{
	uint64_t	 last = seed_count(SNAP_SEEDS);
	char		 why[512];

	(void)state;
	for (uint64_t seed = 1; seed <= last; seed += CHUNK) {
		why[0] = '\0';
		if (snapshot_chunk(seed, last - seed + 1 < CHUNK ?
		    (int)(last - seed + 1) : CHUNK, why, sizeof(why)) == -1)
			fail_msg("%s", why);
	}
}

static void
test_local_writes_interleaved_converge(void **state)
{
	uint64_t	 last = seed_count(LOCAL_SEEDS);
	char		 why[512];

	(void)state;
	for (uint64_t seed = 1; seed <= last; seed += CHUNK) {
		why[0] = '\0';
		if (local_chunk(seed, last - seed + 1 < CHUNK ?
		    (int)(last - seed + 1) : CHUNK, 0, why, sizeof(why)) == -1)
			fail_msg("%s", why);
	}
}

static void
test_restored_node_fetches_its_own_changes_back(void **state)
{
	char	 why[512] = "";

	(void)state;
	/* other seeds than the local property's */
	if (local_chunk(5001, 10, 1, why, sizeof(why)) == -1)
		fail_msg("%s", why);
}

/* --- small store behaviours -------------------------------------------- */

struct fixture {
	struct clock	*clock;
	struct store	*store;
};

static int
setup_store(void **state)
{
	struct fixture	*f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	fake_ms = BASE_MS;
	f->clock = clock_new(fake_now);
	f->store = merge_store_open("n1", f->clock, 1000);
	*state = f;
	return 0;
}

static int
teardown_store(void **state)
{
	struct fixture	*f = *state;

	store_free(f->store);
	clock_free(f->clock);
	free(f);
	return 0;
}

/* A change of one column, on the stack. */
struct one_change {
	Labsync__Change	 c;
	Labsync__Column	 col, *colp;
	Labsync__Value	 val;
};

static void
one_change_init(struct one_change *o, const char *origin, uint64_t seq,
    uint64_t hlc, const char *table, const char *pk, const char *col)
{
	labsync__change__init(&o->c);
	labsync__column__init(&o->col);
	labsync__value__init(&o->val);
	o->c.origin = UNCONST(origin);
	o->c.seq = seq;
	o->c.hlc = hlc;
	o->c.table = UNCONST(table);
	o->c.pk = UNCONST(pk);
	o->c.op = LABSYNC__OP__OP_UPSERT;
	o->val.kind_case = LABSYNC__VALUE__KIND_INTEGER;
	o->val.integer = 7;
	o->col.name = UNCONST(col);
	o->col.value = &o->val;
	o->colp = &o->col;
	o->c.columns = &o->colp;
	o->c.n_columns = 1;
}

/* Refused with that code, and a reason in words. */
static void
assert_invalid(struct store *s, const Labsync__Change *c, int allow_own,
    enum reason want)
{
	char		 why[256] = "";
	enum reason	 r;

	r = merge_validate(s, c, allow_own, why, sizeof(why));
	if (r != want)
		fail_msg("code %s, expected %s (%s)", reason_name(r),
		    reason_name(want), why);
	assert_true(why[0] != '\0');
}

static void
test_validate_refuses_what_the_schema_does_not_allow(void **state)
{
	struct fixture		*f = *state;
	struct one_change	 o;
	Labsync__Column		*colp[2];
	char			 why[256] = "", *bigpk, *big;
	uint64_t		 hlc = CLOCK_MAKE(BASE_MS, 0);

	one_change_init(&o, "o1", 1, hlc, "t1", "k1", "a");
	assert_int_equal(merge_validate(f->store, &o.c, 0, why, sizeof(why)),
	    REASON_OK);

	o.c.table = UNCONST("t3");
	assert_invalid(f->store, &o.c, 0, REASON_UNKNOWN_TABLE);
	o.c.table = UNCONST("labsync_log");
	assert_invalid(f->store, &o.c, 0, REASON_UNKNOWN_TABLE);
	o.c.table = UNCONST("t1");

	o.col.name = UNCONST("z");
	assert_invalid(f->store, &o.c, 0, REASON_UNKNOWN_COLUMN);
	o.col.name = UNCONST("id");	/* the key is not a column */
	assert_invalid(f->store, &o.c, 0, REASON_UNKNOWN_COLUMN);
	o.col.name = UNCONST("a");

	o.val.kind_case = LABSYNC__VALUE__KIND_TEXT;	/* into INTEGER */
	o.val.text = UNCONST("seven");
	assert_invalid(f->store, &o.c, 0, REASON_WRONG_TYPE);
	o.val.kind_case = LABSYNC__VALUE__KIND_REAL;
	o.val.real = 7.5;
	assert_invalid(f->store, &o.c, 0, REASON_WRONG_TYPE);
	o.col.name = UNCONST("b");			/* TEXT */
	o.val.kind_case = LABSYNC__VALUE__KIND_INTEGER;
	o.val.integer = 7;
	assert_invalid(f->store, &o.c, 0, REASON_WRONG_TYPE);
	o.val.kind_case = LABSYNC__VALUE__KIND_BLOB;
	o.val.blob.data = UNCONST(blob_b);
	o.val.blob.len = sizeof(blob_b);
	assert_invalid(f->store, &o.c, 0, REASON_WRONG_TYPE);
	o.val.kind_case = LABSYNC__VALUE__KIND_NULL;	/* NULL fits all */
	o.val.null = 1;
	assert_int_equal(merge_validate(f->store, &o.c, 0, why, sizeof(why)),
	    REASON_OK);

	o.c.origin = UNCONST("n1");			/* ourselves */
	assert_invalid(f->store, &o.c, 0, REASON_OWN_ORIGIN);
	assert_int_equal(merge_validate(f->store, &o.c, 1, why, sizeof(why)),
	    REASON_OK);
	o.c.origin = UNCONST("O1");
	assert_invalid(f->store, &o.c, 0, REASON_BAD_ORIGIN);
	o.c.origin = UNCONST("");
	assert_invalid(f->store, &o.c, 0, REASON_BAD_ORIGIN);
	o.c.origin = UNCONST("o1");

	o.c.seq = 0;
	assert_invalid(f->store, &o.c, 0, REASON_BAD_SEQUENCE);
	o.c.seq = 1;
	o.c.hlc = 0;
	assert_invalid(f->store, &o.c, 0, REASON_BAD_CLOCK);
	o.c.hlc = hlc;

	bigpk = malloc(STORE_MAX_PK + 2);
	assert_non_null(bigpk);
	memset(bigpk, 'k', STORE_MAX_PK + 1);
	bigpk[STORE_MAX_PK + 1] = '\0';
	o.c.pk = bigpk;
	assert_invalid(f->store, &o.c, 0, REASON_BAD_KEY);
	bigpk[STORE_MAX_PK] = '\0';			/* exactly the limit */
	assert_int_equal(merge_validate(f->store, &o.c, 0, why, sizeof(why)),
	    REASON_OK);
	free(bigpk);
	o.c.pk = UNCONST("");
	assert_invalid(f->store, &o.c, 0, REASON_BAD_KEY);
	o.c.pk = UNCONST("k1");

	o.c.op = LABSYNC__OP__OP_DELETE;		/* delete with columns */
	assert_invalid(f->store, &o.c, 0, REASON_BAD_OPERATION);
	o.c.op = (Labsync__Op)7;
	assert_invalid(f->store, &o.c, 0, REASON_BAD_OPERATION);
	o.c.op = LABSYNC__OP__OP_UPSERT;

	colp[0] = colp[1] = &o.col;			/* a column twice */
	o.c.columns = colp;
	o.c.n_columns = 2;
	assert_invalid(f->store, &o.c, 0, REASON_DUPLICATE_COLUMN);
	o.c.columns = &o.colp;
	o.c.n_columns = 1;

	big = malloc(STORE_MAX_VALUE + 2);		/* text above the limit */
	assert_non_null(big);
	memset(big, 'v', STORE_MAX_VALUE + 1);
	big[STORE_MAX_VALUE + 1] = '\0';
	o.col.name = UNCONST("b");
	o.val.kind_case = LABSYNC__VALUE__KIND_TEXT;
	o.val.text = big;
	assert_invalid(f->store, &o.c, 0, REASON_VALUE_TOO_LARGE);
	big[STORE_MAX_VALUE] = '\0';			/* exactly the limit */
	assert_int_equal(merge_validate(f->store, &o.c, 0, why, sizeof(why)),
	    REASON_OK);
	free(big);
}

static int
count_cb(void *arg, const char *origin, const uint8_t *data, size_t len)
{
	(void)origin;
	(void)data;
	(void)len;
	(*(size_t *)arg)++;
	return 0;
}

static void
test_apply_twice_is_idempotent(void **state)
{
	struct fixture		*f = *state;
	struct merge_stats st;
	struct history		 h;
	struct unit_rng		 r;
	Labsync__Change		*batch[16];
	char			*before, *after;
	size_t			 n = 0, drained = 0;
	int64_t			 logged;

	memset(&h, 0, sizeof(h));
	unit_rng_seed(&r, 99);
	history_add_origin(&h, "o1", 8, &r);
	history_add_origin(&h, "o2", 8, &r);
	for (int i = 0; i < 2; i++)
		for (size_t j = 0; j < h.s[i].n; j++)
			batch[n++] = h.s[i].c[j];
	assert_int_equal(apply(f->store, batch, n, 0, &st), 0);
	assert_int_equal(st.applied, 16);
	assert_int_equal(st.duplicates, 0);
	before = dump_store(f->store);
	logged = changelog_count(f->store);
	assert_int_equal(outbox_len(f->store), 16);	/* to relay */
	assert_int_equal(outbox_drain(f->store, count_cb, &drained), 0);
	assert_int_equal(drained, 16);

	assert_int_equal(apply(f->store, batch, n, 0, &st), 0);
	assert_int_equal(st.applied, 0);
	assert_int_equal(st.duplicates, 16);
	assert_int_equal(st.gaps, 0);
	after = dump_store(f->store);
	assert_string_equal(before, after);
	assert_int_equal(changelog_count(f->store), logged);
	assert_int_equal(outbox_len(f->store), 0);	/* nothing new */
	/* remote changes are not captured as local ones */
	assert_int_equal(changelog_pending(f->store), 0);
	assert_int_equal(vector_own_seq(f->store), 0);
	free(before);
	free(after);
	history_free(&h);
}

/* Whether two values are the same: kind and content. */
static int
value_same(const Labsync__Value *a, const Labsync__Value *b)
{
	if (a->kind_case != b->kind_case)
		return 0;
	switch (a->kind_case) {
	case LABSYNC__VALUE__KIND_INTEGER:
		return a->integer == b->integer;
	case LABSYNC__VALUE__KIND_REAL:
		return a->real == b->real;
	case LABSYNC__VALUE__KIND_TEXT:
		return strcmp(a->text, b->text) == 0;
	case LABSYNC__VALUE__KIND_BLOB:
		return a->blob.len == b->blob.len && (a->blob.len == 0 ||
		    memcmp(a->blob.data, b->blob.data, a->blob.len) == 0);
	default:
		return a->null == b->null;
	}
}

/* What the log served, next to what was applied: in origin order. */
struct served {
	struct history	*h;
	size_t		 n;
	char		 why[256];
};

static int
served_cb(void *arg, const char *origin, const uint8_t *data, size_t len)
{
	struct served		*sv = arg;
	Labsync__Change		*got, *want = NULL;
	int			 same;

	if ((got = labsync__change__unpack(NULL, len, data)) == NULL) {
		snprintf(sv->why, sizeof(sv->why), "change %zu: undecodable",
		    sv->n);
		return -1;
	}
	for (int i = 0; i < sv->h->n; i++)
		if (strcmp(sv->h->s[i].name, origin) == 0 && got->seq >= 1 &&
		    got->seq <= sv->h->s[i].n)
			want = sv->h->s[i].c[got->seq - 1];
	same = want != NULL && strcmp(got->origin, want->origin) == 0 &&
	    got->hlc == want->hlc && strcmp(got->table, want->table) == 0 &&
	    strcmp(got->pk, want->pk) == 0 && got->op == want->op &&
	    got->n_columns == want->n_columns;
	/* columns in the table's order, as they were made */
	for (size_t j = 0; same && j < got->n_columns; j++)
		same = strcmp(got->columns[j]->name,
		    want->columns[j]->name) == 0 &&
		    value_same(got->columns[j]->value, want->columns[j]->value);
	if (!same)
		snprintf(sv->why, sizeof(sv->why), "%s:%llu served otherwise "
		    "than it was applied", origin,
		    (unsigned long long)got->seq);
	labsync__change__free_unpacked(got, NULL);
	sv->n++;
	return same ? 0 : -1;
}

/*
 * The log keeps an applied change as its values, not as the bytes it came
 * in: a node that serves it to a third (catch-up, relays) must send the
 * same change, every kind of value, partial upserts and deletes alike,
 * whether it won the merge here or not.
 */
static void
test_applied_changes_are_served_as_they_came(void **state)
{
	struct fixture		*f = *state;
	struct merge_stats st;
	Labsync__Vector		 none = LABSYNC__VECTOR__INIT;
	struct history		 h;
	struct unit_rng		 r;
	struct served		 sv;
	Labsync__Change		*batch[64];
	size_t			 n = 0;
	int			 more;

	memset(&h, 0, sizeof(h));
	memset(&sv, 0, sizeof(sv));
	unit_rng_seed(&r, 7);
	history_add_origin(&h, "o1", 32, &r);
	history_add_origin(&h, "o2", 32, &r);
	for (int i = 0; i < 2; i++)
		for (size_t j = 0; j < h.s[i].n; j++)
			batch[n++] = h.s[i].c[j];
	assert_int_equal(apply(f->store, batch, n, 0, &st), 0);
	assert_int_equal(st.applied, 64);
	sv.h = &h;
	if (changelog_read_missing(f->store, &none, 1000, 1 << 20, served_cb, &sv,
	    &more) == -1)
		fail_msg("%s", sv.why[0] ? sv.why : "changelog_read_missing failed");
	assert_int_equal(sv.n, 64);
	assert_int_equal(more, 0);
	history_free(&h);
}

/* The HLC the capture triggers step from (labsync_state.hlc). */
static uint64_t
state_hlc(struct store *s)
{
	sqlite3_stmt	*q;
	uint64_t	 v = 0;

	assert_int_equal(sqlite3_prepare_v2(store_db(s), "SELECT hlc FROM "
	    "labsync_state", -1, &q, NULL), SQLITE_OK);
	if (sqlite3_step(q) == SQLITE_ROW)
		v = (uint64_t)sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	return v;
}

static void
test_future_change_is_held_until_the_clock_allows(void **state)
{
	struct fixture		*f = *state;
	struct merge_stats st;
	struct one_change	 o1, o2;
	Labsync__Change		*batch[2] = { &o1.c, &o2.c };
	uint64_t		 far = CLOCK_MAKE(BASE_MS + 5000, 3);
	char			*d;

	/* max_clock_skew is 1 s; this change is 5 s ahead */
	one_change_init(&o1, "o2", 1, far, "t1", "k1", "a");
	one_change_init(&o2, "o2", 2, far + 1, "t1", "k2", "a");
	assert_int_equal(apply(f->store, batch, 2, 0, &st), 0);
	assert_int_equal(st.held, 1);
	assert_int_equal(st.applied, 0);
	assert_int_equal(st.gaps, 1);		/* waits for its predecessor */
	assert_int_equal(vector_origin_seq(f->store, "o2"), 0);
	assert_true(clock_last(f->clock) < far);	/* not absorbed */
	d = dump_store(f->store);
	assert_string_equal(d, "");
	free(d);

	fake_ms += 3999;			/* still 1.001 s too early */
	assert_int_equal(apply(f->store, batch, 2, 0, &st), 0);
	assert_int_equal(st.held, 1);
	assert_int_equal(st.applied, 0);

	fake_ms += 1;				/* now within the skew */
	assert_int_equal(apply(f->store, batch, 2, 0, &st), 0);
	assert_int_equal(st.held, 0);
	assert_int_equal(st.applied, 2);
	assert_int_equal(vector_origin_seq(f->store, "o2"), 2);
	assert_true(clock_last(f->clock) >= far + 1);	/* absorbed */
	/* kept where the capture triggers step from */
	assert_true(state_hlc(f->store) >= far + 1);
	d = dump_store(f->store);
	assert_string_equal(d, "t1\tk1\t{\"a\":7,\"b\":null,\"c\":null}\n"
	    "t1\tk2\t{\"a\":7,\"b\":null,\"c\":null}\n");
	free(d);
}

/* One SQL count of a store's database. */
static int64_t
count_sql(struct store *s, const char *sql)
{
	sqlite3_stmt	*q;
	int64_t		 n = -1;

	assert_int_equal(sqlite3_prepare_v2(store_db(s), sql, -1, &q, NULL),
	    SQLITE_OK);
	if (sqlite3_step(q) == SQLITE_ROW)
		n = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	return n;
}

/*
 * An erasure of k1 (o2) scrubs the values of every older change of k1
 * from the log and the parts of it kept aside (o4's, of a column this
 * node lacks, kept whole in the log), whether they came before it or
 * after it (o3's update, older than the erasure, arriving last): the
 * same rows, no value of k1 in the log or aside, one audit row, an
 * unrelated row untouched, in any order.
 */
static void
test_erasure_scrubs_older_values_in_any_order(void **state)
{
	struct fixture		*f = *state;
	struct merge_stats	 st;
	struct one_change	 u1, u2, u3, u4, e;
	Labsync__Change		*first[2] = { &u1.c, &u2.c }, *odd[1] = { &u4.c };
	Labsync__Change		*erase[1] = { &e.c }, *late[1] = { &u3.c };
	struct store		*other;
	uint64_t		 h = CLOCK_MAKE(BASE_MS, 0);
	char			*d1, *d2;

	one_change_init(&u1, "o1", 1, h + 1, "t1", "k1", "a");
	one_change_init(&u2, "o1", 2, h + 2, "t1", "k2", "a");
	one_change_init(&u3, "o3", 1, h + 5, "t1", "k1", "a");
	one_change_init(&u4, "o4", 1, h + 3, "t1", "k1", "zz");
	one_change_init(&e, "o2", 1, h + 10, "t1", "k1", "a");
	e.c.op = LABSYNC__OP__OP_ERASE;
	e.c.n_columns = 0;
	e.c.erased_by = UNCONST("dpo\tx");
	e.c.asked_ms = 5;
	assert_invalid(f->store, &e.c, 0, REASON_BAD_OPERATION);
	e.c.n_columns = 1;
	e.c.erased_by = UNCONST("dpo");
	assert_invalid(f->store, &e.c, 0, REASON_BAD_OPERATION);
	e.c.n_columns = 0;
	assert_int_equal(merge_validate(f->store, &e.c, 0, NULL, 0),
	    REASON_OK);

	assert_int_equal(apply(f->store, first, 2, 0, &st), 0);
	assert_int_equal(apply(f->store, odd, 1, 0, &st), 0);
	assert_int_equal(st.kept, 1);
	assert_int_equal(count_sql(f->store, "SELECT count(*) FROM"
	    " labsync_aside"), 1);
	assert_int_equal(apply(f->store, erase, 1, 0, &st), 0);
	assert_int_equal(apply(f->store, late, 1, 0, &st), 0);
	assert_int_equal(st.applied, 1);

	other = merge_store_open("n2", f->clock, 1000);
	assert_non_null(other);
	assert_int_equal(apply(other, late, 1, 0, &st), 0);
	assert_int_equal(apply(other, erase, 1, 0, &st), 0);
	assert_int_equal(apply(other, first, 2, 0, &st), 0);
	assert_int_equal(apply(other, odd, 1, 0, &st), 0);
	assert_int_equal(st.kept, 0);

	d1 = dump_store(f->store);
	d2 = dump_store(other);
	assert_string_equal(d1, "t1\tk2\t{\"a\":7,\"b\":null,\"c\":null}\n");
	assert_string_equal(d1, d2);
	free(d1);
	free(d2);
	for (int i = 0; i < 2; i++) {
		struct store *s = i == 0 ? f->store : other;

		/* u1, u3, u4 emptied, the erasure packed without a value */
		assert_int_equal(count_sql(s, "SELECT count(*) FROM labsync_log"
		    " WHERE pk = 'k1'"), 4);
		assert_int_equal(count_sql(s, "SELECT count(*) FROM"
		    " labsync_aside"), 0);
		assert_int_equal(count_sql(s, "SELECT count(*) FROM labsync_log"
		    " WHERE pk = 'k1' AND op <> 2 AND (mask <> 0 OR body IS"
		    " NOT NULL OR v0 IS NOT NULL)"), 0);
		assert_int_equal(count_sql(s, "SELECT count(*) FROM labsync_log"
		    " WHERE pk = 'k2' AND mask <> 0 AND v0 = 7"), 1);
		assert_int_equal(count_sql(s, "SELECT count(*) FROM"
		    " labsync_erasure WHERE tbl = 't1' AND pk = 'k1' AND origin"
		    " = 'o2' AND seq = 1 AND requested_by = 'dpo' AND asked_ms"
		    " = 5"), 1);
	}
	store_free(other);
}

/* A local write made after seeing a remote change wins over it. */
static void
test_local_write_after_remote_change_wins(void **state)
{
	struct fixture		*f = *state;
	struct merge_stats st;
	struct one_change	 o;
	Labsync__Change		*batch[1] = { &o.c };
	char			*d;
	int			 n;

	/* remote stamp 500 ms ahead of our physical clock (skew is 1 s) */
	one_change_init(&o, "o2", 1, CLOCK_MAKE(BASE_MS + 500, 0), "t1", "k1",
	    "a");
	assert_int_equal(apply(f->store, batch, 1, 0, &st), 0);
	assert_int_equal(st.applied, 1);
	store_capture(f->store, 1);
	assert_int_equal(sqlite3_exec(store_db(f->store),
	    "UPDATE t1 SET a = 8 WHERE id = 'k1'", NULL, NULL, NULL),
	    SQLITE_OK);
	store_capture(f->store, 0);
	assert_int_equal(changelog_take_local(f->store, 100, &n), 0);
	assert_int_equal(n, 1);
	assert_true(clock_last(f->clock) > CLOCK_MAKE(BASE_MS + 500, 0));
	/* the same remote change again changes nothing */
	assert_int_equal(apply(f->store, batch, 1, 0, &st), 0);
	assert_int_equal(st.duplicates, 1);
	d = dump_store(f->store);
	assert_string_equal(d, "t1\tk1\t{\"a\":8,\"b\":null,\"c\":null}\n");
	free(d);
}

/* --- main -------------------------------------------------------------- */

static int
setup_schema(void **state)
{
	int	 fd;

	(void)state;
	if ((fd = mkstemp(schema_path)) == -1)
		return -1;
	if (write(fd, schema_sql, sizeof(schema_sql) - 1) !=
	    (ssize_t)(sizeof(schema_sql) - 1)) {
		close(fd);
		unlink(schema_path);
		return -1;
	}
	close(fd);
	if ((fd = mkstemp(narrow_path)) == -1)
		return -1;
	if (write(fd, narrow_sql, sizeof(narrow_sql) - 1) !=
	    (ssize_t)(sizeof(narrow_sql) - 1)) {
		close(fd);
		unlink(narrow_path);
		return -1;
	}
	close(fd);
	return 0;
}

static int
teardown_schema(void **state)
{
	(void)state;
	unlink(schema_path);
	unlink(narrow_path);
	return 0;
}

/* The capture triggers stamp by clock.c's rule, as test_clock checks it. */
static void
test_triggers_stamp_by_the_clock_rule(void **state)
{
	struct fixture	*f = *state;
	sqlite3_stmt	*q;
	char		 step[256];
	int		 n = 0;

	assert_int_equal(clock_step_sql(step, sizeof(step), "hlc",
	    CLOCK_NOW_MS_SQL), 0);
	assert_int_equal(sqlite3_prepare_v2(store_db(f->store), "SELECT sql "
	    "FROM sqlite_master WHERE type = 'trigger' AND name IN "
	    "('labsync_t1_ins', 'labsync_t1_upd', 'labsync_t1_del')", -1, &q,
	    NULL), SQLITE_OK);
	while (sqlite3_step(q) == SQLITE_ROW) {
		assert_non_null(strstr((const char *)sqlite3_column_text(q, 0),
		    step));
		n++;
	}
	sqlite3_finalize(q);
	assert_int_equal(n, 3);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_validate_refuses_what_the_schema_does_not_allow,
		    setup_store, teardown_store),
		cmocka_unit_test_setup_teardown(test_apply_twice_is_idempotent,
		    setup_store, teardown_store),
		cmocka_unit_test_setup_teardown(
		    test_triggers_stamp_by_the_clock_rule,
		    setup_store, teardown_store),
		cmocka_unit_test_setup_teardown(
		    test_applied_changes_are_served_as_they_came,
		    setup_store, teardown_store),
		cmocka_unit_test_setup_teardown(
		    test_future_change_is_held_until_the_clock_allows,
		    setup_store, teardown_store),
		cmocka_unit_test_setup_teardown(
		    test_local_write_after_remote_change_wins,
		    setup_store, teardown_store),
		cmocka_unit_test_setup_teardown(
		    test_erasure_scrubs_older_values_in_any_order,
		    setup_store, teardown_store),
		cmocka_unit_test(test_merge_is_a_function_of_the_set_of_changes),
		cmocka_unit_test(test_snapshot_between_prefix_and_rest),
		cmocka_unit_test(test_local_writes_interleaved_converge),
		cmocka_unit_test(test_restored_node_fetches_its_own_changes_back),
	};
	char	 why[512] = "";
	int	 local = 0, snap = 0, rc;

	base_ms = fake_ms = fake_local_ms = clock_system_ms() / 1000 * 1000;

	/* rerun one seed: test_merge SEED, or test_merge -l SEED */
	if (argc > 1 && strcmp(argv[1], "-l") == 0) {
		local = 1;
		argc--;
		argv++;
	} else if (argc > 1 && strcmp(argv[1], "-s") == 0) {
		snap = 1;		/* the snapshot property */
		argc--;
		argv++;
	}
	if (argc == 2) {
		uint64_t seed = strtoull(argv[1], NULL, 10);

		if (setup_schema(NULL) == -1)
			return 1;
		rc = local ? local_chunk(seed, 1, 1, why, sizeof(why)) :
		    snap ? snapshot_chunk(seed, 1, why, sizeof(why)) :
		    merge_chunk(seed, 1, why, sizeof(why));
		teardown_schema(NULL);
		if (rc == 0)
			printf("%s seed %llu: ok\n", local ? "local" : snap ?
			    "snapshot" : "merge",
			    (unsigned long long)seed);
		else
			printf("%s\n", why);
		return rc == 0 ? 0 : 1;
	}
	return cmocka_run_group_tests_name("merge", tests, setup_schema,
	    teardown_schema);
}
