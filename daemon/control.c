/*
 * control.c: the local control socket (ipc, next to the database by
 * default) through which labsyncctl asks the running daemon how it sees
 * its peers now, and tells it that it has just committed a write. Local
 * file permissions guard it; it never listens on the network.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <zmq.h>

#include "bus.h"
#include "catchup.h"
#include "clock.h"
#include "config.h"
#include "control.h"
#include "labsyncd.h"
#include "log.h"
#include "peer.h"
#include "store.h"
#include "sync.h"

static const char *
control_phase_name(enum labsyncd_phase phase)
{
	switch (phase) {
	case PHASE_STARTING:
		return "starting";
	case PHASE_RECOVERING:
		return "recovering";
	case PHASE_RUNNING:
		return "running";
	}
	return "?";
}

/* A fingerprint as hex: a JSON string, or null if fp is NULL. */
static json_t *
control_hex(const uint8_t *fp)
{
	char	 hex[65];

	if (fp == NULL)
		return json_null();
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", fp[i]);
	return json_string(hex);
}

/*
 * The other direction: what the peer has not confirmed of our changes,
 * and what it keeps aside of them (kept: "waiting", "refused" or null).
 */
static void
control_delivery_json(json_t *po, const struct peer *p, uint64_t now)
{
	const struct peer_delivery *d = peer_delivery(p);
	uint64_t	 oldest, n = peer_unconfirmed(p, &oldest);
	const char	*kept = d->refused > 0 ? "refused" :
	    d->waiting > 0 ? "waiting" : NULL;

	json_object_set_new(po, "unconfirmed", d->known ?
	    json_integer((json_int_t)n) : json_null());
	json_object_set_new(po, "unconfirmed_oldest_s", oldest > 0 &&
	    now > oldest ? json_real((now - oldest) / 1000.0) : json_null());
	json_object_set_new(po, "kept", kept != NULL ? json_string(kept) :
	    json_null());
	json_object_set_new(po, "kept_waiting", json_integer(d->waiting));
	json_object_set_new(po, "kept_refused", json_integer(d->refused));
	json_object_set_new(po, "kept_reason", kept != NULL ?
	    json_string(reason_name(d->reason)) : json_null());
	json_object_set_new(po, "kept_what", kept != NULL ?
	    json_string(d->what) : json_null());
	json_object_set_new(po, "kept_since_s", kept != NULL &&
	    d->since_ms > 0 && now > d->since_ms ?
	    json_real((now - d->since_ms) / 1000.0) : json_null());
}

/* A snapshot from the peer coming in: its progress, else null. */
static void
control_snapshot_json(struct labsyncd *env, json_t *po, const struct peer *p)
{
	struct catchup	*c = peer_catchup_find(env, peer_name(p));
	uint64_t	 sent, total;

	if (c == NULL || !catchup_snapshot_progress(c, &sent, &total)) {
		json_object_set_new(po, "snapshot", json_null());
		return;
	}
	json_object_set_new(po, "snapshot", json_pack("{s:I, s:I}",
	    "rows", (json_int_t)sent, "rows_total", (json_int_t)total));
}

/* What the peer holds back in our change log: entries of any origin it
   has not confirmed, which compaction keeps for it, and their age. */
static void
control_log_json(json_t *po, struct labsyncd *env, const struct peer *p,
    uint64_t now)
{
	uint64_t	 oldest, n = compact_held_back(env->store, peer_name(p),
	    &oldest);

	json_object_set_new(po, "holds_log", json_integer((json_int_t)n));
	json_object_set_new(po, "holds_log_oldest_s", oldest > 0 &&
	    now > oldest ? json_real((now - oldest) / 1000.0) : json_null());
}

char *
control_status_json(struct labsyncd *env)
{
	Labsync__Vector	*v = vector_new(env->store);
	json_t		*o, *vec, *peers, *stats;
	uint64_t	 now = clock_system_ms();
	int64_t		 waiting, refused;
	char		*s;

	vec = json_object();
	for (size_t i = 0; v != NULL && i < v->n_entries; i++)
		json_object_set_new(vec, v->entries[i]->origin,
		    json_integer((json_int_t)v->entries[i]->seq));
	vector_free(v);
	peers = json_array();
	for (size_t i = 0; i < env->npeers; i++) {
		struct peer *p = env->peers[i];
		uint64_t last = peer_last_contact_ms(p);
		uint64_t err = peer_last_error_ms(p);
		json_t *po = json_pack("{s:s, s:s, s:s, s:I, s:o, s:s, s:o, s:o}",
		    "name", peer_name(p),
		    "role", config_role_name(peer_conf(p)->role),
		    "state", peer_state_name(peer_state(p)),
		    "lag", (json_int_t)peer_lag(p),
		    "last_contact_s", last ? json_real((now - last) / 1000.0) :
		    json_null(),
		    "last_error", peer_last_error(p),
		    "fingerprint", control_hex(peer_fingerprint(p)),
		    "last_error_age_s", err ? json_real((now - err) / 1000.0) :
		    json_null());

		control_delivery_json(po, p, now);
		control_snapshot_json(env, po, p);
		control_log_json(po, env, p, now);
		json_array_append_new(peers, po);
	}
	stats = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
	    "captured", (json_int_t)env->stats.captured,
	    "published", (json_int_t)env->stats.published,
	    "applied", (json_int_t)env->stats.applied,
	    "duplicates", (json_int_t)env->stats.duplicates,
	    "held", (json_int_t)env->stats.held,
	    "rejected", (json_int_t)env->stats.rejected,
	    "batches", (json_int_t)env->stats.batches,
	    "served", (json_int_t)env->stats.served,
	    "refused_keys", (json_int_t)env->stats.refused_keys,
	    "disconnects", (json_int_t)env->stats.disconnects);
	if (aside_counts(env->store, &waiting, &refused) == 0)
		json_object_set_new(stats, "kept_aside", json_pack(
		    "{s:I, s:I}", "waiting", (json_int_t)waiting,
		    "refused", (json_int_t)refused));
	json_object_set_new(stats, "snapshot_changes",
	    json_integer((json_int_t)env->stats.snapshot_changes));
	json_object_set_new(stats, "snapshots_served",
	    json_integer((json_int_t)env->stats.snapshots_served));
	o = json_pack("{s:s, s:o, s:s, s:s, s:o, s:I, s:o, s:o, s:{s:I, s:I}}",
	    "node", env->conf->node_id,
	    "fingerprint", control_hex(env->fingerprint),
	    "role", config_role_name(env->conf->role),
	    "phase", control_phase_name(env->phase),
	    "vector", vec,
	    "pending", (json_int_t)changelog_pending(env->store),
	    "peers", peers,
	    "stats", stats,
	    "log", "changes", (json_int_t)changelog_count(env->store),
	    "bytes", (json_int_t)changelog_bytes_used(env->store));
	s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return s;
}

/* labsyncctl retry: the layout read again, every kept change tried. */
static char *
control_retry(struct labsyncd *env)
{
	json_t	*o;
	char	*s;
	int	 released, kept;

	if (sync_release_kept(env, 1, &released, &kept) == -1)
		o = json_pack("{s:s}", "error", "retry failed (see the log)");
	else
		o = json_pack("{s:b, s:i, s:i}", "ok", 1, "released", released,
		    "kept", kept);
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

/* labsyncctl discard: "ORIGIN SEQ" */
static char *
control_discard(struct labsyncd *env, const char *arg, size_t len)
{
	char	 origin[64], buf[128];
	unsigned long long seq;
	json_t	*o;
	char	*s;
	int	 n;

	if (len >= sizeof(buf))
		return strdup("{\"error\":\"bad request\"}");
	memcpy(buf, arg, len);
	buf[len] = '\0';
	if (sscanf(buf, "%63s %llu", origin, &seq) != 2)
		return strdup("{\"error\":\"bad request\"}");
	store_settle(env->store);
	if ((n = aside_discard(env->store, origin, seq)) == -1)
		o = json_pack("{s:s}", "error", "discard failed (see the log)");
	else
		o = json_pack("{s:b, s:i}", "ok", 1, "discarded", n);
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

static void
control_cb(struct bus *b, zmq_msg_t *frames, int n, void *arg)
{
	struct labsyncd	*env = arg;
	const void	*data[3];
	size_t		 len[3];
	char		*reply = NULL;
	const char	*req;
	size_t		 reqlen;

	/* ROUTER from a REQ: identity, empty delimiter, request */
	if (n != 3)
		return;
	req = zmq_msg_data(&frames[2]);
	reqlen = zmq_msg_size(&frames[2]);
	if (reqlen == 6 && memcmp(req, "status", 6) == 0)
		reply = control_status_json(env);
	else if (reqlen == 4 && memcmp(req, "wake", 4) == 0) {
		sync_local(env);
		reply = strdup("{\"ok\":true}");
	} else if (reqlen == 5 && memcmp(req, "retry", 5) == 0)
		reply = control_retry(env);
	else if (reqlen > 8 && memcmp(req, "discard ", 8) == 0)
		reply = control_discard(env, req + 8, reqlen - 8);
	else
		reply = strdup("{\"error\":\"unknown request\"}");
	for (int i = 0; i < 2; i++) {
		data[i] = zmq_msg_data(&frames[i]);
		len[i] = zmq_msg_size(&frames[i]);
	}
	data[2] = reply;
	len[2] = reply != NULL ? strlen(reply) : 0;
	bus_send(b, data, len, 3);
	free(reply);
}

int
control_open(struct labsyncd *env)
{
	void	*z;
	char	*endpoint;
	int	 zero = 0;

	if ((z = zmq_socket(env->zctx, ZMQ_ROUTER)) == NULL)
		return -1;
	zmq_setsockopt(z, ZMQ_LINGER, &zero, sizeof(zero));
	if (asprintf(&endpoint, "ipc://%s", env->conf->control) == -1) {
		zmq_close(z);
		return -1;
	}
	/* a socket file left by a killed daemon would make bind fail */
	unlink(env->conf->control);
	if (zmq_bind(z, endpoint) == -1) {
		log_warnx("control socket %s: %s", env->conf->control,
		    zmq_strerror(zmq_errno()));
		free(endpoint);
		zmq_close(z);
		return -1;
	}
	free(endpoint);
	if ((env->control = bus_new(env->base, z, "control", control_cb,
	    env)) == NULL)
		return -1;
	return 0;
}
