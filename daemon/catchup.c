/*
 * catchup.c: both halves of catch-up, the repair path under the live
 * feed.
 *
 * Server (catchup_server_*): our ROUTER takes Hello and Ack, each with
 * the asker's vector, and answers one bounded ChangeBatch of what the
 * asker lacks (after Hello, our own Hello first). The sender is the user
 * id ZAP gave its connection, never a field of the message.
 *
 * Client (struct catchup, one per peer session): pull-based. We send
 * Hello, the peer answers with its Hello and a ChangeBatch of what we
 * lack; each Ack carries a vector and asks for what lies beyond it. When
 * a batch says more is waiting, we check it and ask for the next one at
 * once, with the vector we will have once it is applied, so the peer
 * reads the next batch while we apply this one. The peer only ever
 * answers vectors, so after a crash we resume from what the database
 * holds. Answers go into one apply transaction (sync.c), held open
 * between them up to CATCHUP_HOLD_MS.
 *
 * Snapshots: an asker whose vector lies below what our log still holds
 * of some origin (its floor: compacted away, or taken in as a snapshot)
 * gets the state instead (snapshot.c): one read transaction per asker,
 * kept between its batches and closed when the last is sent, when the
 * asker stays quiet for CATCHUP_SNAPSHOT_IDLE_MS, or at shutdown. The
 * client asks for each next batch with an Ack that says so, merges each
 * batch in a transaction of its own, and with the last takes the
 * snapshot's vector; then it asks on from there as usual.
 *
 * The session (peer.c) owns the DEALER and hears back through the hooks
 * of its struct catchup_session; this file calls no peer code.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <zmq.h>

#include "bus.h"
#include "catchup.h"
#include "clock.h"
#include "config.h"
#include "labsyncd.h"
#include "log.h"
#include "store.h"
#include "sync.h"
#include "wire.h"

#define CATCHUP_HOLD_MAX 100000	/* changes per held transaction, at most */
#define CATCHUP_HOLD_MS	1000	/* ... held open at most so long */
#define CATCHUP_SNAPSHOT_IDLE_MS 60000	/* a snapshot's asker gone quiet */

struct catchup {
	struct labsyncd		*env;
	struct catchup_session	 s;
	struct bus		*dealer;	/* the session's, to the peer */
	int			 syncing;	/* a request is in flight */
	uint64_t		 sent_ms;
	uint64_t		 refused_ms;	/* we refused an answer of its */
	int			 settled;	/* answered fully once */
	/* server side, for this peer: our last answer to it was whole (no
	   more to come), so its next vector is not one sent ahead of a
	   batch it has not committed yet; 0 until we answered once */
	int			 served_whole;
	uint8_t			 said_fp[32];	/* fingerprint of our last Hello */
	/* catch-up answers go into one transaction, held open between
	   them up to CATCHUP_HOLD_MS: with random ids a change then dirties
	   fewer pages (tests/bench/RESULTS.md) */
	struct sync_txn		*txn;
	struct event		*ev_hold;	/* commits it if nothing comes */
	struct wire_arena	*arena;		/* the answer at hand */
	struct wire_arena	*scratch;	/* a few changes, decoded */
	int			 snap_active;	/* a snapshot is coming in */
	int			 snap_held;	/* txn holds snapshot batches */
	uint64_t		 snap_sent;	/* ... rows of it so far */
	uint64_t		 snap_total;	/* ... of so many */
	uint64_t		 snap_t0_us;
};

/* A snapshot we serve, between the asker's requests. */
struct catchup_snap {
	struct catchup_snap	*next;
	char			*who;
	struct snapshot		*snap;
	uint64_t		 last_ms;	/* asked last */
};

struct catchup_server {
	struct labsyncd		*env;
	struct bus		*router;
	catchup_find_fn		 find;
	struct catchup_snap	*snaps;
	struct event		*ev_reap;	/* closes those gone quiet */
};

static void	catchup_settle(void *);
static void	catchup_hold_cb(int, short, void *);

struct catchup *
catchup_new(struct labsyncd *env, const struct catchup_session *s, int ask)
{
	struct catchup	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_warn("peer %s: catch-up", s->src->name);
		return NULL;
	}
	c->env = env;
	c->s = *s;
	if (!ask) {
		c->settled = 1;		/* it connects to us */
		return c;
	}
	if ((c->txn = sync_txn_new(env, s->src)) == NULL ||
	    (c->arena = wire_arena_new()) == NULL ||
	    (c->scratch = wire_arena_new()) == NULL ||
	    (c->ev_hold = evtimer_new(env->base, catchup_hold_cb, c)) ==
	    NULL) {
		log_warnx("peer %s: catch-up: out of memory", s->src->name);
		catchup_free(c);
		return NULL;
	}
	return c;
}

void
catchup_free(struct catchup *c)
{
	if (c == NULL)
		return;
	if (c->txn != NULL && sync_txn_open(c->txn))
		store_settle(c->env->store);	/* catchup_settle commits */
	if (c->ev_hold != NULL)
		event_free(c->ev_hold);
	sync_txn_free(c->txn);
	wire_arena_free(c->arena);
	wire_arena_free(c->scratch);
	free(c);
}

void
catchup_set_dealer(struct catchup *c, struct bus *dealer)
{
	c->dealer = dealer;
}

int
catchup_settled(const struct catchup *c)
{
	return c->settled;
}

/*
 * Send Hello (first contact) or Ack: our committed vector, or ahead (the
 * vector we will have once the batch at hand is applied) if given.
 */
static int
catchup_send_vector(struct catchup *c, int hello, Labsync__Vector *ahead,
    int snapshot_next)
{
	struct labsyncd		*env = c->env;
	Labsync__Envelope	 e = LABSYNC__ENVELOPE__INIT;
	Labsync__Ack		 ack = LABSYNC__ACK__INIT;
	Labsync__Hello		*h = NULL;
	Labsync__Vector		*own = NULL;
	uint8_t			*buf;
	size_t			 len;
	int			 ret;

	if (hello) {
		if ((h = sync_hello_new(env)) == NULL)
			return -1;
		own = h->vector;
		if (ahead != NULL)
			h->vector = ahead;
		e.body_case = LABSYNC__ENVELOPE__BODY_HELLO;
		e.hello = h;
		memcpy(c->said_fp, env->fingerprint, sizeof(c->said_fp));
	} else {
		ack.vector = ahead != NULL ? ahead :
		    vector_new_committed(env->store);
		if (ack.vector == NULL)
			return -1;
		ack.snapshot_next = snapshot_next;
		e.body_case = LABSYNC__ENVELOPE__BODY_ACK;
		e.ack = &ack;
	}
	buf = wire_pack(&e, env->conf->node_id, &len);
	ret = buf != NULL ? bus_send1(c->dealer, buf, len) : -1;
	free(buf);
	if (hello) {
		h->vector = own;
		sync_hello_free(h);
	} else if (ahead == NULL)
		vector_free(ack.vector);
	return ret;
}

static void
catchup_request_ahead(struct catchup *c, Labsync__Vector *ahead)
{
	int	 hello;

	if (c->dealer == NULL || c->syncing)
		return;
	/* after a refused answer, whatever asks again (the answer to a
	   request sent ahead, gaps) waits a heartbeat: no busy loop */
	if (c->refused_ms != 0 && clock_system_ms() - c->refused_ms <
	    (uint64_t)c->env->conf->heartbeat_interval_ms)
		return;
	/* a Hello until answered fully, and again once our schema changed
	   (the peer learns the new fingerprint from it) */
	hello = !c->settled || memcmp(c->said_fp, c->env->fingerprint,
	    sizeof(c->said_fp)) != 0;
	/* not sent (no session left): like a lost one, reopened in cron */
	if (catchup_send_vector(c, hello, ahead, 0) == -1)
		log_debug("peer %s: request not sent: %s", c->s.src->name,
		    zmq_strerror(zmq_errno()));
	c->syncing = 1;
	c->sent_ms = clock_system_ms();
}

void
catchup_request(struct catchup *c)
{
	catchup_request_ahead(c, NULL);
}

/*
 * Nothing asked for heartbeat_interval. A peer we connect to may know us
 * only as one that connects in (no endpoint of ours to listen to): then
 * our requests are all it hears of us, and it would show us down after
 * heartbeat_timeout of quiet. So an idle client asks (an Ack, answered
 * by an empty batch) every heartbeat_interval. After we refused an
 * answer it would only bring the same one again: then half a
 * heartbeat_timeout, still within the time the peer waits for us.
 */
int
catchup_quiet(const struct catchup *c, uint64_t now)
{
	const struct config *conf = c->env->conf;

	if (c->refused_ms != 0 && now - c->refused_ms <
	    (uint64_t)conf->heartbeat_timeout_ms / 2)
		return 0;
	return c->dealer != NULL && !c->syncing && now - c->sent_ms >=
	    (uint64_t)conf->heartbeat_interval_ms;
}

/* A lost request or answer (peer restarted): forget it, to ask again. */
int
catchup_lost(struct catchup *c, uint64_t now)
{
	if (!c->syncing || now - c->sent_ms <=
	    (uint64_t)c->env->conf->heartbeat_timeout_ms)
		return 0;
	c->syncing = 0;
	return 1;
}

/* The next batch of the snapshot coming in. */
static void
catchup_snapshot_next(struct catchup *c)
{
	if (catchup_send_vector(c, 0, NULL, 1) == -1)
		log_debug("peer %s: request not sent: %s", c->s.src->name,
		    zmq_strerror(zmq_errno()));
	c->syncing = 1;
	c->sent_ms = clock_system_ms();
}

int
catchup_snapshot_progress(const struct catchup *c, uint64_t *sent,
    uint64_t *total)
{
	*sent = c->snap_sent;
	*total = c->snap_total;
	return c->snap_active;
}

/* Commit the answers applied so far. */
static int
catchup_commit(struct catchup *c, int *gaps)
{
	int	 own = 0, ret;

	evtimer_del(c->ev_hold);
	c->snap_held = 0;
	ret = sync_end(c->txn, gaps, &own);
	if (own > 0)
		c->s.check_phase(c->s.arg);
	return ret;
}

/* Another user of the connection, or the timer, ends the held answers. */
static void
catchup_settle(void *arg)
{
	struct catchup	*c = arg;
	int		 gaps = 0;

	if (catchup_commit(c, &gaps) == 0 && gaps > 0)
		catchup_request(c);
}

static void
catchup_hold_cb(int fd, short what, void *arg)
{
	struct catchup	*c = arg;

	(void)fd;
	(void)what;
	if (sync_txn_open(c->txn))
		store_settle(c->env->store);
}

/*
 * Whether the transaction stays open for the next answer: not once it
 * holds a gap (we ask again with what we hold), many changes, or has
 * been open CATCHUP_HOLD_MS; local writers wait for it. (What it applies
 * is not relayed, so nothing waits in the outbox meanwhile.)
 */
static int
catchup_hold(struct catchup *c)
{
	struct timeval	 tv = { 0, CATCHUP_HOLD_MS * 1000 };

	if (!sync_txn_may_hold(c->txn, CATCHUP_HOLD_MAX,
	    CATCHUP_HOLD_MS * 1000))
		return 0;
	store_hold(c->env->store, catchup_settle, c);
	if (!evtimer_pending(c->ev_hold, NULL))
		evtimer_add(c->ev_hold, &tv);
	return 1;
}

/* A ChangeBatch answering our request. */
static void
catchup_batch(struct catchup *c, const Labsync__ChangeBatch *batch,
    const ProtobufCBinaryData *raw)
{
	struct labsyncd	*env = c->env;
	Labsync__Vector	*ahead;
	int		 gaps = 0;

	c->syncing = 0;
	if (c->s.observer) {
		sync_reject(env, c->s.src, REASON_OBSERVER,
		    "changes from an observer");
		return;
	}
	/*
	 * More to come: ask for it now, as if this batch were in, so the
	 * peer reads the next one while we apply this one. A change we end
	 * up not applying leaves a gap in the answer, and a gap makes us
	 * ask again with what we hold.
	 */
	ahead = batch->more ? vector_new(env->store) : NULL;
	if (ahead != NULL && sync_ahead(env, c->s.src, batch, raw, c->scratch,
	    ahead) == -1) {
		vector_free(ahead);
		c->refused_ms = clock_system_ms();
		return;
	}
	if (ahead != NULL)
		catchup_request_ahead(c, ahead);
	vector_free(ahead);
	if (sync_take(c->txn, batch, raw, 1, c->scratch) == -1) {
		evtimer_del(c->ev_hold);
		c->refused_ms = clock_system_ms();
		return;
	}
	if (batch->more && catchup_hold(c))
		return;
	if (catchup_commit(c, &gaps) == -1)
		return;
	if (batch->more || gaps > 0)
		catchup_request(c);
	else if (!c->settled) {
		c->settled = 1;
		log_info("peer %s: caught up", c->s.src->name);
		c->s.check_phase(c->s.arg);
	}
}

/* A snapshot batch answering our request. */
static void
catchup_snapshot(struct catchup *c, const Labsync__Snapshot *sp,
    const ProtobufCBinaryData *raw)
{
	int	 gaps = 0, own = 0, rc;

	c->syncing = 0;
	if (c->s.observer) {
		sync_reject(c->env, c->s.src, REASON_OBSERVER,
		    "a snapshot from an observer");
		return;
	}
	if (sp->rows_from == 0) {
		c->snap_active = 1;
		c->snap_sent = 0;
		c->snap_t0_us = clock_mono_us();
		log_info("peer %s: it no longer holds the changes we lack: "
		    "taking a snapshot of its %llu rows", c->s.src->name,
		    (unsigned long long)sp->rows_total);
	} else if (!c->snap_active || sp->rows_from != c->snap_sent) {
		/* the rest of one we gave up: the next request starts a
		   new one */
		log_debug("peer %s: a batch of a snapshot we do not take in "
		    "(from row %llu): ignored", c->s.src->name,
		    (unsigned long long)sp->rows_from);
		c->snap_active = 0;
		return;
	}
	c->snap_total = sp->rows_total;
	/* catch-up answers held open go first, on their own */
	if (sync_txn_open(c->txn) && !c->snap_held)
		catchup_commit(c, &gaps);
	/* the server reads the next batch while we merge this one */
	if (sp->more)
		catchup_snapshot_next(c);
	if ((rc = sync_take_snapshot(c->txn, sp, raw, c->scratch, &own)) ==
	    -1) {
		evtimer_del(c->ev_hold);
		c->snap_held = 0;
		c->snap_active = 0;
		c->refused_ms = clock_system_ms();
		return;
	}
	c->snap_sent = sp->rows_sent;
	/* batches share a transaction, like catch-up answers */
	c->snap_held = 1;
	if (sp->more && rc == 0 && catchup_hold(c))
		return;
	if (catchup_commit(c, &gaps) == -1 || rc == 1) {
		c->snap_active = 0;
		c->refused_ms = clock_system_ms();
		return;
	}
	if (sp->more)
		return;
	c->snap_active = 0;
	log_info("peer %s: snapshot taken in: %llu rows in %.1f s",
	    c->s.src->name, (unsigned long long)sp->rows_sent,
	    (clock_mono_us() - c->snap_t0_us) / 1e6);
	if (own)
		c->s.check_phase(c->s.arg);
	catchup_request(c);	/* on from the snapshot's vector */
}

void
catchup_dealer_cb(struct bus *b, zmq_msg_t *frames, int n, void *arg)
{
	struct catchup		*c = arg;
	struct labsyncd		*env = c->env;
	Labsync__Envelope	*e;
	ProtobufCBinaryData	*raw;
	char			 why[256];
	enum reason		 r;

	(void)b;
	if (n != 1) {
		sync_reject(env, c->s.src, REASON_MALFORMED,
		    "multi-frame answer");
		return;
	}
	e = wire_unpack_lazy(zmq_msg_data(&frames[0]), zmq_msg_size(&frames[0]),
	    c->arena, &raw, &r, why, sizeof(why));
	if (e == NULL) {
		sync_reject(env, c->s.src, r, why);
		wire_arena_reset(c->arena);
		return;
	}
	switch (e->body_case) {
	case LABSYNC__ENVELOPE__BODY_HELLO:
		if (e->hello->protocol_version != WIRE_VERSION)
			log_warnx("peer %s speaks protocol %u", c->s.src->name,
			    e->hello->protocol_version);
		sync_heard_hello(env, c->s.src, e->hello);
		c->s.heard(c->s.arg, e->hello->vector, 1);
		break;
	case LABSYNC__ENVELOPE__BODY_BATCH:
		c->s.heard(c->s.arg, NULL, 0);
		c->snap_active = 0;	/* one cut short: the server forgot it */
		catchup_batch(c, e->batch, raw);
		break;
	case LABSYNC__ENVELOPE__BODY_SNAPSHOT:
		c->s.heard(c->s.arg, NULL, 0);
		catchup_snapshot(c, e->snapshot, raw);
		break;
	default:
		sync_reject(env, c->s.src, REASON_MALFORMED,
		    "unexpected answer");
		break;
	}
	wire_arena_reset(c->arena);
}

/* A refused request: counted for the peer called who, if it is one. */
static void
catchup_server_reject(struct catchup_server *srv, const char *who,
    enum reason code, const char *why)
{
	struct catchup	*c = srv->find(srv->env, who);

	if (c != NULL)
		sync_reject(srv->env, c->s.src, code, why);
	else
		sync_reject_other(srv->env, who, code, why);
}

static int
catchup_reply_add(void *arg, const char *origin, const uint8_t *data,
    size_t len)
{
	(void)origin;
	return wire_batch_add(arg, data, len);
}

static struct catchup_snap *
catchup_snap_find(struct catchup_server *srv, const char *who)
{
	struct catchup_snap	*sn;

	for (sn = srv->snaps; sn != NULL; sn = sn->next)
		if (strcmp(sn->who, who) == 0)
			return sn;
	return NULL;
}

/* Close a snapshot we serve: its read transaction ends. */
static void
catchup_snap_drop(struct catchup_server *srv, struct catchup_snap *sn)
{
	struct catchup_snap	**pp;

	for (pp = &srv->snaps; *pp != NULL; pp = &(*pp)->next)
		if (*pp == sn) {
			*pp = sn->next;
			break;
		}
	snapshot_free(sn->snap);
	free(sn->who);
	free(sn);
}

static struct catchup_snap *
catchup_snap_new(struct catchup_server *srv, const char *who,
    const char *why)
{
	struct catchup_snap	*sn;
	struct timeval		 tv = { CATCHUP_SNAPSHOT_IDLE_MS / 1000, 0 };
	uint64_t		 sent, total;

	if ((sn = calloc(1, sizeof(*sn))) == NULL ||
	    (sn->who = strdup(who)) == NULL) {
		log_warn("snapshot for %s", who);
		free(sn);
		return NULL;
	}
	if ((sn->snap = snapshot_open(srv->env->store)) == NULL) {
		free(sn->who);
		free(sn);
		return NULL;
	}
	snapshot_progress(sn->snap, &sent, &total);
	log_info("snapshot for %s: %s; sending the state of %llu rows "
	    "instead", who, why, (unsigned long long)total);
	sn->next = srv->snaps;
	srv->snaps = sn;
	if (!evtimer_pending(srv->ev_reap, NULL))
		evtimer_add(srv->ev_reap, &tv);
	return sn;
}

/* Close the snapshots whose askers have gone quiet. */
static void
catchup_reap_cb(int fd, short what, void *arg)
{
	struct catchup_server	*srv = arg;
	struct catchup_snap	*sn, *next;
	struct timeval		 tv = { CATCHUP_SNAPSHOT_IDLE_MS / 1000, 0 };
	uint64_t		 now = clock_system_ms();

	(void)fd;
	(void)what;
	for (sn = srv->snaps; sn != NULL; sn = next) {
		next = sn->next;
		if (now - sn->last_ms < CATCHUP_SNAPSHOT_IDLE_MS)
			continue;
		log_warnx("snapshot for %s: no request for %d s: closed",
		    sn->who, CATCHUP_SNAPSHOT_IDLE_MS / 1000);
		catchup_snap_drop(srv, sn);
	}
	if (srv->snaps != NULL)
		evtimer_add(srv->ev_reap, &tv);
}

/* The next batch of a snapshot we serve. */
static void
catchup_serve_snapshot(struct catchup_server *srv, struct catchup *c,
    const void *data[2], size_t len[2], struct catchup_snap *sn)
{
	struct labsyncd		*env = srv->env;
	struct wire_batch	 b;
	uint8_t			*buf;
	uint64_t		 from, sent, total;
	int			 more = 0;

	sn->last_ms = clock_system_ms();
	snapshot_progress(sn->snap, &from, &total);
	wire_batch_init(&b);
	if (snapshot_read(sn->snap, env->conf->catchup_changes,
	    env->conf->max_message_size / 2, catchup_reply_add, &b,
	    &more) == -1) {
		log_warnx("snapshot for %s: could not read the database: "
		    "closed", sn->who);
		wire_batch_free(&b);
		catchup_snap_drop(srv, sn);
		return;
	}
	snapshot_progress(sn->snap, &sent, &total);
	if ((buf = wire_snapshot_pack(&b, env->conf->node_id, more ? NULL :
	    snapshot_vector(sn->snap), more, total, from, sent, &len[1])) !=
	    NULL) {
		data[1] = buf;
		if (bus_send(srv->router, data, len, 2) == 0)
			env->stats.served += b.n;
		free(buf);
	}
	/* its vector is committed as it asks for the next (a snapshot
	   moves none until its last batch is in) */
	if (c != NULL)
		c->served_whole = !more;
	log_debug("snapshot for %s: a batch of %zu changes, %llu of %llu "
	    "rows", sn->who, b.n, (unsigned long long)sent,
	    (unsigned long long)total);
	wire_batch_free(&b);
	if (more)
		return;
	log_info("snapshot for %s: sent, %llu rows", sn->who,
	    (unsigned long long)sent);
	env->stats.snapshots_served++;
	catchup_snap_drop(srv, sn);
}

/*
 * Answer a catch-up request: what the requester lacks, one batch; a
 * snapshot batch if it lacks what our log no longer holds, or asks for
 * the next batch of its snapshot (snapshot_next).
 */
static void
catchup_serve(struct catchup_server *srv, struct catchup *c, zmq_msg_t *id,
    const Labsync__Vector *v, const Labsync__Hello *hello_back,
    const char *who, int snapshot_next)
{
	struct labsyncd		*env = srv->env;
	struct catchup_snap	*sn;
	struct wire_batch	 b;
	char			 why[160];
	const void		*data[2];
	size_t			 len[2];
	uint8_t			*buf;
	int			 more = 0;

	data[0] = zmq_msg_data(id);
	len[0] = zmq_msg_size(id);
	if (hello_back != NULL) {
		Labsync__Envelope e = LABSYNC__ENVELOPE__INIT;

		e.body_case = LABSYNC__ENVELOPE__BODY_HELLO;
		e.hello = UNCONST(hello_back);
		if ((buf = wire_pack(&e, env->conf->node_id, &len[1])) != NULL) {
			data[1] = buf;
			bus_send(srv->router, data, len, 2);
			free(buf);
		}
	}
	/* a request that is not for the next batch starts afresh */
	if ((sn = catchup_snap_find(srv, who)) != NULL && !snapshot_next) {
		catchup_snap_drop(srv, sn);
		sn = NULL;
	}
	if (sn == NULL && snapshot_needed(env->store, v, why,
	    sizeof(why)) == 1)
		sn = catchup_snap_new(srv, who, why);
	if (sn != NULL) {
		catchup_serve_snapshot(srv, c, data, len, sn);
		return;
	}
	wire_batch_init(&b);
	if (changelog_read_missing(env->store, v, env->conf->catchup_changes,
	    env->conf->max_message_size / 2, catchup_reply_add, &b,
	    &more) == -1) {
		log_warnx("catch-up for %s: could not read the log", who);
		wire_batch_free(&b);
		return;
	}
	if ((buf = wire_batch_pack(&b, env->conf->node_id, more, &len[1])) !=
	    NULL) {
		data[1] = buf;
		if (bus_send(srv->router, data, len, 2) == 0)
			env->stats.served += b.n;
		free(buf);
	}
	if (c != NULL)
		c->served_whole = !more;
	if (b.n > 0)
		log_debug("catch-up for %s: sent %zu changes%s", who, b.n,
		    more ? ", more to come" : "");
	wire_batch_free(&b);
}

static void
catchup_router_cb(struct bus *bus, zmq_msg_t *frames, int n, void *arg)
{
	struct catchup_server	*srv = arg;
	struct labsyncd		*env = srv->env;
	Labsync__Envelope	*e;
	Labsync__Hello		*h;
	struct catchup		*c;
	char			 why[256];
	const char		*who;
	enum reason		 r;

	(void)bus;
	/* with keys, ZAP's user id names the sender even of garbage */
	if (!env->keys.enabled ||
	    (who = zmq_msg_gets(&frames[n - 1], "User-Id")) == NULL)
		who = "(sync socket)";
	if (n != 2) {
		catchup_server_reject(srv, who, REASON_MALFORMED,
		    "malformed request frames");
		return;
	}
	e = wire_unpack(zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1]),
	    NULL, &r, why, sizeof(why));
	if (e == NULL) {
		catchup_server_reject(srv, who, r, why);
		return;
	}
	/*
	 * Who sent it: with keys, the user id ZAP gave the connection (the
	 * peer's name); never a field of the message. A peer removed by a
	 * reload is unknown from then on. Without keys (loopback tests and
	 * demos only) the sender field is all there is.
	 */
	if (env->keys.enabled) {
		who = zmq_msg_gets(&frames[1], "User-Id");
		if (who == NULL || (c = srv->find(env, who)) == NULL) {
			sync_reject_other(env, who != NULL ? who :
			    "(unknown key)", REASON_UNKNOWN_PEER,
			    "not a configured peer (removed?): refused");
			wire_free(e);
			return;
		}
	} else {
		who = e->sender != NULL && e->sender[0] != '\0' ? e->sender :
		    "(unnamed)";
		c = srv->find(env, who);
	}
	/*
	 * While we stream it a catch-up, the asker sends its vector ahead,
	 * as if the batch at hand were committed: taken as confirmed, a
	 * crash of the asker before its commit would leave it behind what
	 * compaction dropped. So its vector counts only after a whole
	 * answer (and it sends one, committed, every heartbeat_interval).
	 */
	switch (e->body_case) {
	case LABSYNC__ENVELOPE__BODY_HELLO:
		if (c != NULL) {
			sync_heard_hello(env, c->s.src, e->hello);
			c->s.heard(c->s.arg, e->hello->vector, c->served_whole);
		}
		h = sync_hello_new(env);
		catchup_serve(srv, c, &frames[0], e->hello->vector, h, who, 0);
		sync_hello_free(h);
		break;
	case LABSYNC__ENVELOPE__BODY_ACK:
		if (c != NULL)
			c->s.heard(c->s.arg, e->ack->vector, c->served_whole);
		catchup_serve(srv, c, &frames[0], e->ack->vector, NULL, who,
		    e->ack->snapshot_next);
		break;
	default:
		catchup_server_reject(srv, who, REASON_MALFORMED,
		    "unexpected request on the sync socket");
		break;
	}
	wire_free(e);
}

struct catchup_server *
catchup_server_new(struct labsyncd *env, void *zsock, catchup_find_fn find)
{
	struct catchup_server	*srv;

	if ((srv = calloc(1, sizeof(*srv))) == NULL) {
		log_warn("catch-up server");
		zmq_close(zsock);
		return NULL;
	}
	srv->env = env;
	srv->find = find;
	if ((srv->ev_reap = evtimer_new(env->base, catchup_reap_cb, srv)) ==
	    NULL) {
		log_warnx("catch-up server: out of memory");
		zmq_close(zsock);
		free(srv);
		return NULL;
	}
	if ((srv->router = bus_new(env->base, zsock, "sync",
	    catchup_router_cb, srv)) == NULL) {
		event_free(srv->ev_reap);
		free(srv);
		return NULL;
	}
	return srv;
}

void
catchup_server_free(struct catchup_server *srv)
{
	if (srv == NULL)
		return;
	while (srv->snaps != NULL)
		catchup_snap_drop(srv, srv->snaps);
	if (srv->ev_reap != NULL)
		event_free(srv->ev_reap);
	bus_free(srv->router);
	free(srv);
}
