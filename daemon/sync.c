/*
 * sync.c: the replication engine every session shares: check and apply
 * batches in the apply transaction (struct sync_txn, which only this
 * file sees inside: begun by sync_take, committed by sync_end), count
 * and log refusals, publish what was committed, and decide when the node
 * takes local writes (after start-up it first asks its peers whether
 * they hold changes of its own it has lost).
 *
 * It calls no session code: peer.c and catchup.c call it, hand it their
 * struct sync_source, and act on what it returns.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "bus.h"
#include "clock.h"
#include "config.h"
#include "labsyncd.h"
#include "log.h"
#include "store.h"
#include "sync.h"
#include "wire.h"

#define REJECT_LOG_PER_MIN	20	/* rejection lines per peer, then quiet */
#define SYNC_DECODE_CHUNK	64	/* changes decoded at a time */

const double apply_bucket_le[APPLY_BUCKETS] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
};

/* A transaction of received changes, open over one or more batches. */
struct sync_txn {
	struct labsyncd		*env;
	struct sync_source	*src;		/* whose batches */
	int			 open;
	uint64_t		 t0_us;		/* begun */
	uint64_t		 busy_us;	/* spent applying */
	size_t			 n;		/* changes taken */
	int			 snapshot;	/* snapshot changes among them */
	struct merge_stats st;
};

/*
 * Log, count and remember a refused message, rate-limited per source:
 * src is the peer's slot, or NULL for sources that are no peer (they
 * share one limit).
 */
static void
sync_reject_from(struct labsyncd *env, const char *peer,
    struct sync_source *src, enum reason code, const char *why)
{
	uint64_t	 now = clock_system_ms();
	struct ratelimit *rl = &env->reject_limit;

	env->stats.rejected++;
	env->stats.rejected_by[reason_counted(code) ? code : REASON_OTHER]++;
	if (src != NULL) {
		snprintf(src->last_error, sizeof(src->last_error), "%s", why);
		src->last_error_ms = now;
		rl = &src->limit;
	}
	if (now - rl->window_ms > 60000) {
		if (rl->suppressed > 0)
			log_warnx("%d more rejected messages from %s not logged",
			    rl->suppressed, src != NULL ? peer : "other sources");
		rl->window_ms = now;
		rl->logged = rl->suppressed = 0;
	}
	if (rl->logged++ < REJECT_LOG_PER_MIN)
		log_warnx("rejected message from %s: %s (%s)", peer, why,
		    reason_name(code));
	else
		rl->suppressed++;
}

void
sync_reject(struct labsyncd *env, struct sync_source *src, enum reason code,
    const char *why)
{
	sync_reject_from(env, src->name, src, code, why);
}

void
sync_reject_other(struct labsyncd *env, const char *who, enum reason code,
    const char *why)
{
	sync_reject_from(env, who, NULL, code, why);
}

void
sync_heard_hello(struct labsyncd *env, struct sync_source *src,
    const Labsync__Hello *h)
{
	int	 known = src->has_fingerprint;
	uint8_t	 was[32];

	if (h->schema_fingerprint.len != sizeof(src->fingerprint))
		return;
	memcpy(was, src->fingerprint, sizeof(was));
	memcpy(src->fingerprint, h->schema_fingerprint.data,
	    sizeof(src->fingerprint));
	src->has_fingerprint = 1;
	if (known && memcmp(was, src->fingerprint, sizeof(was)) == 0)
		return;
	if (memcmp(src->fingerprint, env->fingerprint, 32) != 0)
		log_warnx("peer %s: its synced tables differ from ours "
		    "(labsyncctl status shows both fingerprints)", src->name);
	else if (known)
		log_info("peer %s: its synced tables are the same as ours "
		    "again", src->name);
}

Labsync__Hello *
sync_hello_new(struct labsyncd *env)
{
	Labsync__Hello	*h;

	if ((h = calloc(1, sizeof(*h))) == NULL) {
		log_warn("hello");
		return NULL;
	}
	labsync__hello__init(h);
	h->node_id = env->conf->node_id;
	h->role = env->conf->role == CONFIG_ROLE_OBSERVER ?
	    LABSYNC__ROLE__ROLE_OBSERVER :
	    env->conf->role == CONFIG_ROLE_PARTNER ?
	    LABSYNC__ROLE__ROLE_PARTNER : LABSYNC__ROLE__ROLE_CITY;
	h->protocol_version = WIRE_VERSION;
	h->schema_fingerprint.data = env->fingerprint;
	h->schema_fingerprint.len = sizeof(env->fingerprint);
	if ((h->vector = vector_new_committed(env->store)) == NULL) {
		log_warnx("hello: out of memory");
		free(h);
		return NULL;
	}
	return h;
}

void
sync_hello_free(Labsync__Hello *h)
{
	if (h == NULL)
		return;
	vector_free(h->vector);
	free(h);
}

/*
 * Start-up: local writes wait until every peer we connect to has told us
 * what it holds (or is down), so that a node restored from an old backup
 * fetches its own later changes back before it reuses their sequences.
 */
void
sync_check_phase(struct labsyncd *env, int settled)
{
	uint64_t	 own = vector_own_seq(env->store);

	if (env->phase == PHASE_RUNNING && env->recover_to <= own)
		return;
	if (!settled && env->phase == PHASE_STARTING)
		return;
	if (env->recover_to > own) {
		if (env->phase != PHASE_RECOVERING) {
			if (env->phase == PHASE_RUNNING)
				log_error("a peer holds changes of ours we no "
				    "longer have, after we took new writes; "
				    "restore this node from a newer backup");
			log_warnx("fetching our own changes %llu..%llu back "
			    "from peers; local writes are refused until then",
			    (unsigned long long)own + 1,
			    (unsigned long long)env->recover_to);
			env->phase = PHASE_RECOVERING;
			store_set_writable(env->store, STORE_RECOVERING);
		}
		return;
	}
	if (env->phase == PHASE_RECOVERING)
		log_info("recovered our own changes up to %llu",
		    (unsigned long long)own);
	log_info("taking local writes (own sequence %llu)",
	    (unsigned long long)own);
	env->phase = PHASE_RUNNING;
	store_set_writable(env->store, STORE_WRITABLE);
	sync_local(env);
}

/* Batches for the live feed, one origin each (the topic frame). */
struct sync_pub {
	struct labsyncd		*env;
	struct wire_batch	 b;
	char			 origin[CONFIG_ID_MAX + 1];
};

/* Send [topic, envelope]: the topic lets a node drop its own changes,
   echoed back by relays, without decoding them. */
static void
sync_publish_send(struct sync_pub *sp)
{
	struct labsyncd	*env = sp->env;
	const void	*data[2];
	size_t		 len[2];
	uint8_t		*buf;

	if (sp->b.n == 0)
		return;
	if ((buf = wire_batch_pack(&sp->b, env->conf->node_id, 0,
	    &len[1])) != NULL) {
		data[0] = sp->origin;
		len[0] = strlen(sp->origin);
		data[1] = buf;
		if (bus_send(env->pub, data, len, 2) == 0)
			env->stats.published += sp->b.n;
	}
	free(buf);
	wire_batch_clear(&sp->b);
}

static int
sync_publish_add(void *arg, const char *origin, const uint8_t *data,
    size_t len)
{
	struct sync_pub	*sp = arg;
	const struct config *conf = sp->env->conf;

	if (sp->b.n > 0 && (strcmp(origin, sp->origin) != 0 ||
	    sp->b.n >= (size_t)conf->batch_changes ||
	    sp->b.bytes + len > conf->max_message_size / 2))
		sync_publish_send(sp);
	snprintf(sp->origin, sizeof(sp->origin), "%s", origin);
	return wire_batch_add(&sp->b, data, len);
}

/* Everything committed since the last call goes out on the live feed. */
void
sync_publish(struct labsyncd *env)
{
	struct sync_pub	 sp;

	if (outbox_len(env->store) == 0)
		return;
	memset(&sp, 0, sizeof(sp));
	sp.env = env;
	wire_batch_init(&sp.b);
	outbox_drain(env->store, sync_publish_add, &sp);
	sync_publish_send(&sp);
	wire_batch_free(&sp.b);
}

void
sync_heartbeat(struct labsyncd *env)
{
	Labsync__Envelope	 e = LABSYNC__ENVELOPE__INIT;
	Labsync__Heartbeat	 hb = LABSYNC__HEARTBEAT__INIT;
	uint8_t			*buf;
	size_t			 len;

	hb.node_id = env->conf->node_id;
	hb.hlc = clock_last(env->clock);
	hb.vector = vector_new_committed(env->store);
	/* what we keep aside, per origin: its sender shows it */
	hb.kept = aside_summary(env->store, WIRE_MAX_KEPT, &hb.n_kept);
	e.body_case = LABSYNC__ENVELOPE__BODY_HEARTBEAT;
	e.heartbeat = &hb;
	if ((buf = wire_pack(&e, env->conf->node_id, &len)) != NULL) {
		const void *data[2] = { "", buf };
		size_t lens[2] = { 0, len };

		bus_send(env->pub, data, lens, 2);	/* no topic */
	}
	free(buf);
	vector_free(hb.vector);
	aside_summary_free(hb.kept, hb.n_kept);
}

/* Publish new local changes, a bounded chunk per loop turn. */
void
sync_local(struct labsyncd *env)
{
	int	 n = 0, chunk = 10000;

	if (env->phase != PHASE_RUNNING)
		return;
	if (changelog_take_local(env->store, chunk, &n) == -1) {
		log_warnx("could not read local changes; will retry");
		return;
	}
	if (n > 0) {
		env->stats.captured += n;
		log_debug("read %d local changes", n);
		sync_publish(env);
	}
	if (n == chunk && env->ev_wake != NULL)
		event_active(env->ev_wake, EV_TIMEOUT, 0);
}

static void
sync_observe_latency(struct labsyncd *env, uint64_t us)
{
	double	 s = us / 1e6;

	env->stats.apply_count++;
	env->stats.apply_seconds += s;
	for (int i = 0; i < APPLY_BUCKETS; i++)
		if (s <= apply_bucket_le[i])
			env->stats.apply_buckets[i]++;
}

/* Our own changes echoed back by relays: nothing new, never applied. */
static int
sync_echo(struct labsyncd *env, const Labsync__Change *c, uint64_t own)
{
	return c->origin != NULL && c->seq <= own &&
	    strcmp(c->origin, env->conf->node_id) == 0;
}

/*
 * One decoded change of a batch from peer (c NULL: it did not decode):
 * 1 to apply it, 0 for an echo of our own, -1 if it refuses the batch
 * (logged and counted).
 */
static int
sync_check_change(struct labsyncd *env, struct sync_source *src,
    const Labsync__Change *c, size_t i, size_t n, int from_catchup,
    uint64_t own, int64_t now)
{
	char		 why[256], msg[512];
	int		 allow_own;
	enum reason	 r;

	if (c == NULL) {
		snprintf(msg, sizeof(msg), "change %zu of %zu is not a "
		    "protobuf Change; batch refused", i + 1, n);
		sync_reject(env, src, REASON_MALFORMED, msg);
		return -1;
	}
	if (sync_echo(env, c, own))
		return 0;
	/*
	 * A partner is trusted with its own changes only: those of others it
	 * relays could be forged (a city's origin claimed by the partner's
	 * key) and are ignored, not refused; the cities send them directly.
	 */
	if (src->own_only && (c->origin == NULL ||
	    strcmp(c->origin, src->name) != 0)) {
		if (!src->ignored_said)
			log_info("peer %s: changes of other origins (%.32s "
			    "#%llu) ignored: a partner's link carries its own "
			    "changes only", src->name, c->origin != NULL ?
			    c->origin : "?", (unsigned long long)c->seq);
		src->ignored_said = 1;
		return 0;
	}
	/*
	 * Changes of our own that we do not have are taken only as catch-up
	 * answers, and only once a peer's vector showed we lost them (a
	 * restore); anywhere else they are forged.
	 */
	allow_own = from_catchup && env->recover_to >= c->seq;
	/* a content fault (reason_keep) refuses nothing: the change is
	   applied as far as it fits, the rest kept aside */
	if ((r = merge_validate(env->store, c, allow_own, why,
	    sizeof(why))) != REASON_OK && reason_keep(r) == KEEP_NO) {
		snprintf(msg, sizeof(msg), "change %zu of %zu (%.32s #%llu): "
		    "%s; batch refused", i + 1, n, c->origin ? c->origin : "?",
		    (unsigned long long)c->seq, why);
		sync_reject(env, src, r, msg);
		return -1;
	}
	if ((int64_t)CLOCK_MS(c->hlc) - now > env->stats.max_skew_ms)
		env->stats.max_skew_ms = (int64_t)CLOCK_MS(c->hlc) - now;
	return 1;
}

static int
sync_check_size(struct labsyncd *env, struct sync_source *src,
    const Labsync__ChangeBatch *batch, const ProtobufCBinaryData *raw)
{
	char	 msg[128];

	if (batch->n_changes > WIRE_MAX_CHANGES) {
		snprintf(msg, sizeof(msg), "batch of %zu changes is too large",
		    batch->n_changes);
		sync_reject(env, src, REASON_TOO_LARGE, msg);
		return -1;
	}
	if (raw == NULL && batch->n_changes > 0) {
		sync_reject(env, src, REASON_MALFORMED, "malformed batch");
		return -1;
	}
	return 0;
}

/*
 * Check a received batch, its changes still packed, before any of it is
 * applied: one bad change refuses the whole batch (-1). Changes are
 * decoded into scratch a few at a time. With ahead, that vector moves
 * over the batch (the next catch-up request, sent before we apply).
 */
static int
sync_check(struct labsyncd *env, struct sync_source *src,
    const Labsync__ChangeBatch *batch, const ProtobufCBinaryData *raw,
    int from_catchup, struct wire_arena *scratch, Labsync__Vector *ahead)
{
	uint64_t	 own = vector_own_seq(env->store);
	int64_t		 now = (int64_t)clock_system_ms();
	int		 ret = 0, ok;

	if (sync_check_size(env, src, batch, raw) == -1)
		return -1;
	for (size_t i = 0; i < batch->n_changes && ret == 0; i++) {
		Labsync__Change *c = wire_unpack_change(&raw[i], scratch);

		if ((ok = sync_check_change(env, src, c, i, batch->n_changes,
		    from_catchup, own, now)) == -1)
			ret = -1;
		/* past what it ignores too, or it would be sent again */
		else if (ok >= 0 && c != NULL && ahead != NULL &&
		    vector_advance(ahead, c->origin, c->seq) == -1)
			ret = -1;
		if (i % SYNC_DECODE_CHUNK == SYNC_DECODE_CHUNK - 1)
			wire_arena_reset(scratch);
	}
	wire_arena_reset(scratch);
	return ret;
}

/*
 * Move ahead over a catch-up answer, to ask for the next one before this
 * one is applied. An answer mostly holds one origin's changes in order:
 * then its first and last change tell, two decodes instead of one per
 * change (the answer is checked change by change as it is applied, see
 * sync_take). Otherwise the whole answer is checked first (sync_check).
 * Only a hint: a wrong one leaves a gap, and a gap asks again.
 */
int
sync_ahead(struct labsyncd *env, struct sync_source *src,
    const Labsync__ChangeBatch *batch, const ProtobufCBinaryData *raw,
    struct wire_arena *scratch, Labsync__Vector *ahead)
{
	Labsync__Change	*first, *last;
	size_t		 n = batch->n_changes;
	int		 ret = 0;

	if (sync_check_size(env, src, batch, raw) == -1)
		return -1;
	if (n == 0)
		return 0;
	first = wire_unpack_change(&raw[0], scratch);
	last = wire_unpack_change(&raw[n - 1], scratch);
	if (first == NULL || last == NULL || first->origin == NULL ||
	    last->origin == NULL || strcmp(first->origin, last->origin) != 0 ||
	    last->seq < first->seq || last->seq - first->seq != n - 1) {
		wire_arena_reset(scratch);
		return sync_check(env, src, batch, raw, 1, scratch, ahead);
	}
	for (uint64_t q = first->seq; q <= last->seq && ret == 0; q++)
		ret = vector_advance(ahead, first->origin, q);
	wire_arena_reset(scratch);
	return ret;
}

/* A closed transaction for the batches of src. */
struct sync_txn *
sync_txn_new(struct labsyncd *env, struct sync_source *src)
{
	struct sync_txn	*tx;

	if ((tx = calloc(1, sizeof(*tx))) == NULL) {
		log_warn("%s: apply transaction", src->name);
		return NULL;
	}
	tx->env = env;
	tx->src = src;
	return tx;
}

void
sync_txn_free(struct sync_txn *tx)
{
	int	 gaps, own;

	if (tx == NULL)
		return;
	if (tx->open) {		/* not expected: commit rather than lose it */
		log_warnx("%s: apply transaction freed while open",
		    tx->src->name);
		sync_end(tx, &gaps, &own);
	}
	free(tx);
}

int
sync_txn_open(const struct sync_txn *tx)
{
	return tx->open;
}

size_t
sync_txn_changes(const struct sync_txn *tx)
{
	return tx->n;
}

/* Held open, a gap would wait for the commit before we ask again. */
int
sync_txn_may_hold(const struct sync_txn *tx, size_t max, uint64_t max_us)
{
	return tx->st.gaps + tx->st.held == 0 && tx->n < max &&
	    clock_mono_us() - tx->t0_us < max_us;
}

/*
 * Apply a batch inside tx, opening it if needed; several batches may go
 * into one transaction (sync_end commits it). Each change is checked just
 * before it is applied (decoded once), and a bad one refuses the batch by
 * rolling tx back: with it go the batches tx held before (the live
 * feed's), whose changes then come again by catch-up. On failure tx is
 * rolled back and closed.
 */
int
sync_take(struct sync_txn *tx, const Labsync__ChangeBatch *batch,
    const ProtobufCBinaryData *raw, int from_catchup,
    struct wire_arena *scratch)
{
	struct labsyncd		*env = tx->env;
	Labsync__Change		*v[SYNC_DECODE_CHUNK];
	ProtobufCBinaryData	 r[SYNC_DECODE_CHUNK];
	uint64_t		 own = vector_own_seq(env->store);
	uint64_t		 t0 = clock_mono_us();
	int64_t			 now = (int64_t)clock_system_ms();
	size_t			 n = 0;
	int			 ok;

	if (batch->n_changes == 0)
		return 0;
	if (sync_check_size(env, tx->src, batch, raw) == -1)
		return -1;
	if (!tx->open) {
		tx->busy_us = 0;
		tx->n = 0;
		memset(&tx->st, 0, sizeof(tx->st));
		tx->t0_us = t0;
		if (merge_apply_begin(env->store) == -1)
			goto fail;
		tx->open = 1;
	}
	for (size_t i = 0; i < batch->n_changes; i++) {
		Labsync__Change *c = wire_unpack_change(&raw[i], scratch);

		ok = sync_check_change(env, tx->src, c, i, batch->n_changes,
		    from_catchup, own, now);
		if (ok == -1)
			goto refused;
		if (ok == 1) {
			v[n] = c;
			r[n++] = raw[i];
		}
		if (n == SYNC_DECODE_CHUNK || i + 1 == batch->n_changes) {
			if (merge_apply_more(env->store, v, r, n, from_catchup,
			    &tx->st) == -1)
				goto fail;
			n = 0;
			wire_arena_reset(scratch);
		}
	}
	tx->n += batch->n_changes;
	tx->busy_us += clock_mono_us() - t0;
	return 0;
refused:
	wire_arena_reset(scratch);
	if (tx->open)
		merge_apply_abort(env->store);
	tx->open = 0;
	return -1;
fail:
	wire_arena_reset(scratch);
	if (tx->open)
		merge_apply_end(env->store, 0);
	tx->open = 0;
	sync_reject(env, tx->src, REASON_DATABASE, "could not apply batch "
	    "(database error)");
	return -1;
}

/*
 * Commit tx and publish what was new. *gaps counts changes that could
 * not be applied yet (a missing predecessor, or stamped too far ahead):
 * the caller asks for catch-up. *own counts our own changes fetched
 * back: the caller looks at the phase again (sync_check_phase).
 */
int
sync_end(struct sync_txn *tx, int *gaps, int *own)
{
	struct labsyncd		*env = tx->env;
	const char		*peer = tx->src->name;
	struct merge_stats *st = &tx->st;
	uint64_t		 t0 = clock_mono_us();

	*gaps = *own = 0;
	if (!tx->open)
		return 0;
	tx->open = 0;
	if (merge_apply_end(env->store, 1) == -1) {
		sync_reject(env, tx->src, REASON_DATABASE, "could not apply "
		    "batch (database error)");
		return -1;
	}
	if (tx->snapshot)
		env->stats.snapshot_changes += st->applied;
	else
		env->stats.applied += st->applied;
	tx->snapshot = 0;
	env->stats.duplicates += st->duplicates;
	env->stats.held += st->held;
	env->stats.kept += st->kept;
	env->stats.batches++;
	tx->busy_us += clock_mono_us() - t0;
	sync_observe_latency(env, tx->busy_us);
	*gaps = st->gaps + st->held;
	if (st->held > 0 && st->applied > 0)
		log_warnx("%d changes from %s are stamped more than "
		    "max_clock_skew ahead of our clock: held back", st->held,
		    peer);
	if (st->own > 0)
		log_info("fetched back %d of our own changes from %s", st->own,
		    peer);
	if (st->kept > 0)
		log_warnx("%d changes from %s could not be applied in full: "
		    "kept aside (labsyncctl refused)", st->kept, peer);
	log_debug("applied %d of %zu changes from %s in %llu us (%llu us "
	    "open)", st->applied, tx->n, peer,
	    (unsigned long long)tx->busy_us,
	    (unsigned long long)(clock_mono_us() - tx->t0_us));
	sync_publish(env);
	*own = st->own;
	return 0;
}

/*
 * Merge a snapshot batch inside tx, opening it if need be (a snapshot
 * cut short leaves merged rows, which the next one merges again). With
 * the last batch, the vector moves up to the snapshot's in tx, which
 * the caller then commits (sync_end). A change the protocol refuses
 * refuses the batch and rolls tx back (-1); 1: a change is stamped too
 * far ahead, so the vector stays (ask again later). *own: our own
 * sequence moved (look at the phase).
 */
int
sync_take_snapshot(struct sync_txn *tx, const Labsync__Snapshot *sp,
    const ProtobufCBinaryData *raw, struct wire_arena *scratch, int *own)
{
	struct labsyncd	*env = tx->env;
	Labsync__Change	*v[SYNC_DECODE_CHUNK];
	uint64_t	 t0 = clock_mono_us();
	char		 why[256], msg[512];
	size_t		 n = 0;
	enum reason	 r;

	*own = 0;
	if (sp->n_changes > 0 && raw == NULL) {
		sync_reject(env, tx->src, REASON_MALFORMED,
		    "malformed snapshot batch");
		goto refused;
	}
	if (!tx->open) {
		tx->busy_us = 0;
		tx->n = 0;
		memset(&tx->st, 0, sizeof(tx->st));
		tx->t0_us = t0;
		if (merge_apply_begin(env->store) == -1)
			goto fail;
		tx->open = 1;
	}
	tx->snapshot = 1;
	/* decoded a few at a time; a change refused rolls tx back */
	for (size_t i = 0; i < sp->n_changes; i++) {
		Labsync__Change *c = wire_unpack_change(&raw[i], scratch);

		if (c == NULL) {
			snprintf(msg, sizeof(msg), "snapshot change %zu of %zu "
			    "is not a protobuf Change; batch refused", i + 1,
			    sp->n_changes);
			sync_reject(env, tx->src, REASON_MALFORMED, msg);
			goto refused;
		}
		if ((r = merge_validate_snapshot(env->store, c, why,
		    sizeof(why))) != REASON_OK && reason_keep(r) == KEEP_NO) {
			snprintf(msg, sizeof(msg), "snapshot change %zu of %zu:"
			    " %s; batch refused", i + 1, sp->n_changes, why);
			sync_reject(env, tx->src, r, msg);
			goto refused;
		}
		v[n++] = c;
		if (n == SYNC_DECODE_CHUNK || i + 1 == sp->n_changes) {
			if (merge_snapshot_more(env->store, v, n, &tx->st) ==
			    -1)
				goto failed;
			n = 0;
			wire_arena_reset(scratch);
		}
	}
	if (!sp->more && tx->st.held == 0 &&
	    merge_snapshot_end(env->store, sp->vector, own) == -1)
		goto failed;
	tx->n += sp->n_changes;
	tx->busy_us += clock_mono_us() - t0;
	if (tx->st.held > 0) {
		log_warnx("%d snapshot changes from %s are stamped more than "
		    "max_clock_skew ahead of our clock: the snapshot is not "
		    "taken as complete", tx->st.held, tx->src->name);
		return 1;
	}
	return 0;
refused:
	wire_arena_reset(scratch);
	if (tx->open)
		merge_apply_abort(env->store);
	tx->open = 0;
	return -1;
failed:
	wire_arena_reset(scratch);
	merge_apply_end(env->store, 0);
	tx->open = 0;
fail:
	sync_reject(env, tx->src, REASON_DATABASE, "could not apply snapshot "
	    "(database error)");
	return -1;
}

/*
 * Try the changes kept aside again (labsyncctl retry; after the layout
 * changed): with reload, the synced tables' layout is read from the
 * database first (a table rebuilt or altered by hand). -1 on failure.
 */
int
sync_release_kept(struct labsyncd *env, int reload, int *released,
    int *kept)
{
	char	 err[256];

	*released = *kept = 0;
	if (reload) {
		if (store_reload_layout(env->store, err, sizeof(err)) == -1) {
			log_warnx("reading the tables' layout again: %s", err);
			return -1;
		}
		schema_fingerprint(env->store, env->fingerprint);
	}
	if (merge_apply_begin(env->store) == -1)
		return -1;
	if (aside_release(env->store, released, kept) == -1) {
		merge_apply_end(env->store, 0);
		return -1;
	}
	return merge_apply_end(env->store, 1);
}
