/*
 * seeds.c: writes the fuzzer's seed corpus, one valid Envelope per file,
 * into the directory given as the argument (created if missing): every
 * body type, upserts of every value type into real columns of
 * config/schema.sql, deletes, a revive, a gap, a change from the future,
 * changes of the fuzz node's own (a catch-up answer: `more` set), and a
 * batch packed as the daemon forwards it (wire_batch_pack). Fixed clocks:
 * the same bytes every time.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clock.h"
#include "wire.h"

#define T0	1700000000000ULL	/* 2023-11-14, ms */

static const char	*seeds_dir;
static int		 seeds_n;

/* Values and changes live until exit: a short run, the OS frees them. */
static Labsync__Value *
val_text(const char *s)
{
	Labsync__Value	*v = calloc(1, sizeof(*v));

	labsync__value__init(v);
	v->kind_case = LABSYNC__VALUE__KIND_TEXT;
	v->text = UNCONST(s);
	return v;
}

static Labsync__Value *
val_int(int64_t i)
{
	Labsync__Value	*v = calloc(1, sizeof(*v));

	labsync__value__init(v);
	v->kind_case = LABSYNC__VALUE__KIND_INTEGER;
	v->integer = i;
	return v;
}

static Labsync__Value *
val_real(double d)
{
	Labsync__Value	*v = calloc(1, sizeof(*v));

	labsync__value__init(v);
	v->kind_case = LABSYNC__VALUE__KIND_REAL;
	v->real = d;
	return v;
}

static Labsync__Value *
val_null(void)
{
	Labsync__Value	*v = calloc(1, sizeof(*v));

	labsync__value__init(v);
	v->kind_case = LABSYNC__VALUE__KIND_NULL;
	v->null = 1;
	return v;
}

static Labsync__Value *
val_blob(const void *data, size_t len)
{
	Labsync__Value	*v = calloc(1, sizeof(*v));

	labsync__value__init(v);
	v->kind_case = LABSYNC__VALUE__KIND_BLOB;
	v->blob.data = UNCONST(data);
	v->blob.len = len;
	return v;
}

/* change(origin, seq, hlc, table, pk, op, name, value, ..., NULL) */
static Labsync__Change *
change(const char *origin, uint64_t seq, uint64_t hlc, const char *table,
    const char *pk, Labsync__Op op, ...)
{
	Labsync__Change	*c = calloc(1, sizeof(*c));
	const char	*name;
	va_list		 ap;

	labsync__change__init(c);
	c->origin = UNCONST(origin);
	c->seq = seq;
	c->hlc = hlc;
	c->table = UNCONST(table);
	c->pk = UNCONST(pk);
	c->op = op;
	c->columns = calloc(16, sizeof(*c->columns));
	va_start(ap, op);
	while ((name = va_arg(ap, const char *)) != NULL) {
		Labsync__Column *col = calloc(1, sizeof(*col));

		labsync__column__init(col);
		col->name = UNCONST(name);
		col->value = va_arg(ap, Labsync__Value *);
		c->columns[c->n_columns++] = col;
	}
	va_end(ap);
	return c;
}

static Labsync__Vector *
vector(size_t n, ...)
{
	Labsync__Vector	*v = calloc(1, sizeof(*v));
	va_list		 ap;

	labsync__vector__init(v);
	v->entries = calloc(n + 1, sizeof(*v->entries));
	va_start(ap, n);
	for (size_t i = 0; i < n; i++) {
		Labsync__VectorEntry *e = calloc(1, sizeof(*e));

		labsync__vector_entry__init(e);
		e->origin = UNCONST(va_arg(ap, const char *));
		e->seq = va_arg(ap, uint64_t);
		v->entries[v->n_entries++] = e;
	}
	va_end(ap);
	return v;
}

static void
write_seed(const char *name, const uint8_t *buf, size_t len)
{
	char	 path[4096];
	FILE	*f;

	snprintf(path, sizeof(path), "%s/%02d-%s", seeds_dir, ++seeds_n, name);
	if ((f = fopen(path, "wb")) == NULL ||
	    fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
		fprintf(stderr, "seeds: %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

static void
write_envelope(const char *name, Labsync__Envelope *e, const char *sender)
{
	uint8_t	*buf;
	size_t	 len;
	char	 why[256];
	enum reason r;
	Labsync__Envelope *back;

	if ((buf = wire_pack(e, sender, &len)) == NULL)
		exit(1);
	/* a seed the daemon refuses to decode would be no seed at all */
	if ((back = wire_unpack(buf, len, NULL, &r, why, sizeof(why))) ==
	    NULL) {
		fprintf(stderr, "seeds: %s does not decode: %s\n", name, why);
		exit(1);
	}
	wire_free(back);
	write_seed(name, buf, len);
	free(buf);
}

static void
write_batch(const char *name, const char *sender, int more, size_t n, ...)
{
	Labsync__Envelope	 e = LABSYNC__ENVELOPE__INIT;
	Labsync__ChangeBatch	 b = LABSYNC__CHANGE_BATCH__INIT;
	Labsync__Change		*c[16];
	va_list			 ap;

	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		c[i] = va_arg(ap, Labsync__Change *);
	va_end(ap);
	b.changes = c;
	b.n_changes = n;
	b.more = more;
	e.body_case = LABSYNC__ENVELOPE__BODY_BATCH;
	e.batch = &b;
	write_envelope(name, &e, sender);
}

static void
write_hello(const char *name, const char *node, Labsync__Vector *v)
{
	Labsync__Envelope	 e = LABSYNC__ENVELOPE__INIT;
	Labsync__Hello		 h = LABSYNC__HELLO__INIT;
	static uint8_t		 fp[32] = { 0x6c, 0x61, 0x62, 0x73 };

	h.node_id = UNCONST(node);
	h.role = LABSYNC__ROLE__ROLE_CITY;
	h.protocol_version = WIRE_VERSION;
	h.schema_fingerprint.data = fp;
	h.schema_fingerprint.len = sizeof(fp);
	h.vector = v;
	e.body_case = LABSYNC__ENVELOPE__BODY_HELLO;
	e.hello = &h;
	write_envelope(name, &e, node);
}

/* Forwarded as the daemon does: changes packed once, never decoded. */
static void
write_packed(const char *name, const char *sender, int more, size_t n, ...)
{
	struct wire_batch	 b;
	uint8_t			*buf, *one;
	size_t			 len;
	va_list			 ap;

	wire_batch_init(&b);
	va_start(ap, n);
	for (size_t i = 0; i < n; i++) {
		Labsync__Change *c = va_arg(ap, Labsync__Change *);

		len = labsync__change__get_packed_size(c);
		if ((one = malloc(len ? len : 1)) == NULL)
			exit(1);
		labsync__change__pack(c, one);
		if (wire_batch_add(&b, one, len) == -1)
			exit(1);
		free(one);
	}
	va_end(ap);
	if ((buf = wire_batch_pack(&b, sender, more, &len)) == NULL)
		exit(1);
	write_seed(name, buf, len);
	free(buf);
	wire_batch_free(&b);
}

int
main(int argc, char *argv[])
{
	Labsync__Envelope	 e = LABSYNC__ENVELOPE__INIT;
	Labsync__Ack		 ack = LABSYNC__ACK__INIT;
	Labsync__Heartbeat	 hb = LABSYNC__HEARTBEAT__INIT;
	static const uint8_t	 blob[] = { 0x00, 0xff, 0x10, 0x80 };
	const Labsync__Op	 UP = LABSYNC__OP__OP_UPSERT;
	const Labsync__Op	 DEL = LABSYNC__OP__OP_DELETE;
	Labsync__Change		*erase;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	seeds_dir = argv[1];
	if (mkdir(seeds_dir, 0777) == -1 && errno != EEXIST) {
		fprintf(stderr, "seeds: %s: %s\n", seeds_dir, strerror(errno));
		return 1;
	}

	write_hello("hello-vector", "wuppertal",
	    vector(3, "dortmund", (uint64_t)1, "wuppertal", (uint64_t)4,
	    "fuzz", (uint64_t)2));
	write_hello("hello-empty", "observer", NULL);

	/*
	 * libFuzzer runs seeds in its own order, so each batch starts its
	 * origin at sequence 1; they share rows, so their merges meet.
	 */
	write_batch("batch-labs-text", "dortmund", 0, 1,
	    change("dortmund", 1, CLOCK_MAKE(T0, 0), "labs", "lab-do", UP,
	    "city", val_text("Dortmund"), "name", val_text("KoSI-Lab Dortmund"),
	    "description", val_text("Quartier Nordstadt \xc3\xa4"), NULL));
	write_batch("batch-activity-int-null", "essen", 0, 2,
	    change("essen", 1, CLOCK_MAKE(T0 + 10, 0), "activities",
	    "act-do-1", UP, "lab_id", val_text("lab-do"), "kind",
	    val_text("workshop"), "title", val_text("School and business"),
	    "participants", val_int(23), "summary", val_null(), NULL),
	    change("essen", 2, CLOCK_MAKE(T0 + 10, 1), "themes", "th-demo",
	    UP, "title", val_text("demographic change"), NULL));
	write_batch("batch-volunteer-real", "hagen", 0, 1,
	    change("hagen", 1, CLOCK_MAKE(T0 + 20, 0), "volunteer_offers",
	    "vo-1", UP, "organisation", val_text("Caritas"),
	    "hours_per_week", val_real(2.5), "status", val_text("open"), NULL));
	write_batch("batch-delete", "bochum", 0, 1,
	    change("bochum", 1, CLOCK_MAKE(T0 + 30, 0), "activities",
	    "act-do-1", DEL, NULL));

	/* an erasure after a write, then an older write of the row from
	   another origin: logged without its values */
	erase = change("essen", 2, CLOCK_MAKE(T0 + 35, 0), "activities",
	    "act-es-1", LABSYNC__OP__OP_ERASE, NULL);
	erase->erased_by = UNCONST("dpo");
	erase->asked_ms = T0 + 35;
	write_batch("batch-erase", "essen", 0, 2,
	    change("essen", 1, CLOCK_MAKE(T0 + 31, 0), "activities",
	    "act-es-1", UP, "title", val_text("to be erased"), NULL), erase);
	write_batch("batch-erased-late", "herne", 0, 1,
	    change("herne", 1, CLOCK_MAKE(T0 + 33, 0), "activities",
	    "act-es-1", UP, "summary", val_text("older than the erasure"),
	    NULL));

	/* integer into a REAL column, edit, delete, revive */
	write_batch("batch-multi", "wuppertal", 0, 4,
	    change("wuppertal", 1, CLOCK_MAKE(T0 + 5, 0), "observations",
	    "obs-1", UP, "activity_id", val_text("act-do-1"), "value",
	    val_int(7), "indicator", val_text("attendance"), NULL),
	    change("wuppertal", 2, CLOCK_MAKE(T0 + 6, 0), "initiatives",
	    "ini-1", UP, "stage", val_text("pilot"), "partners",
	    val_text("Stadt Wuppertal, BUW"), NULL),
	    change("wuppertal", 3, CLOCK_MAKE(T0 + 40, 0), "initiatives",
	    "ini-1", DEL, NULL),
	    change("wuppertal", 4, CLOCK_MAKE(T0 + 50, 0), "initiatives",
	    "ini-1", UP, "stage", val_text("running"), NULL));
	/* two origins edit columns of one row at the same hlc */
	write_batch("batch-concurrent", "unna", 0, 2,
	    change("unna", 1, CLOCK_MAKE(T0 + 60, 0), "labs", "lab-do",
	    UP, "name", val_text("Lab Nord"), NULL),
	    change("witten", 1, CLOCK_MAKE(T0 + 60, 0), "labs", "lab-do",
	    UP, "description", val_text("renamed"), "name", val_text("Lab N"),
	    NULL));
	write_packed("packed-batch-more", "herne", 1, 3,
	    change("herne", 1, CLOCK_MAKE(T0 + 70, 0), "themes", "th-urb",
	    UP, "title", val_text("urban development"), "description",
	    val_null(), NULL),
	    change("herne", 2, CLOCK_MAKE(T0 + 71, 0), "observations",
	    "obs-1", UP, "value", val_real(-0.125), "observed_at",
	    val_text("2024-03-01T10:00:00Z"), NULL),
	    change("herne", 3, CLOCK_MAKE(T0 + 72, 3), "volunteer_offers",
	    "vo-1", DEL, NULL));
	write_packed("packed-batch-empty", "herne", 0, 0);

	/* a gap, the future, our own (catch-up: more), a refused blob */
	write_batch("batch-gap", "bottrop", 0, 2,
	    change("bottrop", 1, CLOCK_MAKE(T0 + 80, 0), "activities",
	    "act-bo", UP, "participants",
	    val_int(-9223372036854775807LL - 1), NULL),
	    change("bottrop", 3, CLOCK_MAKE(T0 + 81, 0), "activities",
	    "act-bo", UP, "status", val_text("done"), NULL));
	write_batch("batch-future", "moers", 0, 1,
	    change("moers", 1, CLOCK_MAKE(T0 * 3, 0), "labs", "lab-fut",
	    UP, "name", val_text("from the future"), NULL));
	write_batch("batch-own-fetched-back", "wuppertal", 1, 2,
	    change("fuzz", 1, CLOCK_MAKE(T0 + 90, 0), "themes", "th-own", UP,
	    "title", val_text("ours"), NULL),
	    change("fuzz", 2, CLOCK_MAKE(T0 + 91, 0), "labs", "lab-do", DEL,
	    NULL));
	write_batch("batch-blob-refused", "soest", 0, 1,
	    change("soest", 1, CLOCK_MAKE(T0 + 100, 0), "labs", "lab-bl",
	    UP, "name", val_blob(blob, sizeof(blob)), NULL));

	/* snapshot batches: states of seq 0, the last with the vector */
	{
		Labsync__Snapshot	 sp = LABSYNC__SNAPSHOT__INIT;
		Labsync__Change		*sc[3];

		sc[0] = change("dortmund", 0, CLOCK_MAKE(T0 + 300, 0), "labs",
		    "lab-snap", UP, "name", val_text("Lab S"), "city",
		    val_text("Dortmund"), NULL);
		sc[1] = change("herne", 0, CLOCK_MAKE(T0 + 301, 1), "labs",
		    "lab-snap", UP, "name", val_text("Lab S, renamed"), NULL);
		sc[2] = change("fuzz", 0, CLOCK_MAKE(T0 + 302, 0), "themes",
		    "th-gone", DEL, NULL);
		sp.changes = sc;
		sp.n_changes = 3;
		sp.more = 1;
		sp.rows_total = 3;
		sp.rows_sent = 2;
		e.body_case = LABSYNC__ENVELOPE__BODY_SNAPSHOT;
		e.snapshot = &sp;
		write_envelope("snapshot-first", &e, "dortmund");
		sp.n_changes = 1;
		sp.changes = &sc[2];
		sp.more = 0;
		sp.rows_from = 2;
		sp.rows_sent = 3;
		sp.vector = vector(3, "dortmund", (uint64_t)40, "herne",
		    (uint64_t)7, "fuzz", (uint64_t)2);
		write_envelope("snapshot-last", &e, "dortmund");
	}

	ack.vector = vector(2, "dortmund", (uint64_t)1, "bottrop", (uint64_t)1);
	e.body_case = LABSYNC__ENVELOPE__BODY_ACK;
	e.ack = &ack;
	write_envelope("ack-vector", &e, "wuppertal");

	hb.node_id = UNCONST("dortmund");
	hb.hlc = CLOCK_MAKE(T0 + 200, 0);
	hb.vector = vector(2, "dortmund", (uint64_t)3, "herne", (uint64_t)1);
	e.body_case = LABSYNC__ENVELOPE__BODY_HEARTBEAT;
	e.heartbeat = &hb;
	write_envelope("heartbeat", &e, "dortmund");
	return 0;
}
