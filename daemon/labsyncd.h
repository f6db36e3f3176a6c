/*
 * labsyncd.h: the daemon's state, owned by one struct, and the functions
 * its files share.
 */
#ifndef LABSYNC_LABSYNCD_H
#define LABSYNC_LABSYNCD_H

#include <stdint.h>

#include "keys.h"
#include "proto/labsync.pb-c.h"
#include "store.h"

struct bus;
struct clock;
struct config;
struct event;
struct event_base;
struct evhttp;
struct peer;
struct store;

/* Why a message was refused (metrics label "reason"). */
enum reject_reason {
	REJECT_MALFORMED,	/* not a valid envelope, bad frames */
	REJECT_UNKNOWN_TABLE,
	REJECT_UNKNOWN_COLUMN,
	REJECT_WRONG_TYPE,
	REJECT_OWN_ORIGIN,	/* claims to come from this node */
	REJECT_OBSERVER,	/* changes from an observer */
	REJECT_UNKNOWN_PEER,	/* key or name not configured (any more) */
	REJECT_TOO_LARGE,
	REJECT_DATABASE,	/* valid, but could not be applied */
	REJECT_OTHER,
	REJECT_NREASONS
};
extern const char *const reject_reason_names[REJECT_NREASONS];

/* Upper bounds (seconds) of the apply latency histogram's buckets. */
#define APPLY_BUCKETS	9
extern const double apply_bucket_le[APPLY_BUCKETS];

/* Rejection log lines per source and minute: a flood must not fill the
   disk, and one noisy peer must not hide the others. */
struct ratelimit {
	uint64_t	 window_ms;
	int		 logged;
	int		 suppressed;
};

/* Counters for status and metrics. */
struct labsyncd_stats {
	uint64_t	 rejected_by[REJECT_NREASONS];
	uint64_t	 apply_buckets[APPLY_BUCKETS];	/* cumulative */
	uint64_t	 apply_count;
	double		 apply_seconds;
	int64_t		 max_skew_ms;	/* remote HLC ahead of our clock */
	uint64_t	 captured;	/* local changes read to publish */
	uint64_t	 published;	/* changes sent on the live feed */
	uint64_t	 applied;	/* remote changes committed */
	uint64_t	 duplicates;
	uint64_t	 held;		/* too far in the future, for now */
	uint64_t	 rejected;	/* messages refused */
	uint64_t	 batches;	/* batches committed */
	uint64_t	 served;	/* changes sent in catch-up */
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
	struct bus		*router;	/* catch-up server */
	struct bus		*control;	/* labsyncctl status */
	struct bus		*zap;		/* who may connect */
	struct bus		*monitors[2];	/* connection events */
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
	struct labsyncd_stats	 stats;
	struct ratelimit	 reject_limit;	/* sources that are no peer */
	uint8_t			 fingerprint[32];
	int			 debug;		/* -d: debug whatever the config */
};

/* A transaction of received changes, open over one or more batches. */
struct sync_txn {
	int			 open;
	uint64_t		 t0_us;		/* begun */
	uint64_t		 busy_us;	/* spent applying */
	size_t			 n;		/* changes taken */
	struct merge_stats st;
};

/* sync.c: the engine shared by every session. */
struct wire_arena;
int	sync_ahead(struct labsyncd *, const char *peer,
	    const Labsync__ChangeBatch *, const ProtobufCBinaryData *raw,
	    struct wire_arena *scratch, Labsync__Vector *ahead);
int	sync_take(struct labsyncd *, const char *peer,
	    const Labsync__ChangeBatch *, const ProtobufCBinaryData *raw,
	    int from_catchup, struct wire_arena *scratch, struct sync_txn *);
int	sync_end(struct labsyncd *, const char *peer, struct sync_txn *,
	    int *gaps);
void	sync_publish(struct labsyncd *);
void	sync_heartbeat(struct labsyncd *);
void	sync_local(struct labsyncd *);
void	sync_router_cb(struct bus *, void *frames, int nframes, void *arg);
void	sync_reject(struct labsyncd *, const char *peer, const char *why);
Labsync__Hello *sync_hello_new(struct labsyncd *);
void	sync_hello_free(Labsync__Hello *);
void	sync_check_phase(struct labsyncd *);

/* http.c: the HTTP API (evhttp); metrics.c: Prometheus text. */
int	http_open(struct labsyncd *);
void	http_close(struct labsyncd *);
struct evbuffer;
void	metrics_render(struct labsyncd *, struct evbuffer *);

/* zap.c: admission of peers by public key. */
int	zap_open(struct labsyncd *);

/* monitor.c: connection events of a bound socket, and of a peer's
   catch-up socket (the bus it returns is closed by monitor_close, before
   the socket). */
int	monitor_open(struct labsyncd *, void *zsock, const char *name);
struct bus *monitor_peer(struct labsyncd *, void *zsock, struct peer *);
void	monitor_close(struct bus *, void *zsock);

/* control.c: the local control socket of labsyncctl. */
int	control_open(struct labsyncd *);
char	*control_status_json(struct labsyncd *);

#endif
