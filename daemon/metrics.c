/*
 * metrics.c: the Prometheus text exposition of GET /metrics (format
 * version 0.0.4): counters end in _total, every family has HELP and TYPE,
 * per-peer series carry a "peer" label.
 */
#include <stdio.h>

#include <event2/buffer.h>

#include "clock.h"
#include "config.h"
#include "labsyncd.h"
#include "metrics.h"
#include "peer.h"
#include "reason.h"
#include "store.h"
#include "sync.h"

static void
metrics_family(struct evbuffer *b, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

static void
metrics_counter(struct evbuffer *b, const char *name, const char *help,
    uint64_t v)
{
	metrics_family(b, name, "counter", help);
	evbuffer_add_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

static void
metrics_gauge(struct evbuffer *b, const char *name, const char *help,
    double v)
{
	metrics_family(b, name, "gauge", help);
	evbuffer_add_printf(b, "%s %.17g\n", name, v);
}

void
metrics_render(struct labsyncd *env, struct evbuffer *b)
{
	const struct labsyncd_stats *st = &env->stats;
	uint64_t	 now = clock_system_ms();
	int64_t		 waiting, refused;

	metrics_counter(b, "labsync_changes_captured_total",
	    "Changes of this node read from the log to publish.", st->captured);
	metrics_counter(b, "labsync_changes_published_total",
	    "Changes sent on the live feed (own and relayed).", st->published);
	metrics_counter(b, "labsync_changes_applied_total",
	    "Remote changes committed.", st->applied);
	metrics_counter(b, "labsync_changes_duplicate_total",
	    "Remote changes skipped because they were held already.",
	    st->duplicates);
	metrics_counter(b, "labsync_changes_held_total",
	    "Changes held back: stamped beyond max_clock_skew.", st->held);
	metrics_counter(b, "labsync_changes_served_total",
	    "Changes sent to peers catching up.", st->served);
	metrics_counter(b, "labsync_batches_total",
	    "Batches of remote changes committed.", st->batches);
	metrics_family(b, "labsync_messages_rejected_total", "counter",
	    "Messages refused, by reason.");
	for (int i = 0; i < REASON_N; i++)
		if (reason_counted(i))
			evbuffer_add_printf(b, "labsync_messages_rejected_total"
			    "{reason=\"%s\"} %llu\n", reason_name(i),
			    (unsigned long long)st->rejected_by[i]);
	metrics_counter(b, "labsync_connections_refused_total",
	    "Connections whose key is not a configured peer.",
	    st->refused_keys);
	metrics_counter(b, "labsync_connections_dropped_total",
	    "Connections closed or dropped (incl. messages above "
	    "max_message_size) on the bound sockets.", st->disconnects);

	metrics_family(b, "labsync_apply_seconds", "histogram",
	    "Time spent validating, applying and committing one transaction "
	    "of remote changes.");
	for (int i = 0; i < APPLY_BUCKETS; i++)
		evbuffer_add_printf(b,
		    "labsync_apply_seconds_bucket{le=\"%g\"} %llu\n",
		    apply_bucket_le[i],
		    (unsigned long long)st->apply_buckets[i]);
	evbuffer_add_printf(b, "labsync_apply_seconds_bucket{le=\"+Inf\"} "
	    "%llu\n", (unsigned long long)st->apply_count);
	evbuffer_add_printf(b, "labsync_apply_seconds_sum %.9f\n",
	    st->apply_seconds);
	evbuffer_add_printf(b, "labsync_apply_seconds_count %llu\n",
	    (unsigned long long)st->apply_count);

	metrics_family(b, "labsync_peer_up", "gauge",
	    "1 if the peer was heard from within heartbeat_timeout.");
	for (size_t i = 0; i < env->npeers; i++)
		evbuffer_add_printf(b, "labsync_peer_up{peer=\"%s\"} %d\n",
		    peer_name(env->peers[i]),
		    peer_state(env->peers[i]) == PEER_UP);
	metrics_family(b, "labsync_peer_lag_changes", "gauge",
	    "Changes the peer holds that this node has not applied yet.");
	for (size_t i = 0; i < env->npeers; i++)
		evbuffer_add_printf(b, "labsync_peer_lag_changes{peer=\"%s\"} "
		    "%llu\n", peer_name(env->peers[i]),
		    (unsigned long long)peer_lag(env->peers[i]));
	metrics_family(b, "labsync_peer_last_contact_seconds", "gauge",
	    "Seconds since the peer was last heard from (-1: never).");
	for (size_t i = 0; i < env->npeers; i++) {
		uint64_t last = peer_last_contact_ms(env->peers[i]);

		evbuffer_add_printf(b, "labsync_peer_last_contact_seconds"
		    "{peer=\"%s\"} %.3f\n", peer_name(env->peers[i]),
		    last ? (now - last) / 1000.0 : -1.0);
	}

	metrics_family(b, "labsync_peer_unconfirmed_changes", "gauge",
	    "Changes of this node the peer has not confirmed holding.");
	for (size_t i = 0; i < env->npeers; i++) {
		uint64_t oldest;

		evbuffer_add_printf(b, "labsync_peer_unconfirmed_changes"
		    "{peer=\"%s\"} %llu\n", peer_name(env->peers[i]),
		    (unsigned long long)peer_unconfirmed(env->peers[i],
		    &oldest));
	}
	metrics_family(b, "labsync_peer_refused_changes_total", "counter",
	    "Changes of this node the peer reported refused (kept aside "
	    "until an operator acts), counted as they appear.");
	for (size_t i = 0; i < env->npeers; i++)
		evbuffer_add_printf(b, "labsync_peer_refused_changes_total"
		    "{peer=\"%s\"} %llu\n", peer_name(env->peers[i]),
		    (unsigned long long)
		    peer_delivery(env->peers[i])->refused_total);
	metrics_family(b, "labsync_peer_waiting_changes", "gauge",
	    "Changes of this node the peer keeps aside, waiting for a table "
	    "or column it lacks.");
	for (size_t i = 0; i < env->npeers; i++)
		evbuffer_add_printf(b, "labsync_peer_waiting_changes"
		    "{peer=\"%s\"} %u\n", peer_name(env->peers[i]),
		    peer_delivery(env->peers[i])->waiting);
	if (aside_counts(env->store, &waiting, &refused) == 0)
		metrics_gauge(b, "labsync_changes_kept_aside",
		    "Received changes this node keeps aside in part (waiting "
		    "and refused).", (double)(waiting + refused));

	metrics_family(b, "labsync_peer_oldest_unconfirmed_seconds", "gauge",
	    "Age of the oldest change log entry the peer has not confirmed "
	    "holding (0: none): compaction keeps it and all after it.");
	for (size_t i = 0; i < env->npeers; i++) {
		uint64_t oldest;

		compact_held_back(env->store, peer_name(env->peers[i]),
		    &oldest);
		evbuffer_add_printf(b, "labsync_peer_oldest_unconfirmed_seconds"
		    "{peer=\"%s\"} %.3f\n", peer_name(env->peers[i]),
		    oldest > 0 && now > oldest ? (now - oldest) / 1000.0 : 0.0);
	}
	metrics_family(b, "labsync_peer_log_held_changes", "gauge",
	    "Change log entries (all origins) the peer has not confirmed "
	    "holding: compaction keeps them for it.");
	for (size_t i = 0; i < env->npeers; i++) {
		uint64_t oldest;

		evbuffer_add_printf(b, "labsync_peer_log_held_changes"
		    "{peer=\"%s\"} %llu\n", peer_name(env->peers[i]),
		    (unsigned long long)compact_held_back(env->store,
		    peer_name(env->peers[i]), &oldest));
	}
	metrics_gauge(b, "labsync_changelog_changes",
	    "Entries the change log holds now (all origins; compaction "
	    "drops those every peer confirmed).",
	    (double)changelog_count(env->store));
	metrics_gauge(b, "labsync_changelog_bytes",
	    "Bytes of the change log and its index in the database.",
	    (double)changelog_bytes_used(env->store));
	metrics_gauge(b, "labsync_database_bytes",
	    "Size of the database file.", (double)store_db_bytes(env->store));
	metrics_gauge(b, "labsync_pending_local_writes",
	    "Local changes committed but not yet published.",
	    (double)changelog_pending(env->store));
	metrics_gauge(b, "labsync_hlc_max_skew_seconds",
	    "Largest lead of a remote HLC over this node's clock seen.",
	    st->max_skew_ms / 1000.0);
	metrics_gauge(b, "labsync_writable",
	    "1 if this node takes local writes now (a partner: to its "
	    "writable tables).", env->phase == PHASE_RUNNING &&
	    env->conf->role != CONFIG_ROLE_OBSERVER);
}
