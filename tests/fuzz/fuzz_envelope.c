/*
 * fuzz_envelope.c: libFuzzer target over what labsyncd does with one
 * message from a peer: decode and check the envelope (wire_unpack), then,
 * per body, what peer.c and sync.c do with it. A batch is filtered,
 * validated change by change and applied into an in-memory store, like
 * sync_apply (live feed and catch-up alternate with the input's hash); a
 * hello, ack or heartbeat has its vector measured (store_lag_behind) and
 * answered (store_read_missing), like sync_serve and peer_heard.
 *
 * Besides the sanitizers it checks two promises of the design: a batch
 * that passed validation never fails in SQL, and everything the store
 * hands out (outbox, catch-up reads) decodes as a Change again.
 *
 * The store persists across inputs, as in the daemon, and is opened anew
 * when its log grows past FUZZ_MAX_LOG so that long runs stay bounded.
 * The schema comes from $LABSYNC_SCHEMA or SCHEMA_PATH (set by the
 * Makefile).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "store.h"
#include "wire.h"

#ifndef SCHEMA_PATH
#define SCHEMA_PATH	"config/schema.sql"
#endif

#define FUZZ_NODE	"fuzz"
#define FUZZ_MAX_INPUT	(64 * 1024)
#define FUZZ_MAX_LOG	20000	/* changes held before the store is reset */
#define BATCH_CHANGES	1000	/* the config's default batch_changes */
#define MAX_MESSAGE	(4 * 1024 * 1024)	/* and max_message_size */

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char *fuzz_tables[] = { "labs", "themes", "activities", "initiatives",
    "volunteer_offers", "observations" };

static struct clock	*fuzz_clock;
static struct store	*fuzz_store;

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
	return 0;
}

/* What the store hands to peers must decode; counts it. */
static int
fuzz_count_cb(void *arg, const uint8_t *data, size_t len)
{
	Labsync__Change	*c;

	if ((c = labsync__change__unpack(NULL, len, data)) == NULL) {
		fprintf(stderr, "fuzz_envelope: the store handed out %zu bytes "
		    "that are not a Change\n", len);
		abort();
	}
	labsync__change__free_unpacked(c, NULL);
	(*(size_t *)arg)++;
	return 0;
}

/* sync_apply without the daemon around it. */
static void
fuzz_batch(Labsync__ChangeBatch *batch, int from_catchup)
{
	struct store_apply_stats  st;
	Labsync__Change		**keep;
	char			  why[256];
	size_t			  n = 0;
	uint64_t		  own = store_own_seq(fuzz_store);

	if (batch->n_changes > (size_t)BATCH_CHANGES * 2 + 16)
		return;
	if ((keep = calloc(batch->n_changes + 1, sizeof(*keep))) == NULL)
		abort();
	for (size_t i = 0; i < batch->n_changes; i++) {
		Labsync__Change *c = batch->changes[i];
		int is_own = c->origin != NULL &&
		    strcmp(c->origin, FUZZ_NODE) == 0;

		if (is_own && (c->seq <= own || !from_catchup))
			continue;
		if (store_validate(fuzz_store, c, from_catchup, why,
		    sizeof(why)) == -1)
			goto done;
		keep[n++] = c;
	}
	if (n > 0 && store_apply(fuzz_store, keep, n, from_catchup,
	    &st) == -1) {
		fprintf(stderr, "fuzz_envelope: a validated batch of %zu "
		    "changes failed to apply\n", n);
		abort();
	}
done:
	free(keep);
}

/* sync_serve and peer_heard: measure the vector, answer it. */
static void
fuzz_vector(const Labsync__Vector *v, int hello)
{
	Labsync__Vector	*mine;
	size_t		 count = 0;
	int		 more;

	(void)store_lag_behind(fuzz_store, v);
	if (hello && (mine = store_vector(fuzz_store)) != NULL)
		store_vector_free(mine);
	if (store_read_missing(fuzz_store, v, BATCH_CHANGES, MAX_MESSAGE / 2,
	    fuzz_count_cb, &count, &more) == -1) {
		fprintf(stderr, "fuzz_envelope: could not read the log\n");
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
	Labsync__Envelope	*e;
	char			 why[256];
	size_t			 count = 0;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	if ((e = wire_unpack(data, size, why, sizeof(why))) == NULL)
		return 0;
	switch (e->body_case) {
	case LABSYNC__ENVELOPE__BODY_BATCH:
		fuzz_batch(e->batch, fuzz_hash(data, size) & 1);
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
	default:
		fprintf(stderr, "fuzz_envelope: wire_unpack let through body "
		    "%d\n", (int)e->body_case);
		abort();
	}
	wire_free(e);
	store_outbox_drain(fuzz_store, fuzz_count_cb, &count);
	if (store_log_count(fuzz_store) > FUZZ_MAX_LOG) {
		store_free(fuzz_store);
		fuzz_open();
	}
	return 0;
}
