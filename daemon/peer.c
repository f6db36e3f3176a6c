/*
 * peer.c: a partner session as an explicit state machine (see enum
 * peer_state): every change of state goes through peer_set_state, which
 * logs it once with its reason.
 *
 * Catch-up is pull-based: we send Hello, the peer answers with its Hello
 * and a ChangeBatch of what we lack; each Ack carries a vector and asks
 * for what lies beyond it. When a batch says more is waiting, we check it
 * and ask for the next one at once, with the vector we will have once
 * it is applied, so the peer reads the next batch while we apply this
 * one. The peer only ever answers vectors, so after a crash we resume
 * from what the database holds.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <zmq.h>

#include "bus.h"
#include "clock.h"
#include "config.h"
#include "labsyncd.h"
#include "log.h"
#include "peer.h"
#include "store.h"
#include "wire.h"

struct peer {
	struct labsyncd		*env;
	struct config_peer	 conf;
	enum peer_state		 state;
	struct bus		*sub;		/* its live feed */
	struct bus		*dealer;	/* its catch-up server */
	uint64_t		 last_heard_ms;
	uint64_t		 started_ms;
	int			 syncing;	/* a request is in flight */
	uint64_t		 sync_sent_ms;
	uint64_t		 refused_ms;	/* we refused an answer of its */
	uint64_t		 sub_heard_ms;	/* any message on its feed */
	int			 settled;	/* answered fully once */
	uint64_t		 lag;		/* changes it has that we lack */
	uint64_t		 live_ms;	/* last batch on its feed */
	char			 last_error[160];
	struct bus		*monitor;	/* of dealer: handshakes */
	int			 handshaking;	/* connected, not through */
	char			 hs_trouble[160];	/* logged, until one
						   succeeds */
	struct ratelimit	 reject_limit;
	/* live changes of one burst of messages go into one transaction:
	   it grows under load and stays small when load is light */
	struct sync_txn		 live;
	/* catch-up answers go into one transaction too, held open between
	   them up to PEER_CATCHUP_MS: with random ids a change then dirties
	   fewer pages (tests/bench/RESULTS.md) */
	struct sync_txn		 catchup;
	struct event		*ev_catchup;	/* commits it if nothing comes */
	struct wire_arena	*live_arena;	/* the live message at hand */
	struct wire_arena	*sync_arena;	/* the catch-up answer at hand */
	struct wire_arena	*scratch;	/* a few changes, decoded */
};

#define PEER_LIVE_MAX	10000	/* changes per transaction, at most */
#define PEER_CATCHUP_MAX 100000	/* ... of catch-up answers */
#define PEER_CATCHUP_MS	1000	/* ... held open at most so long */

static void	peer_sub_cb(struct bus *, zmq_msg_t *, int, void *);
static void	peer_sub_flush_cb(struct bus *, void *);
static void	peer_dealer_cb(struct bus *, zmq_msg_t *, int, void *);
static void	peer_reopen(struct peer *, int);
static void	peer_live_flush(struct peer *);
static void	peer_catchup_settle(void *);
static void	peer_catchup_timer_cb(int, short, void *);

static void
peer_set_state(struct peer *p, enum peer_state state, const char *why)
{
	if (p->state == state)
		return;
	log_info("peer %s: %s -> %s (%s)", p->conf.name,
	    peer_state_name(p->state), peer_state_name(state), why);
	p->state = state;
}

const char *
peer_state_name(enum peer_state s)
{
	switch (s) {
	case PEER_CONNECTING:
		return "connecting";
	case PEER_UP:
		return "up";
	case PEER_DOWN:
		return "down";
	}
	return "?";
}

/*
 * A socket connecting to the peer. With mon, its events go to a monitor
 * (*mon), attached before it connects so that none is missed.
 */
static void *
peer_socket(struct peer *p, int type, const char *endpoint, struct bus **mon)
{
	struct labsyncd	*env = p->env;
	void		*z;
	int64_t		 maxmsg = (int64_t)env->conf->max_message_size;
	int		 zero = 0, ivl = 200, ivl_max = 5000;

	if ((z = zmq_socket(env->zctx, type)) == NULL)
		return NULL;
	zmq_setsockopt(z, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
	zmq_setsockopt(z, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(z, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl));
	zmq_setsockopt(z, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof(ivl_max));
	if (type == ZMQ_SUB) {
		int hwm = 8;	/* bounded, like the publisher's queue */

		zmq_setsockopt(z, ZMQ_RCVHWM, &hwm, sizeof(hwm));
		zmq_setsockopt(z, ZMQ_SUBSCRIBE, "", 0);
	}
	/* the first public_key is the one the peer serves with now */
	if (env->keys.enabled && (p->conf.npublic_keys == 0 ||
	    keys_client(z, &env->keys, p->conf.public_keys[0]) == -1)) {
		log_warnx("peer %s: no usable public key", p->conf.name);
		zmq_close(z);
		return NULL;
	}
	if (mon != NULL)
		*mon = monitor_peer(env, z, p);
	if (zmq_connect(z, endpoint) == -1) {
		log_warnx("peer %s: connect %s: %s", p->conf.name, endpoint,
		    zmq_strerror(zmq_errno()));
		if (mon != NULL) {
			monitor_close(*mon, z);
			*mon = NULL;
		}
		zmq_close(z);
		return NULL;
	}
	return z;
}

struct peer *
peer_new(struct labsyncd *env, const struct config_peer *cp)
{
	struct peer	*p;
	char		 name[64];
	void		*z;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->env = env;
	p->conf = *cp;
	p->conf.publish = cp->publish != NULL ? strdup(cp->publish) : NULL;
	p->conf.sync = cp->sync != NULL ? strdup(cp->sync) : NULL;
	p->state = PEER_CONNECTING;
	p->started_ms = p->sub_heard_ms = clock_system_ms();
	if (cp->publish == NULL) {
		p->settled = 1;		/* it connects to us */
		return p;
	}
	if ((p->live_arena = wire_arena_new()) == NULL ||
	    (p->sync_arena = wire_arena_new()) == NULL ||
	    (p->scratch = wire_arena_new()) == NULL ||
	    (p->ev_catchup = evtimer_new(env->base, peer_catchup_timer_cb,
	    p)) == NULL)
		goto fail;
	snprintf(name, sizeof(name), "%s/sub", cp->name);
	if ((z = peer_socket(p, ZMQ_SUB, cp->publish, NULL)) == NULL ||
	    (p->sub = bus_new(env->base, z, name, peer_sub_cb, p)) == NULL)
		goto fail;
	bus_set_flush(p->sub, peer_sub_flush_cb);
	snprintf(name, sizeof(name), "%s/dealer", cp->name);
	if ((z = peer_socket(p, ZMQ_DEALER, cp->sync, &p->monitor)) == NULL ||
	    (p->dealer = bus_new(env->base, z, name, peer_dealer_cb, p)) ==
	    NULL)
		goto fail;
	log_info("peer %s: connecting to %s and %s", cp->name, cp->publish,
	    cp->sync);
	peer_request(p);
	return p;
fail:
	peer_free(p);
	return NULL;
}

void
peer_free(struct peer *p)
{
	if (p == NULL)
		return;
	if (p->live.open)
		peer_live_flush(p);
	if (p->catchup.open)
		store_settle(p->env->store);
	if (p->ev_catchup != NULL)
		event_free(p->ev_catchup);
	bus_free(p->sub);
	if (p->dealer != NULL)
		monitor_close(p->monitor, bus_socket(p->dealer));
	else
		bus_free(p->monitor);	/* its socket never got a bus */
	bus_free(p->dealer);
	wire_arena_free(p->live_arena);
	wire_arena_free(p->sync_arena);
	wire_arena_free(p->scratch);
	free(p->conf.publish);
	free(p->conf.sync);
	free(p);
}

struct peer *
peer_find(struct labsyncd *env, const char *name)
{
	for (size_t i = 0; i < env->npeers; i++)
		if (strcmp(env->peers[i]->conf.name, name) == 0)
			return env->peers[i];
	return NULL;
}

const char *
peer_name(const struct peer *p)
{
	return p->conf.name;
}

const struct config_peer *
peer_conf(const struct peer *p)
{
	return &p->conf;
}

enum peer_state
peer_state(const struct peer *p)
{
	return p->state;
}

int
peer_has_endpoints(const struct peer *p)
{
	return p->dealer != NULL;
}

int
peer_settled(const struct peer *p)
{
	return p->settled || p->state == PEER_DOWN;
}

uint64_t
peer_lag(const struct peer *p)
{
	return p->lag;
}

uint64_t
peer_last_contact_ms(const struct peer *p)
{
	return p->last_heard_ms;
}

const char *
peer_last_error(const struct peer *p)
{
	return p->last_error;
}

void
peer_set_error(struct peer *p, const char *why)
{
	snprintf(p->last_error, sizeof(p->last_error), "%s", why);
}

/*
 * A handshake that failed is logged once, and kept as the peer's last
 * error, until one succeeds: ZeroMQ retries every few seconds.
 */
void
peer_handshake(struct peer *p, enum peer_hs what, const char *why)
{
	switch (what) {
	case PEER_HS_CONNECTED:
		p->handshaking = 1;
		return;
	case PEER_HS_OK:
		p->handshaking = 0;
		if (p->hs_trouble[0] != '\0')
			log_info("peer %s: handshake succeeded", p->conf.name);
		p->hs_trouble[0] = '\0';
		return;
	case PEER_HS_CLOSED:
		if (!p->handshaking)
			return;		/* an established connection ended */
		break;
	case PEER_HS_FAILED:
		break;
	}
	p->handshaking = 0;
	peer_set_error(p, why);
	if (strcmp(p->hs_trouble, why) == 0)
		return;
	snprintf(p->hs_trouble, sizeof(p->hs_trouble), "%s", why);
	log_warnx("peer %s: %s", p->conf.name, why);
}

struct ratelimit *
peer_ratelimit(struct peer *p)
{
	return &p->reject_limit;
}

void
peer_heard(struct peer *p, const Labsync__Vector *v)
{
	p->last_heard_ms = clock_system_ms();
	peer_set_state(p, PEER_UP, p->state == PEER_DOWN ? "heard again" :
	    "first contact");
	if (v != NULL) {
		p->lag = vector_lag_behind(p->env->store, v);
		/* it holds more of our own changes than we do: we lost some */
		uint64_t own = 0;

		for (size_t i = 0; i < v->n_entries; i++)
			if (strcmp(v->entries[i]->origin,
			    p->env->conf->node_id) == 0)
				own = v->entries[i]->seq;
		/* only a city's word counts: we take no changes from
		   observers, so one could only stop our writes */
		if (p->conf.role == CONFIG_ROLE_CITY &&
		    own > vector_own_seq(p->env->store) &&
		    own > p->env->recover_to) {
			log_warnx("peer %s holds our changes up to %llu, we "
			    "have %llu: fetching them back before taking "
			    "local writes", p->conf.name,
			    (unsigned long long)own,
			    (unsigned long long)vector_own_seq(p->env->store));
			p->env->recover_to = own;
			sync_check_phase(p->env);
		}
	}
}

/*
 * Send Hello (first contact) or Ack: our committed vector, or ahead (the
 * vector we will have once the batch at hand is applied) if given.
 */
static int
peer_send_vector(struct peer *p, int hello, Labsync__Vector *ahead)
{
	Labsync__Envelope	 e = LABSYNC__ENVELOPE__INIT;
	Labsync__Ack		 ack = LABSYNC__ACK__INIT;
	Labsync__Hello		*h = NULL;
	Labsync__Vector		*own = NULL;
	uint8_t			*buf;
	size_t			 len;
	int			 ret;

	if (hello) {
		h = sync_hello_new(p->env);
		own = h->vector;
		if (ahead != NULL)
			h->vector = ahead;
		e.body_case = LABSYNC__ENVELOPE__BODY_HELLO;
		e.hello = h;
	} else {
		ack.vector = ahead != NULL ? ahead : vector_new(p->env->store);
		e.body_case = LABSYNC__ENVELOPE__BODY_ACK;
		e.ack = &ack;
	}
	buf = wire_pack(&e, p->env->conf->node_id, &len);
	ret = buf != NULL ? bus_send1(p->dealer, buf, len) : -1;
	free(buf);
	if (hello) {
		h->vector = own;
		sync_hello_free(h);
	} else if (ahead == NULL)
		vector_free(ack.vector);
	return ret;
}

static void
peer_request_ahead(struct peer *p, Labsync__Vector *ahead)
{
	if (p->dealer == NULL || p->syncing)
		return;
	/* after a refused answer, whatever asks again (the answer to a
	   request sent ahead, gaps) waits a heartbeat: no busy loop */
	if (p->refused_ms != 0 && clock_system_ms() - p->refused_ms <
	    (uint64_t)p->env->conf->heartbeat_interval_ms)
		return;
	/* not sent (no session left): like a lost one, reopened in cron */
	if (peer_send_vector(p, !p->settled, ahead) == -1)
		log_debug("peer %s: request not sent: %s", p->conf.name,
		    zmq_strerror(zmq_errno()));
	p->syncing = 1;
	p->sync_sent_ms = clock_system_ms();
}

void
peer_request(struct peer *p)
{
	peer_request_ahead(p, NULL);
}

/*
 * Behind the peer, and its live feed is not bringing what we lack: a
 * heartbeat often overtakes batches still queued, so only a silent feed
 * (or a gap, see peer_live_flush) calls for catch-up.
 */
static int
peer_lagging(const struct peer *p, uint64_t now)
{
	return p->lag > 0 &&
	    now - p->live_ms > (uint64_t)p->env->conf->heartbeat_interval_ms;
}

void
peer_cron(struct peer *p, uint64_t now, int anti_entropy)
{
	const struct config *conf = p->env->conf;
	uint64_t last = p->last_heard_ms ? p->last_heard_ms : p->started_ms;

	if (now - last > (uint64_t)conf->heartbeat_timeout_ms &&
	    p->state != PEER_DOWN) {
		peer_set_state(p, PEER_DOWN, p->last_heard_ms ?
		    "no heartbeat within heartbeat_timeout" :
		    "no answer within heartbeat_timeout");
		if (!p->settled)
			sync_check_phase(p->env);
	}
	if (p->dealer == NULL)
		return;
	/*
	 * libzmq never reconnects a connecting socket after a protocol
	 * error, such as a message above max_message_size: it just drops
	 * the session. So a feed silent for twice heartbeat_timeout, or a
	 * request unanswered for heartbeat_timeout, gets a fresh socket.
	 */
	if (now - p->sub_heard_ms > 2 * (uint64_t)conf->heartbeat_timeout_ms) {
		peer_reopen(p, ZMQ_SUB);
		p->sub_heard_ms = now;
	}
	/* a lost request or answer (peer restarted): ask again */
	if (p->syncing &&
	    now - p->sync_sent_ms > (uint64_t)conf->heartbeat_timeout_ms) {
		peer_reopen(p, ZMQ_DEALER);
		p->syncing = 0;
	}
	if (anti_entropy || peer_lagging(p, now))
		peer_request(p);
}

/* Replace the live feed's or the catch-up socket with a new one. */
static void
peer_reopen(struct peer *p, int type)
{
	struct bus	**bp = type == ZMQ_SUB ? &p->sub : &p->dealer;
	struct bus	 *nb, *mon = NULL;
	char		  name[64];
	void		 *z;

	snprintf(name, sizeof(name), "%s/%s", p->conf.name,
	    type == ZMQ_SUB ? "sub" : "dealer");
	if ((z = peer_socket(p, type, type == ZMQ_SUB ? p->conf.publish :
	    p->conf.sync, type == ZMQ_SUB ? NULL : &mon)) == NULL)
		return;
	if ((nb = bus_new(p->env->base, z, name, type == ZMQ_SUB ?
	    peer_sub_cb : peer_dealer_cb, p)) == NULL) {
		bus_free(mon);	/* the socket may be gone: only ours */
		return;
	}
	if (type == ZMQ_SUB)
		bus_set_flush(nb, peer_sub_flush_cb);
	else {
		monitor_close(p->monitor, bus_socket(p->dealer));
		p->monitor = mon;
		p->handshaking = 0;
	}
	bus_free(*bp);
	*bp = nb;
	log_debug("peer %s: %s reopened", p->conf.name, name);
}

/* Apply what the last burst of live messages brought, in one go. */
static void
peer_live_flush(struct peer *p)
{
	int	 gaps = 0;

	if (p->live.open &&
	    sync_end(p->env, p->conf.name, &p->live, &gaps) == 0 && gaps > 0)
		peer_request(p);	/* we missed some: catch up */
}

/* Commit the catch-up answers applied so far. */
static int
peer_catchup_commit(struct peer *p, int *gaps)
{
	evtimer_del(p->ev_catchup);
	return sync_end(p->env, p->conf.name, &p->catchup, gaps);
}

/* Another user of the connection, or the timer, ends the held answers. */
static void
peer_catchup_settle(void *arg)
{
	struct peer	*p = arg;
	int		 gaps = 0;

	if (peer_catchup_commit(p, &gaps) == 0 && gaps > 0)
		peer_request(p);
}

static void
peer_catchup_timer_cb(int fd, short what, void *arg)
{
	struct peer	*p = arg;

	(void)fd;
	(void)what;
	if (p->catchup.open)
		store_settle(p->env->store);
}

/*
 * Whether the catch-up transaction stays open for the next answer: not
 * once it holds a gap (we ask again with what we hold), many changes, or
 * has been open PEER_CATCHUP_MS; local writers wait for it. (What it
 * applies is not relayed, so nothing waits in the outbox meanwhile.)
 */
static int
peer_catchup_hold(struct peer *p)
{
	struct sync_txn		*tx = &p->catchup;
	struct timeval		 tv = { 0, PEER_CATCHUP_MS * 1000 };

	if (tx->st.gaps + tx->st.held > 0 || tx->n >= PEER_CATCHUP_MAX ||
	    clock_mono_us() - tx->t0_us >= PEER_CATCHUP_MS * 1000)
		return 0;
	store_hold(p->env->store, peer_catchup_settle, p);
	if (!evtimer_pending(p->ev_catchup, NULL))
		evtimer_add(p->ev_catchup, &tv);
	return 1;
}

static void
peer_sub_flush_cb(struct bus *b, void *arg)
{
	(void)b;
	peer_live_flush(arg);
}

/*
 * The live feed: [topic, envelope]; the topic is the origin of a batch's
 * changes (empty for heartbeats), so our own changes echoed back by
 * relays are dropped undecoded. A single frame is taken as an envelope.
 */
static void
peer_sub_cb(struct bus *b, zmq_msg_t *frames, int n, void *arg)
{
	struct peer		*p = arg;
	Labsync__Envelope	*e;
	zmq_msg_t		*body = &frames[n - 1];
	ProtobufCBinaryData	*raw;
	char			 why[256];

	(void)b;
	p->sub_heard_ms = clock_system_ms();
	if (n > 2) {
		sync_reject(p->env, p->conf.name, "multi-frame message on the "
		    "live feed");
		return;
	}
	if (n == 2 && zmq_msg_size(&frames[0]) ==
	    strlen(p->env->conf->node_id) && memcmp(zmq_msg_data(&frames[0]),
	    p->env->conf->node_id, zmq_msg_size(&frames[0])) == 0) {
		peer_heard(p, NULL);
		return;
	}
	e = wire_unpack_lazy(zmq_msg_data(body), zmq_msg_size(body),
	    p->live_arena, &raw, why, sizeof(why));
	if (e == NULL) {
		sync_reject(p->env, p->conf.name, why);
		wire_arena_reset(p->live_arena);
		return;
	}
	switch (e->body_case) {
	case LABSYNC__ENVELOPE__BODY_HEARTBEAT:
		peer_heard(p, e->heartbeat->vector);
		if (peer_lagging(p, clock_system_ms()))
			peer_request(p);
		break;
	case LABSYNC__ENVELOPE__BODY_BATCH:
		peer_heard(p, NULL);
		if (p->conf.role == CONFIG_ROLE_OBSERVER) {
			sync_reject(p->env, p->conf.name, "changes from an "
			    "observer");
			break;
		}
		p->live_ms = clock_system_ms();
		/* checked as applied: a bad change takes the good ones of the
		   same transaction with it, which catch-up fetches again */
		if (sync_take(p->env, p->conf.name, e->batch, raw, 0,
		    p->scratch, &p->live) == 0 && p->live.n >= PEER_LIVE_MAX)
			peer_live_flush(p);
		break;
	default:
		sync_reject(p->env, p->conf.name, "unexpected message on the "
		    "live feed");
		break;
	}
	wire_arena_reset(p->live_arena);
}

static void
peer_dealer_cb(struct bus *b, zmq_msg_t *frames, int n, void *arg)
{
	struct peer		*p = arg;
	Labsync__Envelope	*e;
	ProtobufCBinaryData	*raw;
	Labsync__Vector		*ahead;
	char			 why[256];
	int			 gaps = 0;

	(void)b;
	if (n != 1) {
		sync_reject(p->env, p->conf.name, "multi-frame answer");
		return;
	}
	e = wire_unpack_lazy(zmq_msg_data(&frames[0]), zmq_msg_size(&frames[0]),
	    p->sync_arena, &raw, why, sizeof(why));
	if (e == NULL) {
		sync_reject(p->env, p->conf.name, why);
		wire_arena_reset(p->sync_arena);
		return;
	}
	switch (e->body_case) {
	case LABSYNC__ENVELOPE__BODY_HELLO:
		if (e->hello->protocol_version != WIRE_VERSION)
			log_warnx("peer %s speaks protocol %u", p->conf.name,
			    e->hello->protocol_version);
		if (e->hello->schema_fingerprint.len != 32 ||
		    memcmp(e->hello->schema_fingerprint.data,
		    p->env->fingerprint, 32) != 0)
			log_warnx("peer %s: its synced tables differ from "
			    "ours; changes for unknown columns will be "
			    "refused", p->conf.name);
		peer_heard(p, e->hello->vector);
		break;
	case LABSYNC__ENVELOPE__BODY_BATCH:
		peer_heard(p, NULL);
		p->syncing = 0;
		if (p->conf.role == CONFIG_ROLE_OBSERVER) {
			sync_reject(p->env, p->conf.name, "changes from an "
			    "observer");
			break;
		}
		/*
		 * More to come: ask for it now, as if this batch were in,
		 * so the peer reads the next one while we apply this one. A
		 * change we end up not applying leaves a gap in the answer,
		 * and a gap makes us ask again with what we hold.
		 */
		ahead = e->batch->more ? vector_new(p->env->store) : NULL;
		if (ahead != NULL && sync_ahead(p->env, p->conf.name,
		    e->batch, raw, p->scratch, ahead) == -1) {
			vector_free(ahead);
			p->refused_ms = clock_system_ms();
			break;
		}
		if (ahead != NULL)
			peer_request_ahead(p, ahead);
		vector_free(ahead);
		if (sync_take(p->env, p->conf.name, e->batch, raw, 1,
		    p->scratch, &p->catchup) == -1) {
			evtimer_del(p->ev_catchup);
			p->refused_ms = clock_system_ms();
			break;
		}
		if (e->batch->more && peer_catchup_hold(p))
			break;
		if (peer_catchup_commit(p, &gaps) == -1)
			break;
		if (e->batch->more || gaps > 0)
			peer_request(p);
		else if (!p->settled) {
			p->settled = 1;
			log_info("peer %s: caught up", p->conf.name);
			sync_check_phase(p->env);
		}
		break;
	default:
		sync_reject(p->env, p->conf.name, "unexpected answer");
		break;
	}
	wire_arena_reset(p->sync_arena);
}
