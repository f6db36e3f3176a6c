/*
 * test_wire.c: envelopes survive wire_pack and wire_unpack field for
 * field, for every body type and every kind of value; changes packed one
 * by one into a PackedBatch decode as an ordinary ChangeBatch; malformed
 * input is refused with a reason; a snapshot batch decodes both whole
 * and with its changes kept packed.
 *
 * `test_wire --emit FILE` writes one packed batch envelope to FILE, for
 * tests/integration/test_wire_google_decode.sh (Google's protoc must
 * decode our wire format).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "wire.h"

/* A sample batch: changes whose values cover every kind. */
#define SAMPLE_CHANGES	3
#define SAMPLE_COLS	9

struct sample {
	Labsync__Change	 changes[SAMPLE_CHANGES];
	Labsync__Change	*changep[SAMPLE_CHANGES];
	Labsync__Column	 cols[SAMPLE_COLS];
	Labsync__Column	*colp[SAMPLE_COLS];
	Labsync__Value	 vals[SAMPLE_COLS];
};

static const uint8_t blob_bytes[] = { 0x00, 0x01, 0x00, 0xfe, 0xff, 0x00 };

static void
sample_column(struct sample *s, int i, const char *name)
{
	labsync__column__init(&s->cols[i]);
	labsync__value__init(&s->vals[i]);
	s->cols[i].name = UNCONST(name);
	s->cols[i].value = &s->vals[i];
	s->colp[i] = &s->cols[i];
}

/*
 * Change 0 (dortmund, upsert): null, integers (negative, both INT64
 * extremes), real, ASCII and UTF-8 text, a blob with zero bytes, an empty
 * blob. Change 1 (wuppertal, delete). Change 2 (an upsert of one column).
 */
static void
sample_init(struct sample *s)
{
	Labsync__Change	*c;

	memset(s, 0, sizeof(*s));
	sample_column(s, 0, "note");
	s->vals[0].kind_case = LABSYNC__VALUE__KIND_NULL;
	s->vals[0].null = 1;
	sample_column(s, 1, "participants");
	s->vals[1].kind_case = LABSYNC__VALUE__KIND_INTEGER;
	s->vals[1].integer = -42;
	sample_column(s, 2, "big");
	s->vals[2].kind_case = LABSYNC__VALUE__KIND_INTEGER;
	s->vals[2].integer = INT64_MAX;
	sample_column(s, 3, "small");
	s->vals[3].kind_case = LABSYNC__VALUE__KIND_INTEGER;
	s->vals[3].integer = INT64_MIN;
	sample_column(s, 4, "score");
	s->vals[4].kind_case = LABSYNC__VALUE__KIND_REAL;
	s->vals[4].real = 2.5;
	sample_column(s, 5, "title");
	s->vals[5].kind_case = LABSYNC__VALUE__KIND_TEXT;
	s->vals[5].text = UNCONST("Workshop");
	sample_column(s, 6, "city");
	s->vals[6].kind_case = LABSYNC__VALUE__KIND_TEXT;
	s->vals[6].text = UNCONST("Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln "
	    "\xe2\x82\xac");
	sample_column(s, 7, "photo");
	s->vals[7].kind_case = LABSYNC__VALUE__KIND_BLOB;
	s->vals[7].blob.data = UNCONST(blob_bytes);
	s->vals[7].blob.len = sizeof(blob_bytes);
	sample_column(s, 8, "empty");
	s->vals[8].kind_case = LABSYNC__VALUE__KIND_BLOB;
	s->vals[8].blob.data = NULL;
	s->vals[8].blob.len = 0;

	c = &s->changes[0];
	labsync__change__init(c);
	c->origin = UNCONST("dortmund");
	c->seq = 1;
	c->hlc = 0x18c2f5a1b2c30001ULL;
	c->table = UNCONST("activities");
	c->pk = UNCONST("act-do-1");
	c->op = LABSYNC__OP__OP_UPSERT;
	c->columns = s->colp;
	c->n_columns = 9;

	c = &s->changes[1];
	labsync__change__init(c);
	c->origin = UNCONST("wuppertal");
	c->seq = 17;
	c->hlc = 0x18c2f5a1b2c40000ULL;
	c->table = UNCONST("labs");
	c->pk = UNCONST("lab-wu");
	c->op = LABSYNC__OP__OP_DELETE;

	c = &s->changes[2];
	labsync__change__init(c);
	c->origin = UNCONST("dortmund");
	c->seq = 2;
	c->hlc = 0xffffffffffff7fffULL >> 1;
	c->table = UNCONST("activities");
	c->pk = UNCONST("act-do-1");
	c->op = LABSYNC__OP__OP_UPSERT;
	c->columns = &s->colp[5];
	c->n_columns = 1;

	for (int i = 0; i < SAMPLE_CHANGES; i++)
		s->changep[i] = &s->changes[i];
}

static void
assert_value_equal(const Labsync__Value *a, const Labsync__Value *b)
{
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(a->kind_case, b->kind_case);
	switch (a->kind_case) {
	case LABSYNC__VALUE__KIND_NULL:
		assert_int_equal(a->null, b->null);
		break;
	case LABSYNC__VALUE__KIND_INTEGER:
		assert_true(a->integer == b->integer);
		break;
	case LABSYNC__VALUE__KIND_REAL:
		assert_memory_equal(&a->real, &b->real, sizeof(a->real));
		break;
	case LABSYNC__VALUE__KIND_TEXT:
		assert_string_equal(a->text, b->text);
		break;
	case LABSYNC__VALUE__KIND_BLOB:
		assert_int_equal(a->blob.len, b->blob.len);
		if (a->blob.len > 0)
			assert_memory_equal(a->blob.data, b->blob.data,
			    a->blob.len);
		break;
	default:
		fail_msg("value without a kind");
	}
}

static void
assert_change_equal(const Labsync__Change *a, const Labsync__Change *b)
{
	assert_string_equal(a->origin, b->origin);
	assert_true(a->seq == b->seq);
	assert_true(a->hlc == b->hlc);
	assert_string_equal(a->table, b->table);
	assert_string_equal(a->pk, b->pk);
	assert_int_equal(a->op, b->op);
	assert_int_equal(a->n_columns, b->n_columns);
	for (size_t i = 0; i < a->n_columns; i++) {
		assert_string_equal(a->columns[i]->name, b->columns[i]->name);
		assert_value_equal(a->columns[i]->value, b->columns[i]->value);
	}
}

static void
assert_vector_equal(const Labsync__Vector *a, const Labsync__Vector *b)
{
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(a->n_entries, b->n_entries);
	for (size_t i = 0; i < a->n_entries; i++) {
		assert_string_equal(a->entries[i]->origin,
		    b->entries[i]->origin);
		assert_true(a->entries[i]->seq == b->entries[i]->seq);
	}
}

/* Pack e as sender, unpack it, check the envelope's own fields. */
static Labsync__Envelope *
round_trip(Labsync__Envelope *e, const char *sender)
{
	Labsync__Envelope	*out;
	uint8_t			*buf;
	size_t			 len;
	char			 why[256] = "";
	enum reason		 r;

	buf = wire_pack(e, sender, &len);
	assert_non_null(buf);
	assert_true(len > 0);
	out = wire_unpack(buf, len, NULL, &r, why, sizeof(why));
	free(buf);
	if (out == NULL)
		fail_msg("wire_unpack: %s", why);
	assert_int_equal(r, REASON_OK);
	assert_int_equal(out->version, WIRE_VERSION);
	assert_string_equal(out->sender, sender);
	assert_int_equal(out->body_case, e->body_case);
	return out;
}

/* Three vector entries, the middle one at a large sequence. */
struct sample_vector {
	Labsync__Vector		 v;
	Labsync__VectorEntry	 e[3];
	Labsync__VectorEntry	*ep[3];
};

static void
sample_vector_init(struct sample_vector *sv)
{
	static const char *const names[] = { "dortmund", "wuppertal",
	    "observer-1" };
	static const uint64_t seqs[] = { 1, (1ULL << 40) - 1, 12345 };

	labsync__vector__init(&sv->v);
	for (int i = 0; i < 3; i++) {
		labsync__vector_entry__init(&sv->e[i]);
		sv->e[i].origin = UNCONST(names[i]);
		sv->e[i].seq = seqs[i];
		sv->ep[i] = &sv->e[i];
	}
	sv->v.entries = sv->ep;
	sv->v.n_entries = 3;
}

static void
test_hello_round_trip(void **state)
{
	Labsync__Envelope	 e = LABSYNC__ENVELOPE__INIT, *out;
	Labsync__Hello		 h = LABSYNC__HELLO__INIT;
	struct sample_vector	 sv;
	uint8_t			 fp[32];

	(void)state;
	for (int i = 0; i < 32; i++)
		fp[i] = (uint8_t)(i * 37);	/* fp[0] is a zero byte */
	sample_vector_init(&sv);
	h.node_id = UNCONST("dortmund");
	h.role = LABSYNC__ROLE__ROLE_OBSERVER;
	h.protocol_version = WIRE_VERSION;
	h.schema_fingerprint.data = fp;
	h.schema_fingerprint.len = sizeof(fp);
	h.vector = &sv.v;
	e.body_case = LABSYNC__ENVELOPE__BODY_HELLO;
	e.hello = &h;

	out = round_trip(&e, "dortmund");
	assert_string_equal(out->hello->node_id, "dortmund");
	assert_int_equal(out->hello->role, LABSYNC__ROLE__ROLE_OBSERVER);
	assert_int_equal(out->hello->protocol_version, WIRE_VERSION);
	assert_int_equal(out->hello->schema_fingerprint.len, sizeof(fp));
	assert_memory_equal(out->hello->schema_fingerprint.data, fp,
	    sizeof(fp));
	assert_vector_equal(out->hello->vector, &sv.v);
	assert_int_equal(out->body_case, LABSYNC__ENVELOPE__BODY_HELLO);
	wire_free(out);
}

static void
test_batch_round_trip_keeps_every_value_kind(void **state)
{
	Labsync__Envelope	 e = LABSYNC__ENVELOPE__INIT, *out;
	Labsync__ChangeBatch	 b = LABSYNC__CHANGE_BATCH__INIT;
	struct sample		 s;

	(void)state;
	sample_init(&s);
	b.changes = s.changep;
	b.n_changes = SAMPLE_CHANGES;
	b.more = 1;
	e.body_case = LABSYNC__ENVELOPE__BODY_BATCH;
	e.batch = &b;

	out = round_trip(&e, "wuppertal");
	assert_int_equal(out->batch->n_changes, SAMPLE_CHANGES);
	assert_true(out->batch->more);
	for (int i = 0; i < SAMPLE_CHANGES; i++)
		assert_change_equal(out->batch->changes[i], &s.changes[i]);
	/* spot checks, independent of the comparison helpers */
	assert_true(out->batch->changes[0]->columns[2]->value->integer ==
	    INT64_MAX);
	assert_true(out->batch->changes[0]->columns[3]->value->integer ==
	    INT64_MIN);
	assert_int_equal(out->batch->changes[0]->columns[7]->value->blob.len,
	    6);
	assert_int_equal(out->batch->changes[0]->columns[8]->value->kind_case,
	    LABSYNC__VALUE__KIND_BLOB);
	assert_int_equal(out->body_case, LABSYNC__ENVELOPE__BODY_BATCH);
	wire_free(out);
}

static void
test_empty_batch_round_trip(void **state)
{
	Labsync__Envelope	 e = LABSYNC__ENVELOPE__INIT, *out;
	Labsync__ChangeBatch	 b = LABSYNC__CHANGE_BATCH__INIT;

	(void)state;
	e.body_case = LABSYNC__ENVELOPE__BODY_BATCH;
	e.batch = &b;
	out = round_trip(&e, "x");
	assert_int_equal(out->batch->n_changes, 0);
	assert_false(out->batch->more);
	wire_free(out);
}

static void
test_ack_round_trip(void **state)
{
	Labsync__Envelope	 e = LABSYNC__ENVELOPE__INIT, *out;
	Labsync__Ack		 a = LABSYNC__ACK__INIT;
	struct sample_vector	 sv;

	(void)state;
	sample_vector_init(&sv);
	a.vector = &sv.v;
	e.body_case = LABSYNC__ENVELOPE__BODY_ACK;
	e.ack = &a;
	out = round_trip(&e, "observer-1");
	assert_vector_equal(out->ack->vector, &sv.v);
	assert_int_equal(out->body_case, LABSYNC__ENVELOPE__BODY_ACK);
	wire_free(out);
}

static void
test_heartbeat_round_trip(void **state)
{
	Labsync__Envelope	 e = LABSYNC__ENVELOPE__INIT, *out;
	Labsync__Heartbeat	 hb = LABSYNC__HEARTBEAT__INIT;
	struct sample_vector	 sv;

	(void)state;
	sample_vector_init(&sv);
	hb.node_id = UNCONST("wuppertal");
	hb.hlc = 0x7fffffffffffffffULL;
	hb.vector = &sv.v;
	e.body_case = LABSYNC__ENVELOPE__BODY_HEARTBEAT;
	e.heartbeat = &hb;
	out = round_trip(&e, "wuppertal");
	assert_string_equal(out->heartbeat->node_id, "wuppertal");
	assert_true(out->heartbeat->hlc == 0x7fffffffffffffffULL);
	assert_vector_equal(out->heartbeat->vector, &sv.v);
	assert_int_equal(out->body_case, LABSYNC__ENVELOPE__BODY_HEARTBEAT);
	wire_free(out);
}

/* Changes packed one by one decode as an ordinary ChangeBatch. */
static void
test_packed_batch_decodes_as_change_batch(void **state)
{
	struct wire_batch	 wb;
	struct sample		 s;
	Labsync__Envelope	*out;
	uint8_t			*buf, *one;
	size_t			 len, bytes = 0;
	char			 why[256] = "";
	enum reason		 r;

	(void)state;
	sample_init(&s);
	wire_batch_init(&wb);
	for (int round = 0; round < 2; round++) {
		bytes = 0;
		for (int i = 0; i < SAMPLE_CHANGES; i++) {
			len = labsync__change__get_packed_size(&s.changes[i]);
			one = malloc(len);
			assert_non_null(one);
			labsync__change__pack(&s.changes[i], one);
			assert_int_equal(wire_batch_add(&wb, one, len), 0);
			bytes += len;
			free(one);
		}
		assert_int_equal(wb.n, SAMPLE_CHANGES);
		assert_int_equal(wb.bytes, bytes);

		buf = wire_batch_pack(&wb, "dortmund", round, &len);
		assert_non_null(buf);
		out = wire_unpack(buf, len, NULL, &r, why, sizeof(why));
		free(buf);
		if (out == NULL)
			fail_msg("wire_unpack of a packed batch: %s", why);
		assert_int_equal(out->version, WIRE_VERSION);
		assert_string_equal(out->sender, "dortmund");
		assert_int_equal(out->body_case, LABSYNC__ENVELOPE__BODY_BATCH);
		assert_int_equal(out->batch->more, round);
		assert_int_equal(out->batch->n_changes, SAMPLE_CHANGES);
		for (int i = 0; i < SAMPLE_CHANGES; i++)
			assert_change_equal(out->batch->changes[i],
			    &s.changes[i]);
		wire_free(out);
		/* cleared, the batch is reused for the next message */
		wire_batch_clear(&wb);
		assert_int_equal(wb.n, 0);
		assert_int_equal(wb.bytes, 0);
	}

	/* an empty packed batch still has a batch body */
	buf = wire_batch_pack(&wb, "dortmund", 0, &len);
	assert_non_null(buf);
	out = wire_unpack(buf, len, NULL, &r, why, sizeof(why));
	free(buf);
	if (out == NULL)
		fail_msg("wire_unpack of an empty packed batch: %s", why);
	assert_int_equal(out->body_case, LABSYNC__ENVELOPE__BODY_BATCH);
	assert_int_equal(out->batch->n_changes, 0);
	wire_free(out);
	wire_batch_free(&wb);
	wire_batch_free(&wb);	/* twice is harmless */
}

/* The daemon's decoder keeps each change's bytes as they were packed
   and leaves them packed; each decodes alike when it is used. Non-batch
   envelopes are decoded as before. */
static void
test_unpack_lazy_keeps_each_change_bytes(void **state)
{
	struct sample		 s;
	struct wire_batch	 wb;
	struct wire_arena	*arena = wire_arena_new();
	Labsync__Envelope	*out, e = LABSYNC__ENVELOPE__INIT;
	Labsync__Ack		 ack = LABSYNC__ACK__INIT;
	Labsync__Change		*c;
	ProtobufCBinaryData	*raw, packed[SAMPLE_CHANGES];
	uint8_t			*buf;
	size_t			 len;
	char			 why[256] = "";
	enum reason		 r;

	(void)state;
	assert_non_null(arena);
	sample_init(&s);
	wire_batch_init(&wb);
	for (int i = 0; i < SAMPLE_CHANGES; i++) {
		packed[i].len = labsync__change__get_packed_size(&s.changes[i]);
		packed[i].data = malloc(packed[i].len);
		assert_non_null(packed[i].data);
		labsync__change__pack(&s.changes[i], packed[i].data);
		assert_int_equal(wire_batch_add(&wb, packed[i].data,
		    packed[i].len), 0);
	}
	buf = wire_batch_pack(&wb, "dortmund", 1, &len);
	assert_non_null(buf);
	out = wire_unpack_lazy(buf, len, arena, &raw, &r, why, sizeof(why));
	if (out == NULL)
		fail_msg("wire_unpack_lazy: %s", why);
	assert_int_equal(r, REASON_OK);
	assert_int_equal(out->body_case, LABSYNC__ENVELOPE__BODY_BATCH);
	assert_string_equal(out->sender, "dortmund");
	assert_int_equal(out->batch->more, 1);
	assert_int_equal(out->batch->n_changes, SAMPLE_CHANGES);
	assert_null(out->batch->changes);
	assert_non_null(raw);
	for (int i = 0; i < SAMPLE_CHANGES; i++) {
		assert_int_equal(raw[i].len, packed[i].len);
		assert_memory_equal(raw[i].data, packed[i].data, packed[i].len);
		c = wire_unpack_change(&raw[i], arena);
		assert_non_null(c);
		assert_change_equal(c, &s.changes[i]);
	}
	free(buf);
	wire_arena_reset(arena);

	/* a truncated batch is refused with a code and a reason */
	buf = wire_batch_pack(&wb, "dortmund", 0, &len);
	assert_null(wire_unpack_lazy(buf, len - 3, arena, &raw, &r, why,
	    sizeof(why)));
	assert_int_equal(r, REASON_MALFORMED);
	assert_true(why[0] != '\0');
	free(buf);
	wire_arena_reset(arena);

	/* a change that is not a protobuf Change does not decode */
	assert_null(wire_unpack_change(&(ProtobufCBinaryData){ 3,
	    (uint8_t *)UNCONST("\xff\xff\xff") }, arena));
	wire_arena_reset(arena);

	/* not a batch: decoded as usual, no raw bytes */
	ack.vector = NULL;
	e.body_case = LABSYNC__ENVELOPE__BODY_ACK;
	e.ack = &ack;
	buf = wire_pack(&e, "wuppertal", &len);
	assert_non_null(buf);
	out = wire_unpack_lazy(buf, len, arena, &raw, &r, why, sizeof(why));
	assert_non_null(out);
	assert_int_equal(out->body_case, LABSYNC__ENVELOPE__BODY_ACK);
	assert_null(raw);
	free(buf);
	for (int i = 0; i < SAMPLE_CHANGES; i++)
		free(packed[i].data);
	wire_batch_free(&wb);
	wire_arena_free(arena);
}

/*
 * A snapshot batch packed as the server does (wire_snapshot_pack) is an
 * Envelope with a Snapshot body to any decoder, and wire_unpack_lazy
 * keeps its changes packed, with the vector and the progress fields.
 */
static void
test_snapshot_batch_round_trip(void **state)
{
	struct sample		 s;
	struct wire_batch	 wb;
	struct wire_arena	*arena = wire_arena_new();
	Labsync__Envelope	*out;
	Labsync__Vector		 v = LABSYNC__VECTOR__INIT;
	Labsync__VectorEntry	 ve = LABSYNC__VECTOR_ENTRY__INIT, *vep = &ve;
	ProtobufCBinaryData	*raw;
	uint8_t			*buf, one[4096];
	size_t			 len, n;
	char			 why[256] = "";
	enum reason		 r;

	(void)state;
	assert_non_null(arena);
	sample_init(&s);
	wire_batch_init(&wb);
	for (int i = 0; i < SAMPLE_CHANGES; i++) {
		s.changes[i].seq = 0;	/* states, of no sequence */
		n = labsync__change__pack(&s.changes[i], one);
		assert_int_equal(wire_batch_add(&wb, one, n), 0);
	}
	ve.origin = UNCONST("dortmund");
	ve.seq = 41;
	v.entries = &vep;
	v.n_entries = 1;
	buf = wire_snapshot_pack(&wb, "dortmund", &v, 0, 90, 60, 75, &len);
	assert_non_null(buf);

	/* whole, as any protobuf library sees it */
	out = wire_unpack(buf, len, NULL, &r, why, sizeof(why));
	if (out == NULL)
		fail_msg("wire_unpack: %s", why);
	assert_int_equal(out->body_case, LABSYNC__ENVELOPE__BODY_SNAPSHOT);
	assert_int_equal(out->snapshot->n_changes, SAMPLE_CHANGES);
	for (int i = 0; i < SAMPLE_CHANGES; i++)
		assert_change_equal(out->snapshot->changes[i], &s.changes[i]);
	assert_int_equal(out->snapshot->more, 0);
	assert_int_equal(out->snapshot->rows_total, 90);
	assert_int_equal(out->snapshot->rows_from, 60);
	assert_int_equal(out->snapshot->rows_sent, 75);
	assert_int_equal(out->snapshot->vector->n_entries, 1);
	assert_int_equal(out->snapshot->vector->entries[0]->seq, 41);
	wire_free(out);

	/* lazily: the changes stay packed */
	out = wire_unpack_lazy(buf, len, arena, &raw, &r, why, sizeof(why));
	if (out == NULL)
		fail_msg("wire_unpack_lazy: %s", why);
	assert_int_equal(out->body_case, LABSYNC__ENVELOPE__BODY_SNAPSHOT);
	assert_string_equal(out->sender, "dortmund");
	assert_null(out->snapshot->changes);
	assert_int_equal(out->snapshot->n_changes, SAMPLE_CHANGES);
	assert_int_equal(out->snapshot->rows_from, 60);
	assert_string_equal(out->snapshot->vector->entries[0]->origin,
	    "dortmund");
	assert_non_null(raw);
	for (int i = 0; i < SAMPLE_CHANGES; i++)
		assert_change_equal(wire_unpack_change(&raw[i], arena),
		    &s.changes[i]);
	free(buf);
	wire_arena_reset(arena);

	/* a batch without the vector (more to come) decodes too */
	buf = wire_snapshot_pack(&wb, "dortmund", NULL, 1, 90, 0, 30, &len);
	assert_non_null(buf);
	out = wire_unpack_lazy(buf, len, arena, &raw, &r, why, sizeof(why));
	assert_non_null(out);
	assert_int_equal(out->snapshot->more, 1);
	assert_null(out->snapshot->vector);
	free(buf);
	wire_batch_free(&wb);
	wire_arena_free(arena);
}

/* wire_unpack must fail with the expected code, and say why in words. */
static void
assert_rejected(const uint8_t *buf, size_t len, const char *what,
    enum reason want)
{
	Labsync__Envelope	*e;
	char			 why[256] = "";
	enum reason		 r = REASON_OK;

	e = wire_unpack(buf, len, NULL, &r, why, sizeof(why));
	if (e != NULL) {
		wire_free(e);
		fail_msg("%s was accepted", what);
	}
	if (why[0] == '\0')
		fail_msg("%s: rejected without a reason", what);
	if (r != want)
		fail_msg("%s: code %s, expected %s (%s)", what, reason_name(r),
		    reason_name(want), why);
}

/* Pack e as is (no version fixed up). */
static uint8_t *
raw_pack(const Labsync__Envelope *e, size_t *len)
{
	uint8_t	*buf;

	*len = labsync__envelope__get_packed_size(e);
	buf = malloc(*len ? *len : 1);
	assert_non_null(buf);
	labsync__envelope__pack(e, buf);
	return buf;
}

static void
test_rejects_empty_buffer(void **state)
{
	static const uint8_t nothing[1];

	(void)state;
	assert_rejected(nothing, 0, "empty buffer", REASON_MALFORMED);
}

static void
test_rejects_garbage(void **state)
{
	static const uint8_t ff[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	static const uint8_t badwire[] = { 0x0f, 0x01 };  /* wire type 7 */
	static const uint8_t text[] = "this is not a protobuf message";
	static const uint8_t hugelen[] = { 0x5a, 0xff, 0xff, 0xff, 0xff, 0x0f,
	    0x00 };  /* a batch that claims 4 GiB */

	(void)state;
	assert_rejected(ff, sizeof(ff), "0xff bytes", REASON_MALFORMED);
	assert_rejected(badwire, sizeof(badwire), "bad wire type",
	    REASON_MALFORMED);
	assert_rejected(text, sizeof(text) - 1, "ASCII text",
	    REASON_MALFORMED);
	assert_rejected(hugelen, sizeof(hugelen), "oversize length",
	    REASON_MALFORMED);
}

static void
test_rejects_every_truncation(void **state)
{
	Labsync__Envelope	 e = LABSYNC__ENVELOPE__INIT;
	Labsync__ChangeBatch	 b = LABSYNC__CHANGE_BATCH__INIT;
	struct sample		 s;
	uint8_t			*buf;
	size_t			 len;
	char			 what[64];

	(void)state;
	sample_init(&s);
	b.changes = s.changep;
	b.n_changes = SAMPLE_CHANGES;
	e.body_case = LABSYNC__ENVELOPE__BODY_BATCH;
	e.batch = &b;
	buf = wire_pack(&e, "dortmund", &len);
	assert_non_null(buf);
	/* the body is the last field: every proper prefix is broken */
	for (size_t cut = 1; cut < len; cut++) {
		uint8_t *part = malloc(cut);

		assert_non_null(part);
		memcpy(part, buf, cut);	/* exact size: valgrind sees overreads */
		snprintf(what, sizeof(what), "%zu of %zu bytes", cut, len);
		assert_rejected(part, cut, what, REASON_MALFORMED);
		free(part);
	}
	free(buf);
}

static void
test_rejects_wrong_version(void **state)
{
	Labsync__Envelope	 e = LABSYNC__ENVELOPE__INIT;
	Labsync__Ack		 a = LABSYNC__ACK__INIT;
	uint8_t			*buf;
	size_t			 len;

	(void)state;
	e.body_case = LABSYNC__ENVELOPE__BODY_ACK;
	e.ack = &a;
	e.sender = UNCONST("dortmund");
	e.version = WIRE_VERSION + 1;
	buf = raw_pack(&e, &len);
	assert_rejected(buf, len, "version 2", REASON_VERSION);
	free(buf);
	e.version = 0;		/* absent */
	buf = raw_pack(&e, &len);
	assert_rejected(buf, len, "version 0", REASON_VERSION);
	free(buf);
}

static void
test_rejects_missing_body(void **state)
{
	Labsync__Envelope	 e = LABSYNC__ENVELOPE__INIT;
	uint8_t			*buf;
	size_t			 len;

	(void)state;
	buf = wire_pack(&e, "dortmund", &len);
	assert_non_null(buf);
	assert_rejected(buf, len, "envelope without body",
	    REASON_MALFORMED);
	free(buf);
}

static void
test_rejects_oversize_ids(void **state)
{
	Labsync__Envelope	 e = LABSYNC__ENVELOPE__INIT;
	Labsync__Hello		 h = LABSYNC__HELLO__INIT;
	Labsync__Heartbeat	 hb = LABSYNC__HEARTBEAT__INIT;
	struct sample_vector	 sv;
	static const char	 long_id[] = "a-node-id-of-33-characters-123456";
	uint8_t			*buf;
	size_t			 len;

	(void)state;
	assert_int_equal(strlen(long_id), 33);
	h.node_id = UNCONST(long_id);
	e.body_case = LABSYNC__ENVELOPE__BODY_HELLO;
	e.hello = &h;
	buf = wire_pack(&e, "x", &len);
	assert_rejected(buf, len, "hello with a 33-byte node id",
	    REASON_MALFORMED);
	free(buf);

	sample_vector_init(&sv);
	sv.e[1].origin = UNCONST(long_id);
	hb.node_id = UNCONST("x");
	hb.vector = &sv.v;
	e.body_case = LABSYNC__ENVELOPE__BODY_HEARTBEAT;
	e.heartbeat = &hb;
	buf = wire_pack(&e, "x", &len);
	assert_rejected(buf, len, "vector with a 33-byte origin",
	    REASON_MALFORMED);
	free(buf);
}

/* --emit FILE: one packed batch envelope for the protoc decode test. */
static int
emit(const char *path)
{
	Labsync__Envelope	 e = LABSYNC__ENVELOPE__INIT;
	Labsync__ChangeBatch	 b = LABSYNC__CHANGE_BATCH__INIT;
	struct sample		 s;
	uint8_t			*buf;
	size_t			 len;
	FILE			*f;
	int			 ret = 0;

	sample_init(&s);
	b.changes = s.changep;
	b.n_changes = SAMPLE_CHANGES;
	b.more = 1;
	e.body_case = LABSYNC__ENVELOPE__BODY_BATCH;
	e.batch = &b;
	if ((buf = wire_pack(&e, "dortmund", &len)) == NULL)
		return 1;
	if ((f = fopen(path, "wb")) == NULL) {
		perror(path);
		free(buf);
		return 1;
	}
	if (fwrite(buf, 1, len, f) != len)
		ret = 1;
	if (fclose(f) != 0)
		ret = 1;
	if (ret != 0)
		perror(path);
	free(buf);
	return ret;
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello_round_trip),
		cmocka_unit_test(test_batch_round_trip_keeps_every_value_kind),
		cmocka_unit_test(test_empty_batch_round_trip),
		cmocka_unit_test(test_ack_round_trip),
		cmocka_unit_test(test_heartbeat_round_trip),
		cmocka_unit_test(test_packed_batch_decodes_as_change_batch),
		cmocka_unit_test(test_unpack_lazy_keeps_each_change_bytes),
		cmocka_unit_test(test_rejects_empty_buffer),
		cmocka_unit_test(test_rejects_garbage),
		cmocka_unit_test(test_rejects_every_truncation),
		cmocka_unit_test(test_snapshot_batch_round_trip),
		cmocka_unit_test(test_rejects_wrong_version),
		cmocka_unit_test(test_rejects_missing_body),
		cmocka_unit_test(test_rejects_oversize_ids),
	};

	if (argc == 3 && strcmp(argv[1], "--emit") == 0)
		return emit(argv[2]);
	if (argc != 1) {
		fprintf(stderr, "usage: %s [--emit FILE]\n", argv[0]);
		return 2;
	}
	return cmocka_run_group_tests_name("wire", tests, NULL, NULL);
}
