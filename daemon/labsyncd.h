/*
 * labsyncd.h: the daemon's state, owned by one struct (struct labsyncd),
 * and the types its fields need. The functions of each daemon file are
 * declared in that file's own header (sync.h, catchup.h, peer.h, ...).
 */
#ifndef LABSYNC_LABSYNCD_H
#define LABSYNC_LABSYNCD_H

#include <stdint.h>

#include "keys.h"
#include "reason.h"

struct bus;
struct catchup_server;
struct clock;
struct config;
struct event;
struct event_base;
struct evhttp;
struct peer;
struct store;

/* Bound sockets whose connection events are watched (monitor.c). */
#define MONITOR_BOUND_MAX	2

/* Buckets of the apply latency histogram (bounds: sync.h). */
#define APPLY_BUCKETS	9

/* Rejection log lines per source and minute: a flood must not fill the
   disk, and one noisy peer must not hide the others. */
struct ratelimit {
	uint64_t	 window_ms;
	int		 logged;
	int		 suppressed;
};

/* Counters for status and metrics. */
struct labsyncd_stats {
	uint64_t	 rejected_by[REASON_N];	/* by code */
	uint64_t	 apply_buckets[APPLY_BUCKETS];	/* cumulative */
	uint64_t	 apply_count;
	double		 apply_seconds;
	int64_t		 max_skew_ms;	/* remote HLC ahead of our clock */
	uint64_t	 captured;	/* local changes read to publish */
	uint64_t	 published;	/* changes sent on the live feed */
	uint64_t	 applied;	/* remote changes committed */
	uint64_t	 duplicates;
	uint64_t	 held;		/* too far in the future, for now */
	uint64_t	 kept;		/* applied in part, the rest kept aside */
	uint64_t	 rejected;	/* messages refused */
	uint64_t	 batches;	/* batches committed */
	uint64_t	 served;	/* changes sent in catch-up */
	uint64_t	 snapshot_changes;	/* merged from snapshots */
	uint64_t	 snapshots_served;	/* snapshots sent whole */
	uint64_t	 refused_keys;	/* connections ZAP turned away */
	uint64_t	 disconnects;	/* connections dropped or lost */
};

/* Whether the node takes local writes; see store_writable. */
enum labsyncd_phase {
	PHASE_STARTING,		/* asking peers whether we lost changes */
	PHASE_RECOVERING,	/* fetching our own lost changes back */
	PHASE_RUNNING,
};

struct labsyncd {
	struct config		*conf;
	struct event_base	*base;
	void			*zctx;
	struct clock		*clock;
	struct store		*store;
	struct bus		*pub;		/* live fan-out */
	struct catchup_server	*server;	/* catch-up, on the ROUTER */
	struct bus		*control;	/* labsyncctl status */
	struct bus		*zap;		/* who may connect */
	struct bus		*monitors[MONITOR_BOUND_MAX];	/* events */
	int			 nmonitors;
	struct keys		 keys;
	struct evhttp		*http;
	uint8_t			 token_hash[32];	/* SHA-256 of the token */
	int			 has_token;
	struct peer		**peers;
	size_t			 npeers;
	enum labsyncd_phase	 phase;
	uint64_t		 recover_to;	/* own seq a peer holds */
	int			 inotify_fd;
	struct event		*ev_inotify;
	struct event		*ev_cron;
	struct event		*ev_wake;	/* publish local changes soon */
	struct event		*ev_recheck;	/* look again after inotify */
	int64_t			 recheck_us;	/* its next delay */
	struct event		*ev_watchdog;	/* systemd WATCHDOG=1 */
	struct event		*ev_sigterm, *ev_sigint, *ev_sighup;
	uint64_t		 last_anti_entropy_ms;
	uint64_t		 last_heartbeat_ms;
	uint64_t		 last_compact_ms;
	struct labsyncd_stats	 stats;
	struct ratelimit	 reject_limit;	/* sources that are no peer */
	uint8_t			 fingerprint[32];
	int			 debug;		/* -d: debug whatever the config */
};

#endif
