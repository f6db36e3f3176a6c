/*
 * fuzz_envelope.c: libFuzzer target over what labsyncd does with one
 * message from a peer: decode and check the envelope (wire_unpack), then,
 * per body, what peer.c, catchup.c and sync.c do with it. A batch is
 * filtered, validated change by change and applied into an in-memory
 * store, like
 * sync_take (as a catch-up answer if `more` is set, else as live feed or
 * catch-up by the input's hash); a snapshot batch is checked and merged
 * like sync_take_snapshot; a hello, ack or heartbeat has its vector
 * measured (vector_lag_behind) and answered (changelog_read_missing), like
 * peer_heard and catchup_serve.
 *
 * Besides the sanitizers it checks promises of the design: a batch that
 * passed validation never fails in SQL, everything the store hands out
 * (outbox, catch-up reads) decodes as a Change again, and a catch-up
 * answer keeps to its bounds.
 *
 * The store persists across inputs, as in the daemon, and is opened anew
 * when its log grows past FUZZ_MAX_LOG so that long runs stay bounded.
 * So a crash may need the state earlier inputs left: if the artifact alone
 * does not reproduce it, run it after the corpus files (fuzz_envelope
 * FILE... runs the files in the order given).
 * The schema comes from $LABSYNC_SCHEMA or SCHEMA_PATH (set by the
 * Makefile). A structure-aware mutator (at the end) keeps most mutants
 * decodable, so that they reach validation and the merge.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "clock.h"
#include "log.h"
#include "store.h"
#include "wire.h"

#ifndef SCHEMA_PATH
#define SCHEMA_PATH	"config/schema.sql"
#endif

#define FUZZ_NODE	"fuzz"
#define FUZZ_MAX_INPUT	(64 * 1024)
#define FUZZ_MAX_LOG	10000	/* changes held before the store is reset */
/* catch-up answers: smaller than the daemon's so that "more" is common */
#define SERVE_CHANGES	100
#define SERVE_BYTES	(32 * 1024)

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char *fuzz_tables[] = { "labs", "themes", "activities", "initiatives",
    "volunteer_offers", "observations" };

static struct clock	*fuzz_clock;
static struct store	*fuzz_store;

static void	mut_learn_schema(void);

static void
fuzz_open(void)
{
	struct store_options	 opt;
	const char		*schema = getenv("LABSYNC_SCHEMA");
	char			 err[512];

	memset(&opt, 0, sizeof(opt));
	opt.path = ":memory:";
	opt.node_id = FUZZ_NODE;
	opt.schema_path = schema != NULL ? schema : SCHEMA_PATH;
	opt.tables = fuzz_tables;
	opt.ntables = sizeof(fuzz_tables) / sizeof(fuzz_tables[0]);
	opt.cache_size_mib = 8;
	opt.max_clock_skew_ms = 60 * 1000;	/* the config's default */
	opt.mode = STORE_DAEMON;
	if ((fuzz_store = store_open(&opt, fuzz_clock, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "fuzz_envelope: %s (set LABSYNC_SCHEMA to "
		    "config/schema.sql)\n", err);
		abort();
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* rejected input is the normal case here: keep stderr for findings */
	log_init("fuzz_envelope", LOG_LEVEL_ERROR);
	if ((fuzz_clock = clock_new(NULL)) == NULL)
		abort();
	fuzz_open();
	mut_learn_schema();
	return 0;
}

struct fuzz_count {
	size_t		 n;
	size_t		 bytes;
};

/* What the store hands to peers must decode; counts it. */
static int
fuzz_count_cb(void *arg, const char *origin, const uint8_t *data,
    size_t len)
{
	struct fuzz_count	*count = arg;
	Labsync__Change		*c;

	if ((c = labsync__change__unpack(NULL, len, data)) == NULL) {
		fprintf(stderr, "fuzz_envelope: the store handed out %zu bytes "
		    "that are not a Change\n", len);
		abort();
	}
	labsync__change__free_unpacked(c, NULL);
	count->n++;
	count->bytes += len;
	return 0;
}

/* sync_take without the daemon around it: each change decoded from its
   packed bytes as it is checked. */
static void
fuzz_batch(Labsync__ChangeBatch *batch, const ProtobufCBinaryData *raw,
    int from_catchup, struct wire_arena *arena)
{
	struct merge_stats  st;
	Labsync__Change		**keep;
	ProtobufCBinaryData	 *keepraw;
	char			  why[256];
	size_t			  n = 0;
	uint64_t		  own = vector_own_seq(fuzz_store);

	if (batch->n_changes > WIRE_MAX_CHANGES)
		return;
	if ((keep = calloc(batch->n_changes + 1, sizeof(*keep))) == NULL ||
	    (keepraw = calloc(batch->n_changes + 1, sizeof(*keepraw))) == NULL)
		abort();
	for (size_t i = 0; i < batch->n_changes; i++) {
		Labsync__Change *c = wire_unpack_change(&raw[i], arena);
		int is_own;

		if (c == NULL)
			goto done;
		is_own = c->origin != NULL && strcmp(c->origin, FUZZ_NODE) == 0;
		if (is_own && (c->seq <= own || !from_catchup))
			continue;
		if (merge_validate(fuzz_store, c, from_catchup, why,
		    sizeof(why)) != REASON_OK)
			goto done;
		keepraw[n] = raw[i];
		keep[n++] = c;
	}
	memset(&st, 0, sizeof(st));
	if (n > 0 && (merge_apply_begin(fuzz_store) == -1 ||
	    merge_apply_more(fuzz_store, keep, keepraw, n, from_catchup,
	    &st) == -1 || merge_apply_end(fuzz_store, 1) == -1)) {
		fprintf(stderr, "fuzz_envelope: a validated batch of %zu "
		    "changes failed to apply\n", n);
		abort();
	}
done:
	free(keep);
	free(keepraw);
}

/* sync_take_snapshot without the daemon: each change decoded from its
   packed bytes and checked, then all merged; the last batch (more unset)
   moves the vector. */
static void
fuzz_snapshot(Labsync__Snapshot *sp, const ProtobufCBinaryData *raw,
    struct wire_arena *arena)
{
	struct merge_stats  st;
	Labsync__Change	  **keep;
	char		    why[256];
	int		    own;

	if (sp->n_changes > WIRE_MAX_CHANGES ||
	    (sp->n_changes > 0 && raw == NULL))
		return;
	if ((keep = calloc(sp->n_changes + 1, sizeof(*keep))) == NULL)
		abort();
	for (size_t i = 0; i < sp->n_changes; i++)
		if ((keep[i] = wire_unpack_change(&raw[i], arena)) == NULL ||
		    merge_validate_snapshot(fuzz_store, keep[i], why,
		    sizeof(why)) != REASON_OK)
			goto done;
	memset(&st, 0, sizeof(st));
	if (merge_apply_begin(fuzz_store) == -1 ||
	    merge_snapshot_more(fuzz_store, keep, sp->n_changes, &st) == -1 ||
	    (!sp->more && st.held == 0 &&
	    merge_snapshot_end(fuzz_store, sp->vector, &own) == -1) ||
	    merge_apply_end(fuzz_store, 1) == -1) {
		fprintf(stderr, "fuzz_envelope: a validated snapshot batch of "
		    "%zu changes failed to apply\n", sp->n_changes);
		abort();
	}
done:
	free(keep);
}

/* catchup_serve and peer_heard: measure the vector, answer it. */
static void
fuzz_vector(const Labsync__Vector *v, int hello)
{
	Labsync__Vector		*mine;
	struct fuzz_count	 count = { 0, 0 };
	int			 more;

	(void)vector_lag_behind(fuzz_store, v);
	if (hello && (mine = vector_new(fuzz_store)) != NULL)
		vector_free(mine);
	if (changelog_read_missing(fuzz_store, v, SERVE_CHANGES, SERVE_BYTES,
	    fuzz_count_cb, &count, &more) == -1) {
		fprintf(stderr, "fuzz_envelope: could not read the log\n");
		abort();
	}
	/* bounded answers: one change may exceed the byte budget alone */
	if (count.n > SERVE_CHANGES ||
	    (count.n > 1 && count.bytes > SERVE_BYTES)) {
		fprintf(stderr, "fuzz_envelope: catch-up answer of %zu changes, "
		    "%zu bytes\n", count.n, count.bytes);
		abort();
	}
}

/* FNV-1a: picks live feed or catch-up, stable for a given input. */
static uint32_t
fuzz_hash(const uint8_t *data, size_t size)
{
	uint32_t	 h = 2166136261u;

	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 16777619u;
	return h;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct wire_arena *arena;
	Labsync__Envelope	*e;
	ProtobufCBinaryData	*raw;
	struct fuzz_count	 count = { 0, 0 };
	char			 why[256];
	enum reason		 r;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	if (arena == NULL && (arena = wire_arena_new()) == NULL)
		abort();
	/* the daemon's decoder: batches keep each change's bytes */
	if ((e = wire_unpack_lazy(data, size, arena, &raw, &r, why,
	    sizeof(why))) == NULL) {
		wire_arena_reset(arena);
		return 0;
	}
	switch (e->body_case) {
	case LABSYNC__ENVELOPE__BODY_BATCH:
		/* only catch-up answers set more; the rest is either */
		/* refused whole, as sync_check_size does */
		if (e->batch->n_changes > 0 && raw == NULL)
			break;
		fuzz_batch(e->batch, raw, e->batch->more ||
		    (fuzz_hash(data, size) & 1), arena);
		break;
	case LABSYNC__ENVELOPE__BODY_HELLO:
		fuzz_vector(e->hello->vector, 1);
		break;
	case LABSYNC__ENVELOPE__BODY_ACK:
		fuzz_vector(e->ack->vector, 0);
		break;
	case LABSYNC__ENVELOPE__BODY_HEARTBEAT:
		fuzz_vector(e->heartbeat->vector, 0);
		break;
	case LABSYNC__ENVELOPE__BODY_SNAPSHOT:
		fuzz_snapshot(e->snapshot, raw, arena);
		break;
	default:
		fprintf(stderr, "fuzz_envelope: wire_unpack let through body "
		    "%d\n", (int)e->body_case);
		abort();
	}
	wire_arena_reset(arena);
	outbox_drain(fuzz_store, fuzz_count_cb, &count);
	if (changelog_count(fuzz_store) > FUZZ_MAX_LOG) {
		store_free(fuzz_store);
		fuzz_open();
	}
	return 0;
}

/*
 * --- structure-aware mutation -------------------------------------------
 *
 * Byte flips rarely keep protobuf lengths intact, so most mutants would
 * die in decoding. Most of the time the mutator decodes the input, edits
 * the messages (names from the real schema, sequences that follow what
 * the store holds, clock ties, value types, reordered, duplicated and new
 * changes) and encodes them again; otherwise, or when the input does not
 * decode, libFuzzer's byte mutations run. Edits are undone before the
 * decoded envelope is freed, so protobuf-c frees only what it allocated.
 */

size_t	LLVMFuzzerMutate(uint8_t *, size_t, size_t);
size_t	LLVMFuzzerCustomMutator(uint8_t *, size_t, size_t, unsigned int);

#define T0		1700000000000ULL	/* ms, as in seeds.c */
#define MUT_UNDO	32
#define MUT_EXTRA	64

struct mut_col {
	char		 name[64];
	char		 type;		/* 'I', 'R', 'T' or 'B' */
};

struct mut_table {
	const char	*name;
	struct mut_col	 cols[STORE_MAX_COLUMNS];
	int		 ncols;
};

struct mut_undo {
	void		*p;
	size_t		 len;
	unsigned char	 saved[128];
};

static struct mut_table	 mut_schema[sizeof(fuzz_tables) /
			    sizeof(fuzz_tables[0])];
static uint64_t		 mut_rng;
static struct mut_undo	 mut_undo[MUT_UNDO];
static int		 mut_nundo;
static void		*mut_extra[MUT_EXTRA];
static int		 mut_nextra;

static const char *const mut_origins[] = { "dortmund", "wuppertal",
    "bochum", "essen", FUZZ_NODE, "", "Dortmund", "dort mund",
    "o23456789012345678901234567890123", "o" };
static const char *const mut_pks[] = { "lab-do", "act-do-1", "ini-1",
    "vo-1", "obs-1", "th-demo", "x", "" };
static const char *const mut_texts[] = { "", "workshop", "Dortmund",
    "\xc3\xa4\xff\xfe", "'); DROP TABLE labs; --", "0", "1.5" };
static const char *const mut_bad_names[] = { "id", "participants",
    "labsync_log", "sqlite_master", "name\"", "" };
static const uint8_t mut_blob[] = { 0x00, 0xff, 0x10 };

/* The synced tables' columns, from the database itself. */
static void
mut_learn_schema(void)
{
	sqlite3_stmt	*st;

	for (size_t i = 0; i < sizeof(mut_schema) / sizeof(mut_schema[0]);
	    i++) {
		struct mut_table *t = &mut_schema[i];

		t->name = fuzz_tables[i];
		t->ncols = 0;
		if (sqlite3_prepare_v2(store_db(fuzz_store), "SELECT name, "
		    "upper(type) FROM pragma_table_info(?) WHERE pk = 0", -1,
		    &st, NULL) != SQLITE_OK)
			abort();
		sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
		while (sqlite3_step(st) == SQLITE_ROW &&
		    t->ncols < STORE_MAX_COLUMNS) {
			const char *ty = (const char *)sqlite3_column_text(st, 1);
			struct mut_col *c = &t->cols[t->ncols++];

			snprintf(c->name, sizeof(c->name), "%s",
			    (const char *)sqlite3_column_text(st, 0));
			c->type = strstr(ty, "INT") ? 'I' : strstr(ty, "REAL") ?
			    'R' : strstr(ty, "TEXT") ? 'T' : 'B';
		}
		sqlite3_finalize(st);
	}
}

/* splitmix64, seeded by libFuzzer: -seed=N stays reproducible. */
static uint64_t
mut_rand(void)
{
	uint64_t z = (mut_rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static size_t
mut_below(size_t n)
{
	return n == 0 ? 0 : (size_t)(mut_rand() % n);
}

#define MUT_PICK(a)	((a)[mut_below(sizeof(a) / sizeof((a)[0]))])

/* Remember an object before editing it; 0 if it cannot be restored. */
static int
mut_save(void *p, size_t len)
{
	if (mut_nundo == MUT_UNDO || len > sizeof(mut_undo[0].saved))
		return 0;
	mut_undo[mut_nundo].p = p;
	mut_undo[mut_nundo].len = len;
	memcpy(mut_undo[mut_nundo].saved, p, len);
	mut_nundo++;
	return 1;
}

static void *
mut_alloc(size_t len)
{
	void	*p;

	if (mut_nextra == MUT_EXTRA || (p = calloc(1, len)) == NULL)
		return NULL;
	return mut_extra[mut_nextra++] = p;
}

static void
mut_restore(void)
{
	while (mut_nundo > 0) {
		mut_nundo--;
		memcpy(mut_undo[mut_nundo].p, mut_undo[mut_nundo].saved,
		    mut_undo[mut_nundo].len);
	}
	while (mut_nextra > 0)
		free(mut_extra[--mut_nextra]);
}

static struct mut_table *
mut_table(const char *name)
{
	for (size_t i = 0; i < sizeof(mut_schema) / sizeof(mut_schema[0]); i++)
		if (name != NULL && strcmp(mut_schema[i].name, name) == 0)
			return &mut_schema[i];
	return NULL;
}

/* An origin the store knows (so its next sequence applies), or any. */
static const char *
mut_origin(void)
{
	Labsync__Vector	*v;
	char		*name = NULL;

	if (mut_below(2) == 0 && (v = vector_new(fuzz_store)) != NULL) {
		if (v->n_entries > 0) {
			const char *o = v->entries[mut_below(v->n_entries)]->origin;

			if ((name = mut_alloc(strlen(o) + 1)) != NULL)
				memcpy(name, o, strlen(o) + 1);
		}
		vector_free(v);
	}
	return name != NULL ? name : MUT_PICK(mut_origins);
}

static uint64_t
mut_seq(const char *origin)
{
	uint64_t	 next = vector_origin_seq(fuzz_store, origin) + 1;

	switch (mut_below(8)) {
	case 0:
		return 0;
	case 1:
		return next + 1 + mut_below(3);		/* a gap */
	case 2:
		return next > 1 ? next - 1 : 1;		/* a duplicate */
	case 3:
		return (1ULL << 40) - mut_below(2);
	case 4:
		return UINT64_MAX;
	default:
		return next;
	}
}

static uint64_t
mut_hlc(void)
{
	switch (mut_below(8)) {
	case 0:
		return 0;
	case 1:
		return (1ULL << 63) - mut_below(2);
	case 2:
		return CLOCK_MAKE(T0 * 3, 0);		/* held back */
	case 3:
		return CLOCK_MAKE(T0, 0xffff);
	default:
		return CLOCK_MAKE(T0 + mut_below(100), mut_below(3));
	}
}

/* A value: of the column's type mostly, of any type sometimes. */
static void
mut_value(Labsync__Value *v, char type)
{
	static const int64_t ints[] = { 0, 1, -1, 23, INT64_MIN, INT64_MAX };
	static const double reals[] = { 0.0, -0.0, 2.5, 1e308, -1e-308 };
	double	 zero = 0.0;

	labsync__value__init(v);
	if (type == 0 || mut_below(6) == 0)
		type = "IRTBN"[mut_below(5)];
	switch (type) {
	case 'I':
		v->kind_case = LABSYNC__VALUE__KIND_INTEGER;
		v->integer = mut_below(2) ? MUT_PICK(ints) : (int64_t)mut_rand();
		break;
	case 'R':
		v->kind_case = LABSYNC__VALUE__KIND_REAL;
		switch (mut_below(8)) {
		case 0:
			v->real = zero / zero;		/* NaN */
			break;
		case 1:
			v->real = 1.0 / zero;		/* infinity */
			break;
		default:
			v->real = MUT_PICK(reals);
			break;
		}
		break;
	case 'T':
		v->kind_case = LABSYNC__VALUE__KIND_TEXT;
		v->text = UNCONST(MUT_PICK(mut_texts));
		break;
	case 'B':
		v->kind_case = LABSYNC__VALUE__KIND_BLOB;
		v->blob.data = UNCONST(mut_blob);
		v->blob.len = mut_below(sizeof(mut_blob) + 1);
		break;
	default:
		v->kind_case = LABSYNC__VALUE__KIND_NULL;
		v->null = 1;
		break;
	}
}

static Labsync__Column *
mut_column_new(const struct mut_table *t)
{
	Labsync__Column	*col;
	Labsync__Value	*v;
	const struct mut_col *mc = NULL;

	if ((col = mut_alloc(sizeof(*col))) == NULL ||
	    (v = mut_alloc(sizeof(*v))) == NULL)
		return NULL;
	labsync__column__init(col);
	if (t != NULL && t->ncols > 0 && mut_below(8) != 0) {
		mc = &t->cols[mut_below(t->ncols)];
		col->name = UNCONST(mc->name);
	} else
		col->name = UNCONST(MUT_PICK(mut_bad_names));
	mut_value(v, mc != NULL ? mc->type : 0);
	col->value = v;
	return col;
}

/* A change that is valid more often than not. */
static Labsync__Change *
mut_change_new(void)
{
	Labsync__Change	*c;
	Labsync__Column	**cols;
	struct mut_table *t = &MUT_PICK(mut_schema);
	size_t		 n = mut_below(4);

	if ((c = mut_alloc(sizeof(*c))) == NULL ||
	    (cols = mut_alloc((n + 1) * sizeof(*cols))) == NULL)
		return NULL;
	labsync__change__init(c);
	c->columns = cols;
	c->origin = UNCONST(mut_origin());
	c->seq = mut_below(4) ? vector_origin_seq(fuzz_store, c->origin) + 1 :
	    mut_seq(c->origin);
	c->hlc = mut_hlc();
	c->table = UNCONST(t->name);
	c->pk = UNCONST(MUT_PICK(mut_pks));
	c->op = mut_below(4) ? LABSYNC__OP__OP_UPSERT : LABSYNC__OP__OP_DELETE;
	if (c->op == LABSYNC__OP__OP_DELETE && mut_below(8) != 0)
		n = 0;
	for (size_t i = 0; i < n; i++)
		if ((c->columns[c->n_columns] = mut_column_new(t)) != NULL)
			c->n_columns++;
	return c;
}

/* Add, drop, duplicate or reorder the changes of a batch. */
static void
mut_batch_shape(Labsync__ChangeBatch *b)
{
	Labsync__Change	**arr, *tmp;
	size_t		  i, j;

	if (!mut_save(b, sizeof(*b)))
		return;
	switch (b->n_changes == 0 ? 0 : mut_below(5)) {
	case 0:		/* a new change, anywhere */
	case 1:		/* a copy of one */
		if ((arr = mut_alloc((b->n_changes + 1) * sizeof(*arr))) ==
		    NULL)
			return;
		if (b->n_changes > 0)
			memcpy(arr, b->changes, b->n_changes * sizeof(*arr));
		i = mut_below(b->n_changes + 1);
		memmove(arr + i + 1, arr + i, (b->n_changes - i) *
		    sizeof(*arr));
		arr[i] = b->n_changes > 0 && mut_below(2) ?
		    b->changes[mut_below(b->n_changes)] : mut_change_new();
		if (arr[i] == NULL)
			return;
		b->changes = arr;
		b->n_changes++;
		break;
	case 2:		/* drop one (it stays in the array, for the free) */
		i = mut_below(b->n_changes);
		tmp = b->changes[i];
		b->changes[i] = b->changes[b->n_changes - 1];
		b->changes[b->n_changes - 1] = tmp;
		b->n_changes--;
		break;
	case 3:		/* swap two */
		i = mut_below(b->n_changes);
		j = mut_below(b->n_changes);
		tmp = b->changes[i];
		b->changes[i] = b->changes[j];
		b->changes[j] = tmp;
		break;
	default:
		b->more = !b->more;
		break;
	}
}

/* Edit one field of one change. */
static void
mut_change_edit(Labsync__Change *c, Labsync__ChangeBatch *b)
{
	struct mut_table *t = mut_table(c->table);
	Labsync__Column	**arr, *col;

	if (!mut_save(c, sizeof(*c)))
		return;
	switch (mut_below(10)) {
	case 0:
		c->origin = UNCONST(mut_origin());
		break;
	case 1:
		c->seq = mut_seq(c->origin);
		break;
	case 2:		/* the same clock as another change: a tie */
		c->hlc = mut_below(2) ? mut_hlc() :
		    b->changes[mut_below(b->n_changes)]->hlc;
		break;
	case 3:
		c->table = UNCONST(mut_below(4) ? MUT_PICK(mut_schema).name :
		    MUT_PICK(mut_bad_names));
		break;
	case 4:
		c->pk = UNCONST(MUT_PICK(mut_pks));
		break;
	case 5:
		c->op = mut_below(4) ? !c->op : (Labsync__Op)mut_below(8);
		break;
	case 6:		/* a column more (maybe one already there) */
		if ((arr = mut_alloc((c->n_columns + 1) * sizeof(*arr))) ==
		    NULL || (col = mut_column_new(t)) == NULL)
			return;
		if (c->n_columns > 0)
			memcpy(arr, c->columns, c->n_columns * sizeof(*arr));
		arr[c->n_columns] = mut_below(4) || c->n_columns == 0 ? col :
		    c->columns[mut_below(c->n_columns)];
		c->columns = arr;
		c->n_columns++;
		break;
	case 7:		/* a column less */
		if (c->n_columns > 0)
			c->n_columns--;
		break;
	default:	/* a column's value or name */
		if (c->n_columns == 0)
			return;
		col = c->columns[mut_below(c->n_columns)];
		if (!mut_save(col, sizeof(*col)))
			return;
		if (mut_below(3) == 0) {
			Labsync__Column *n = mut_column_new(t);

			if (n != NULL)
				col->name = n->name;
		} else if (col->value != NULL && mut_save(col->value,
		    sizeof(*col->value))) {
			const struct mut_col *mc = NULL;

			for (int i = 0; t != NULL && i < t->ncols; i++)
				if (strcmp(t->cols[i].name, col->name) == 0)
					mc = &t->cols[i];
			mut_value(col->value, mc != NULL ? mc->type : 0);
		}
		break;
	}
}

/* Edit a version vector (hello, ack, heartbeat). */
static void
mut_vector_edit(Labsync__Vector **vp)
{
	Labsync__Vector		*v = *vp;
	Labsync__VectorEntry	**arr, *e;

	if (v == NULL) {
		if ((v = mut_alloc(sizeof(*v))) == NULL)
			return;
		labsync__vector__init(v);
		*vp = v;
	}
	if (!mut_save(v, sizeof(*v)))
		return;
	if (v->n_entries == 0 || mut_below(3) == 0) {
		if ((arr = mut_alloc((v->n_entries + 1) * sizeof(*arr))) ==
		    NULL || (e = mut_alloc(sizeof(*e))) == NULL)
			return;
		labsync__vector_entry__init(e);
		e->origin = UNCONST(mut_origin());
		e->seq = mut_seq(e->origin);
		if (v->n_entries > 0)
			memcpy(arr, v->entries, v->n_entries * sizeof(*arr));
		arr[v->n_entries] = e;
		v->entries = arr;
		v->n_entries++;
		return;
	}
	e = v->entries[mut_below(v->n_entries)];
	if (!mut_save(e, sizeof(*e)))
		return;
	if (mut_below(3) == 0)
		e->origin = UNCONST(mut_origin());
	else
		e->seq = mut_below(2) ? mut_seq(e->origin) : mut_rand();
}

static void
mut_envelope(Labsync__Envelope *e)
{
	Labsync__ChangeBatch	*b;

	switch (e->body_case) {
	case LABSYNC__ENVELOPE__BODY_BATCH:
		b = e->batch;
		if (b->n_changes == 0 || mut_below(3) == 0)
			mut_batch_shape(b);
		else
			mut_change_edit(b->changes[mut_below(b->n_changes)], b);
		break;
	case LABSYNC__ENVELOPE__BODY_HELLO:
		if (mut_save(e->hello, sizeof(*e->hello)))
			mut_vector_edit(&e->hello->vector);
		break;
	case LABSYNC__ENVELOPE__BODY_ACK:
		if (mut_save(e->ack, sizeof(*e->ack)))
			mut_vector_edit(&e->ack->vector);
		break;
	case LABSYNC__ENVELOPE__BODY_HEARTBEAT:
		if (mut_save(e->heartbeat, sizeof(*e->heartbeat)))
			mut_vector_edit(&e->heartbeat->vector);
		break;
	default:
		break;
	}
}

size_t
LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
    unsigned int seed)
{
	Labsync__Envelope	*e;
	uint8_t			*buf;
	size_t			 len;

	mut_rng = seed;
	if (mut_below(5) == 0 ||
	    (e = labsync__envelope__unpack(NULL, size, data)) == NULL)
		return LLVMFuzzerMutate(data, size, max_size);
	for (size_t i = 0, n = 1 + mut_below(3); i < n; i++)
		mut_envelope(e);
	len = labsync__envelope__get_packed_size(e);
	if (len <= max_size && (buf = malloc(len ? len : 1)) != NULL) {
		labsync__envelope__pack(e, buf);
		memcpy(data, buf, len);
		free(buf);
	} else
		len = 0;
	mut_restore();
	labsync__envelope__free_unpacked(e, NULL);
	return len > 0 ? len : LLVMFuzzerMutate(data, size, max_size);
}
