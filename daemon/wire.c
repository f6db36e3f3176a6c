/*
 * wire.c: encoding and decoding of envelopes. Decoding checks what the
 * protobuf layer cannot: the protocol version, that a body is present,
 * and the sizes of repeated fields; the store checks every change
 * against the schema before it touches SQL.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

#define WIRE_MAX_ORIGINS	4096	/* vector entries in one message */
#define ARENA_CHUNK		(256 * 1024)

struct arena_chunk {
	struct arena_chunk	*next;
	size_t			 size, used;
	max_align_t		 data[];
};

struct wire_arena {
	struct arena_chunk	*chunks;	/* newest first */
	ProtobufCAllocator	 allocator;
};

static void *
arena_alloc(void *arg, size_t size)
{
	struct wire_arena	*a = arg;
	struct arena_chunk	*c = a->chunks;
	size_t			 need = (size + 15) & ~(size_t)15;
	void			*p;

	if (c == NULL || c->size - c->used < need) {
		size_t sz = need > ARENA_CHUNK ? need : ARENA_CHUNK;

		if ((c = malloc(sizeof(*c) + sz)) == NULL)
			return NULL;
		c->size = sz;
		c->used = 0;
		c->next = a->chunks;
		a->chunks = c;
	}
	p = (char *)c->data + c->used;
	c->used += need;
	return p;
}

static void
arena_free(void *arg, void *p)
{
	(void)arg;	/* released with the whole arena */
	(void)p;
}

struct wire_arena *
wire_arena_new(void)
{
	struct wire_arena	*a;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->allocator.alloc = arena_alloc;
	a->allocator.free = arena_free;
	a->allocator.allocator_data = a;
	return a;
}

/* Keep one chunk for the next message; release the rest. */
void
wire_arena_reset(struct wire_arena *a)
{
	struct arena_chunk	*c, *next;

	if (a == NULL || a->chunks == NULL)
		return;
	for (c = a->chunks->next; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	a->chunks->next = NULL;
	a->chunks->used = 0;
	if (a->chunks->size > ARENA_CHUNK) {
		free(a->chunks);
		a->chunks = NULL;
	}
}

void
wire_arena_free(struct wire_arena *a)
{
	if (a == NULL)
		return;
	wire_arena_reset(a);
	free(a->chunks);
	free(a);
}

static void
wire_err(enum reason *code, enum reason r, char *why, size_t whylen,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
wire_err(enum reason *code, enum reason r, char *why, size_t whylen,
    const char *fmt, ...)
{
	va_list	 ap;

	*code = r;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

static int
wire_vector_ok(const Labsync__Vector *v)
{
	if (v == NULL)
		return 1;
	if (v->n_entries > WIRE_MAX_ORIGINS)
		return 0;
	/* sequences fit the log's 40 bits, as merge_validate insists */
	for (size_t i = 0; i < v->n_entries; i++)
		if (v->entries[i]->origin == NULL ||
		    strlen(v->entries[i]->origin) > 32 ||
		    v->entries[i]->seq >= (1ULL << 40))
			return 0;
	return 1;
}

Labsync__Envelope *
wire_unpack(const uint8_t *buf, size_t len, struct wire_arena *arena,
    enum reason *code, char *why, size_t whylen)
{
	Labsync__Envelope	*e;
	const Labsync__Vector	*v = NULL;

	*code = REASON_OK;
	if (len == 0) {
		wire_err(code, REASON_MALFORMED, why, whylen, "empty message");
		return NULL;
	}
	if ((e = labsync__envelope__unpack(arena != NULL ? &arena->allocator :
	    NULL, len, buf)) == NULL) {
		wire_err(code, REASON_MALFORMED, why, whylen, "not a protobuf "
		    "envelope (%zu bytes)", len);
		return NULL;
	}
	if (e->version != WIRE_VERSION) {
		wire_err(code, REASON_VERSION, why, whylen,
		    "protocol version %u, expected %d",
		    e->version, WIRE_VERSION);
		goto bad;
	}
	switch (e->body_case) {
	case LABSYNC__ENVELOPE__BODY_HELLO:
		if (e->hello->node_id == NULL ||
		    strlen(e->hello->node_id) > 32) {
			wire_err(code, REASON_MALFORMED, why, whylen,
			    "hello without a node id");
			goto bad;
		}
		v = e->hello->vector;
		break;
	case LABSYNC__ENVELOPE__BODY_BATCH:
		break;
	case LABSYNC__ENVELOPE__BODY_ACK:
		v = e->ack->vector;
		break;
	case LABSYNC__ENVELOPE__BODY_SNAPSHOT:
		if (e->snapshot->n_changes > WIRE_MAX_CHANGES) {
			wire_err(code, REASON_TOO_LARGE, why, whylen,
			    "snapshot batch of %zu changes is too large",
			    e->snapshot->n_changes);
			goto bad;
		}
		v = e->snapshot->vector;
		break;
	case LABSYNC__ENVELOPE__BODY_HEARTBEAT:
		if (e->heartbeat->n_kept > WIRE_MAX_KEPT) {
			wire_err(code, REASON_MALFORMED, why, whylen,
			    "heartbeat with too many kept entries");
			goto bad;
		}
		v = e->heartbeat->vector;
		break;
	default:
		wire_err(code, REASON_MALFORMED, why, whylen, "no body");
		goto bad;
	}
	if (!wire_vector_ok(v)) {
		wire_err(code, REASON_MALFORMED, why, whylen,
		    "malformed version vector");
		goto bad;
	}
	return e;
bad:
	if (arena == NULL)
		labsync__envelope__free_unpacked(e, NULL);
	return NULL;
}

/* wire_unpack_lazy of a snapshot batch: its changes stay packed too. */
static Labsync__Envelope *
wire_unpack_snapshot(Labsync__PackedEnvelope *pe, struct wire_arena *arena,
    ProtobufCBinaryData **raw, enum reason *code, char *why, size_t whylen)
{
	Labsync__PackedSnapshot	*ps = pe->snapshot;
	Labsync__Envelope	*e;
	Labsync__Snapshot	*sp;

	if (pe->version != WIRE_VERSION) {
		wire_err(code, REASON_VERSION, why, whylen,
		    "protocol version %u, expected %d",
		    pe->version, WIRE_VERSION);
		return NULL;
	}
	if (ps->n_changes > WIRE_MAX_CHANGES) {
		wire_err(code, REASON_TOO_LARGE, why, whylen,
		    "snapshot batch of %zu changes is too large",
		    ps->n_changes);
		return NULL;
	}
	if (!wire_vector_ok(ps->vector)) {
		wire_err(code, REASON_MALFORMED, why, whylen,
		    "malformed version vector");
		return NULL;
	}
	e = arena_alloc(arena, sizeof(*e));
	sp = arena_alloc(arena, sizeof(*sp));
	if (e == NULL || sp == NULL) {
		wire_err(code, REASON_NO_MEMORY, why, whylen, "out of memory "
		    "decoding a snapshot batch of %zu changes", ps->n_changes);
		return NULL;
	}
	labsync__envelope__init(e);
	labsync__snapshot__init(sp);
	e->version = pe->version;
	e->sender = pe->sender;
	e->body_case = LABSYNC__ENVELOPE__BODY_SNAPSHOT;
	e->snapshot = sp;
	sp->n_changes = ps->n_changes;
	sp->vector = ps->vector;
	sp->more = ps->more;
	sp->rows_total = ps->rows_total;
	sp->rows_sent = ps->rows_sent;
	sp->rows_from = ps->rows_from;
	*raw = ps->changes;
	return e;
}

Labsync__Envelope *
wire_unpack_lazy(const uint8_t *buf, size_t len, struct wire_arena *arena,
    ProtobufCBinaryData **raw, enum reason *code, char *why, size_t whylen)
{
	ProtobufCAllocator	*al = &arena->allocator;
	Labsync__PackedEnvelope	*pe;
	Labsync__Envelope	*e;
	Labsync__ChangeBatch	*b;

	*raw = NULL;
	*code = REASON_OK;
	pe = len > 0 ? labsync__packed_envelope__unpack(al, len, buf) : NULL;
	if (pe != NULL && pe->batch == NULL && pe->snapshot != NULL)
		return wire_unpack_snapshot(pe, arena, raw, code, why, whylen);
	if (pe == NULL || pe->batch == NULL)
		return wire_unpack(buf, len, arena, code, why, whylen);
	if (pe->version != WIRE_VERSION) {
		wire_err(code, REASON_VERSION, why, whylen,
		    "protocol version %u, expected %d",
		    pe->version, WIRE_VERSION);
		return NULL;
	}
	e = arena_alloc(arena, sizeof(*e));
	b = arena_alloc(arena, sizeof(*b));
	if (e == NULL || b == NULL) {
		wire_err(code, REASON_NO_MEMORY, why, whylen, "out of memory "
		    "decoding a batch of %zu changes", pe->batch->n_changes);
		return NULL;
	}
	labsync__envelope__init(e);
	labsync__change_batch__init(b);
	e->version = pe->version;
	e->sender = pe->sender;
	e->body_case = LABSYNC__ENVELOPE__BODY_BATCH;
	e->batch = b;
	b->more = pe->batch->more;
	b->n_changes = pe->batch->n_changes;
	*raw = pe->batch->changes;
	return e;
}

Labsync__Change *
wire_unpack_change(const ProtobufCBinaryData *raw, struct wire_arena *arena)
{
	return labsync__change__unpack(&arena->allocator, raw->len, raw->data);
}

void
wire_free(Labsync__Envelope *e)
{
	if (e != NULL)
		labsync__envelope__free_unpacked(e, NULL);
}

uint8_t *
wire_pack(Labsync__Envelope *e, const char *sender, size_t *len)
{
	uint8_t	*buf;

	e->version = WIRE_VERSION;
	e->sender = UNCONST(sender);
	*len = labsync__envelope__get_packed_size(e);
	if ((buf = malloc(*len ? *len : 1)) == NULL)
		return NULL;
	labsync__envelope__pack(e, buf);
	return buf;
}

void
wire_batch_init(struct wire_batch *b)
{
	memset(b, 0, sizeof(*b));
}

int
wire_batch_add(struct wire_batch *b, const uint8_t *data, size_t len)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		ProtobufCBinaryData *n = reallocarray(b->changes, cap,
		    sizeof(*n));

		if (n == NULL)
			return -1;
		b->changes = n;
		b->cap = cap;
	}
	if ((b->changes[b->n].data = malloc(len ? len : 1)) == NULL)
		return -1;
	memcpy(b->changes[b->n].data, data, len);
	b->changes[b->n].len = len;
	b->n++;
	b->bytes += len;
	return 0;
}

uint8_t *
wire_batch_pack(struct wire_batch *b, const char *sender, int more,
    size_t *len)
{
	Labsync__PackedEnvelope	 e = LABSYNC__PACKED_ENVELOPE__INIT;
	Labsync__PackedBatch	 pb = LABSYNC__PACKED_BATCH__INIT;
	uint8_t			*buf;

	pb.changes = b->changes;
	pb.n_changes = b->n;
	pb.more = more;
	e.version = WIRE_VERSION;
	e.sender = UNCONST(sender);
	e.batch = &pb;
	*len = labsync__packed_envelope__get_packed_size(&e);
	if ((buf = malloc(*len ? *len : 1)) == NULL)
		return NULL;
	labsync__packed_envelope__pack(&e, buf);
	return buf;
}

uint8_t *
wire_snapshot_pack(struct wire_batch *b, const char *sender,
    const Labsync__Vector *v, int more, uint64_t total, uint64_t from,
    uint64_t sent, size_t *len)
{
	Labsync__PackedEnvelope		 e = LABSYNC__PACKED_ENVELOPE__INIT;
	Labsync__PackedSnapshot		 ps = LABSYNC__PACKED_SNAPSHOT__INIT;
	uint8_t				*buf;

	ps.changes = b->changes;
	ps.n_changes = b->n;
	ps.vector = UNCONST(v);
	ps.more = more;
	ps.rows_total = total;
	ps.rows_sent = sent;
	ps.rows_from = from;
	e.version = WIRE_VERSION;
	e.sender = UNCONST(sender);
	e.snapshot = &ps;
	*len = labsync__packed_envelope__get_packed_size(&e);
	if ((buf = malloc(*len ? *len : 1)) == NULL)
		return NULL;
	labsync__packed_envelope__pack(&e, buf);
	return buf;
}

void
wire_batch_clear(struct wire_batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->changes[i].data);
	b->n = 0;
	b->bytes = 0;
}

void
wire_batch_free(struct wire_batch *b)
{
	wire_batch_clear(b);
	free(b->changes);
	wire_batch_init(b);
}
