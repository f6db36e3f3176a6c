/*
 * peer.c: a partner session as an explicit state machine (see enum
 * peer_state): every change of state goes through peer_set_state, which
 * logs it once with its reason.
 *
 * The session owns the sockets to the peer: the SUB on its live feed,
 * whose batches it applies here, and the DEALER to its catch-up server,
 * whose requests and answers are catchup.c's (the session's struct
 * catchup). Calls go one way: peer.c calls catchup.c, sync.c and
 * monitor.c, which call back only through the hooks it hands them.
 */
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "bus.h"
#include "catchup.h"
#include "clock.h"
#include "config.h"
#include "labsyncd.h"
#include "log.h"
#include "monitor.h"
#include "peer.h"
#include "store.h"
#include "sync.h"
#include "wire.h"

struct peer {
	struct labsyncd		*env;
	struct config_peer	 conf;
	enum peer_state		 state;
	struct bus		*sub;		/* its live feed */
	struct bus		*dealer;	/* its catch-up server */
	struct catchup		*catchup;	/* what goes over it */
	struct sync_source	 src;		/* name, refusals (sync.c) */
	uint64_t		 last_heard_ms;
	uint64_t		 started_ms;
	uint64_t		 sub_heard_ms;	/* any message on its feed */
	uint64_t		 lag;		/* changes it has that we lack */
	uint64_t		 live_ms;	/* last batch on its feed */
	struct bus		*monitor;	/* of dealer: handshakes */
	struct monitor_hook	 hook;		/* ... told to us */
	int			 handshaking;	/* connected, not through */
	uint64_t		 hs_cause;	/* trouble logged, until one
						   succeeds; 0: none */
	/* live changes of one burst of messages go into one transaction:
	   it grows under load and stays small when load is light */
	struct sync_txn		*live;
	struct wire_arena	*live_arena;	/* the live message at hand */
	struct wire_arena	*scratch;	/* a few changes, decoded */
	struct peer_delivery	 delivery;	/* of our own changes */
};

#define PEER_LIVE_MAX	10000	/* changes per transaction, at most */

static void	peer_sub_cb(struct bus *, zmq_msg_t *, int, void *);
static void	peer_sub_flush_cb(struct bus *, void *);
static void	peer_reopen(struct peer *, int);
static void	peer_live_flush(struct peer *);
static void	peer_handshake_cb(void *, enum monitor_hs, uint64_t,
		    const char *);
static void	peer_heard_cb(void *, const Labsync__Vector *, int);
static void	peer_check_phase_cb(void *);

static void
peer_set_state(struct peer *p, enum peer_state state, const char *why)
{
	if (p->state == state)
		return;
	/* up again: what went wrong before is over (the log keeps it) */
	if (state == PEER_UP) {
		p->src.last_error[0] = '\0';
		p->src.last_error_ms = 0;
	}
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
		*mon = monitor_peer(env, z, p->conf.name, &p->hook);
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
	struct catchup_session	 cs;
	struct peer		*p;
	char			 name[64];
	void			*z;

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		log_warn("peer %s", cp->name);
		return NULL;
	}
	p->env = env;
	p->conf = *cp;
	p->conf.publish = p->conf.sync = NULL;
	if ((cp->publish != NULL &&
	    (p->conf.publish = strdup(cp->publish)) == NULL) ||
	    (cp->sync != NULL && (p->conf.sync = strdup(cp->sync)) == NULL)) {
		log_warn("peer %s", cp->name);
		goto fail;
	}
	p->src.name = p->conf.name;
	p->src.own_only = cp->role == CONFIG_ROLE_PARTNER;
	p->hook.cb = peer_handshake_cb;
	p->hook.arg = p;
	p->state = PEER_CONNECTING;
	p->started_ms = p->sub_heard_ms = clock_system_ms();
	memset(&cs, 0, sizeof(cs));
	cs.src = &p->src;
	cs.observer = cp->role == CONFIG_ROLE_OBSERVER;
	cs.heard = peer_heard_cb;
	cs.check_phase = peer_check_phase_cb;
	cs.arg = p;
	/* a peer without endpoints connects to us: nothing to ask */
	if ((p->catchup = catchup_new(env, &cs, cp->publish != NULL)) == NULL)
		goto fail;
	if (cp->publish == NULL)
		return p;
	if ((p->live = sync_txn_new(env, &p->src)) == NULL ||
	    (p->live_arena = wire_arena_new()) == NULL ||
	    (p->scratch = wire_arena_new()) == NULL) {
		log_warnx("peer %s: out of memory", cp->name);
		goto fail;
	}
	snprintf(name, sizeof(name), "%s/sub", cp->name);
	if ((z = peer_socket(p, ZMQ_SUB, cp->publish, NULL)) == NULL ||
	    (p->sub = bus_new(env->base, z, name, peer_sub_cb, p)) == NULL)
		goto fail;
	bus_set_flush(p->sub, peer_sub_flush_cb);
	snprintf(name, sizeof(name), "%s/dealer", cp->name);
	if ((z = peer_socket(p, ZMQ_DEALER, cp->sync, &p->monitor)) == NULL ||
	    (p->dealer = bus_new(env->base, z, name, catchup_dealer_cb,
	    p->catchup)) == NULL)
		goto fail;
	catchup_set_dealer(p->catchup, p->dealer);
	log_info("peer %s: connecting to %s and %s", cp->name, cp->publish,
	    cp->sync);
	catchup_request(p->catchup);
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
	if (p->live != NULL)
		peer_live_flush(p);
	catchup_free(p->catchup);	/* commits what it holds open */
	sync_txn_free(p->live);
	bus_free(p->sub);
	if (p->dealer != NULL)
		monitor_close(p->monitor, bus_socket(p->dealer));
	else
		bus_free(p->monitor);	/* its socket never got a bus */
	bus_free(p->dealer);
	wire_arena_free(p->live_arena);
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

/* The catch-up client of the peer called name (catchup_find_fn). */
struct catchup *
peer_catchup_find(struct labsyncd *env, const char *name)
{
	struct peer	*p = peer_find(env, name);

	return p != NULL ? p->catchup : NULL;
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

/* Has it answered our first catch-up request (or is it known down)? */
static int
peer_settled(const struct peer *p)
{
	return catchup_settled(p->catchup) || p->state == PEER_DOWN;
}

/* Whether the node takes local writes, now that every peer we connect to
   has answered or is down, or not yet. */
void
peer_check_phase(struct labsyncd *env)
{
	int	 settled = 1;

	for (size_t i = 0; i < env->npeers; i++)
		if (!peer_settled(env->peers[i]))
			settled = 0;
	sync_check_phase(env, settled);
}

static void
peer_check_phase_cb(void *arg)
{
	struct peer	*p = arg;

	peer_check_phase(p->env);
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

const uint8_t *
peer_fingerprint(const struct peer *p)
{
	return p->src.has_fingerprint ? p->src.fingerprint : NULL;
}

const char *
peer_last_error(const struct peer *p)
{
	return p->src.last_error;
}

uint64_t
peer_last_error_ms(const struct peer *p)
{
	return p->src.last_error_ms;
}

const struct peer_delivery *
peer_delivery(const struct peer *p)
{
	return &p->delivery;
}

uint64_t
peer_unconfirmed(const struct peer *p, uint64_t *oldest_ms)
{
	uint64_t	 own = vector_own_seq(p->env->store);
	uint64_t	 n;

	*oldest_ms = 0;
	if (!p->delivery.known || own <= p->delivery.confirmed)
		return 0;
	n = own - p->delivery.confirmed;
	*oldest_ms = CLOCK_MS(changelog_own_hlc(p->env->store,
	    p->delivery.confirmed + 1));
	return n;
}

const char *
peer_delivery_problem(const struct peer *p, uint64_t now_ms, char *detail,
    size_t len)
{
	const struct peer_delivery *d = &p->delivery;
	uint64_t	 oldest, n = peer_unconfirmed(p, &oldest);

	if (d->refused > 0) {
		snprintf(detail, len, "refuses %u of our changes (%s: %s)",
		    d->refused, reason_name(d->reason), d->what);
		return reason_name(d->reason);
	}
	if (p->state == PEER_UP && n > 0 && oldest > 0 && now_ms > oldest &&
	    now_ms - oldest > (uint64_t)p->env->conf->heartbeat_timeout_ms) {
		snprintf(detail, len, "has not confirmed %llu of our changes "
		    "for %.1f s", (unsigned long long)n,
		    (now_ms - oldest) / 1000.0);
		return "unconfirmed";
	}
	return NULL;
}

/* What its heartbeat says it keeps aside of our changes. */
static void
peer_heard_kept(struct peer *p, const Labsync__Heartbeat *hb)
{
	struct peer_delivery *d = &p->delivery;
	const Labsync__Kept *k = NULL;

	for (size_t i = 0; i < hb->n_kept; i++)
		if (hb->kept[i]->origin != NULL &&
		    strcmp(hb->kept[i]->origin, p->env->conf->node_id) == 0)
			k = hb->kept[i];
	if (k != NULL && k->refused > d->refused) {
		d->refused_total += k->refused - d->refused;
		log_warnx("peer %s refuses %u of our changes (%s, %s): "
		    "an operator must act there", p->conf.name, k->refused,
		    reason_name(k->reason), k->what);
	}
	d->waiting = k != NULL ? k->waiting : 0;
	d->refused = k != NULL ? k->refused : 0;
	d->reason = k != NULL ? (enum reason)k->reason : REASON_OK;
	d->since_ms = k != NULL ? k->since_ms : 0;
	snprintf(d->what, sizeof(d->what), "%.128s",
	    k != NULL && k->what != NULL ? k->what : "");
}

/*
 * A handshake that failed is logged once, and kept as the peer's last
 * error, until one succeeds: ZeroMQ retries every few seconds.
 */
static void
peer_handshake_cb(void *arg, enum monitor_hs what, uint64_t cause,
    const char *why)
{
	struct peer	*p = arg;

	switch (what) {
	case MONITOR_HS_CONNECTED:
		p->handshaking = 1;
		return;
	case MONITOR_HS_OK:
		p->handshaking = 0;
		if (p->hs_cause != 0)
			log_info("peer %s: handshake succeeded", p->conf.name);
		p->hs_cause = 0;
		return;
	case MONITOR_HS_CLOSED:
		if (!p->handshaking)
			return;		/* an established connection ended */
		break;
	case MONITOR_HS_FAILED:
		break;
	}
	p->handshaking = 0;
	snprintf(p->src.last_error, sizeof(p->src.last_error), "%s", why);
	p->src.last_error_ms = clock_system_ms();
	if (p->hs_cause == cause)
		return;
	p->hs_cause = cause;
	log_warnx("peer %s: %s", p->conf.name, why);
}

/*
 * Something arrived from the peer (any socket): it is alive. With v,
 * what it holds; with confirms, as committed, so that our log may let go
 * of it (compact.c).
 */
static void
peer_heard(struct peer *p, const Labsync__Vector *v, int confirms)
{
	p->last_heard_ms = clock_system_ms();
	peer_set_state(p, PEER_UP, p->state == PEER_DOWN ? "heard again" :
	    "first contact");
	if (v != NULL && confirms)
		compact_heard(p->env->store, p->conf.name, v);
	if (v != NULL) {
		p->lag = vector_lag_behind(p->env->store, v);
		/* it holds more of our own changes than we do: we lost some */
		uint64_t own = 0;

		for (size_t i = 0; i < v->n_entries; i++)
			if (strcmp(v->entries[i]->origin,
			    p->env->conf->node_id) == 0)
				own = v->entries[i]->seq;
		p->delivery.known = 1;
		p->delivery.confirmed = own;
		/* only a city's word counts: we take no changes of ours
		   from observers or partners, so one could only stop our
		   writes */
		if (p->conf.role == CONFIG_ROLE_CITY &&
		    own > vector_own_seq(p->env->store) &&
		    own > p->env->recover_to) {
			log_warnx("peer %s holds our changes up to %llu, we "
			    "have %llu: fetching them back before taking "
			    "local writes", p->conf.name,
			    (unsigned long long)own,
			    (unsigned long long)vector_own_seq(p->env->store));
			p->env->recover_to = own;
			peer_check_phase(p->env);
		}
	}
}

static void
peer_heard_cb(void *arg, const Labsync__Vector *v, int confirms)
{
	peer_heard(arg, v, confirms);
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
		peer_set_state(p, PEER_DOWN, p->last_heard_ms == 0 ?
		    "no answer within heartbeat_timeout" : p->dealer != NULL ?
		    "no heartbeat within heartbeat_timeout" :
		    "no request from it within heartbeat_timeout");
		if (!catchup_settled(p->catchup))
			peer_check_phase(p->env);
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
	if (catchup_lost(p->catchup, now))
		peer_reopen(p, ZMQ_DEALER);
	if (anti_entropy || peer_lagging(p, now) ||
	    catchup_quiet(p->catchup, now))
		catchup_request(p->catchup);
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
	    peer_sub_cb : catchup_dealer_cb, type == ZMQ_SUB ? (void *)p :
	    p->catchup)) == NULL) {
		bus_free(mon);	/* the socket may be gone: only ours */
		return;
	}
	if (type == ZMQ_SUB)
		bus_set_flush(nb, peer_sub_flush_cb);
	else {
		monitor_close(p->monitor, bus_socket(p->dealer));
		p->monitor = mon;
		p->handshaking = 0;
		catchup_set_dealer(p->catchup, nb);
	}
	bus_free(*bp);
	*bp = nb;
	log_debug("peer %s: %s reopened", p->conf.name, name);
}

/* Apply what the last burst of live messages brought, in one go. */
static void
peer_live_flush(struct peer *p)
{
	int	 gaps = 0, own = 0;

	if (!sync_txn_open(p->live) || sync_end(p->live, &gaps, &own) == -1)
		return;
	if (own > 0)
		peer_check_phase(p->env);
	if (gaps > 0)
		catchup_request(p->catchup);	/* we missed some: catch up */
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
	enum reason		 r;

	(void)b;
	p->sub_heard_ms = clock_system_ms();
	if (n > 2) {
		sync_reject(p->env, &p->src, REASON_MALFORMED,
		    "multi-frame message on the live feed");
		return;
	}
	if (n == 2 && zmq_msg_size(&frames[0]) ==
	    strlen(p->env->conf->node_id) && memcmp(zmq_msg_data(&frames[0]),
	    p->env->conf->node_id, zmq_msg_size(&frames[0])) == 0) {
		peer_heard(p, NULL, 0);
		return;
	}
	e = wire_unpack_lazy(zmq_msg_data(body), zmq_msg_size(body),
	    p->live_arena, &raw, &r, why, sizeof(why));
	if (e == NULL) {
		sync_reject(p->env, &p->src, r, why);
		wire_arena_reset(p->live_arena);
		return;
	}
	switch (e->body_case) {
	case LABSYNC__ENVELOPE__BODY_HEARTBEAT:
		peer_heard(p, e->heartbeat->vector, 1);
		peer_heard_kept(p, e->heartbeat);
		if (peer_lagging(p, clock_system_ms()))
			catchup_request(p->catchup);
		break;
	case LABSYNC__ENVELOPE__BODY_BATCH:
		peer_heard(p, NULL, 0);
		if (p->conf.role == CONFIG_ROLE_OBSERVER) {
			sync_reject(p->env, &p->src, REASON_OBSERVER,
			    "changes from an observer");
			break;
		}
		p->live_ms = clock_system_ms();
		/* checked as applied: a bad change takes the good ones of the
		   same transaction with it, which catch-up fetches again */
		if (sync_take(p->live, e->batch, raw, 0, p->scratch) == 0 &&
		    sync_txn_changes(p->live) >= PEER_LIVE_MAX)
			peer_live_flush(p);
		break;
	default:
		sync_reject(p->env, &p->src, REASON_MALFORMED,
		    "unexpected message on the live feed");
		break;
	}
	wire_arena_reset(p->live_arena);
}
