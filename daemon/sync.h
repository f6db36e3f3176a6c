/*
 * sync.h: the replication engine every session shares (sync.c): the
 * apply transaction, refusals, the live feed we publish, and the phase
 * in which the node takes local writes.
 *
 * sync.c calls no session code (peer.c, catchup.c): a session hands it
 * a struct sync_source, its own slot for what the engine records of
 * refused messages, and the engine tells through return values what the
 * session has to do next (ask again, look at the phase).
 */
#ifndef LABSYNC_SYNC_H
#define LABSYNC_SYNC_H

#include <stddef.h>
#include <stdint.h>

#include "labsyncd.h"
#include "proto/labsync.pb-c.h"
#include "reason.h"

struct wire_arena;

/* Upper bounds (seconds) of the apply latency histogram's buckets. */
extern const double apply_bucket_le[APPLY_BUCKETS];

/* A configured peer as the engine sees it; kept by its session. */
struct sync_source {
	const char		*name;
	char			 last_error[160];	/* last refusal */
	uint64_t		 last_error_ms;	/* ... when */
	struct ratelimit	 limit;		/* its refusal log lines */
	uint8_t			 fingerprint[32];	/* of its schema, as
							   its Hello said */
	int			 has_fingerprint;
	int			 own_only;	/* a partner: only changes of
						   its own origin are taken */
	int			 ignored_said;	/* ... others logged once */
};

/* Keep what a peer's Hello says of its schema; warn once when it
   differs from ours. */
void	sync_heard_hello(struct labsyncd *, struct sync_source *,
	    const Labsync__Hello *);

/*
 * The apply transaction: received changes, taken over one or more
 * batches (sync_take opens it) and committed by sync_end. Only sync.c
 * sees inside; a session holds one per stream of batches.
 */
struct sync_txn;

struct sync_txn	*sync_txn_new(struct labsyncd *, struct sync_source *);
/* Frees tx, closed by sync_end first (if not, it is committed). */
void		 sync_txn_free(struct sync_txn *);
int		 sync_txn_open(const struct sync_txn *);
/* Whether tx may stay open for more batches: it holds no gap, fewer than
   max changes, and has been open less than max_us. */
int		 sync_txn_may_hold(const struct sync_txn *, size_t max,
		    uint64_t max_us);
size_t		 sync_txn_changes(const struct sync_txn *);

/* Check a batch and apply it inside tx, opening tx if need be; a bad
   change refuses the batch and rolls tx back (-1). */
int	sync_take(struct sync_txn *, const Labsync__ChangeBatch *,
	    const ProtobufCBinaryData *raw, int from_catchup,
	    struct wire_arena *scratch);
/* Commit tx and publish what was new. *gaps: changes not applied yet
   (ask for catch-up); *own: our own changes fetched back (look at the
   phase, sync_check_phase). */
int	sync_end(struct sync_txn *, int *gaps, int *own);
/* Move ahead over a catch-up answer before it is applied; -1 refused. */
int	sync_ahead(struct labsyncd *, struct sync_source *,
	    const Labsync__ChangeBatch *, const ProtobufCBinaryData *raw,
	    struct wire_arena *scratch, Labsync__Vector *ahead);

/* Merge a snapshot batch inside tx; the last one moves the vector (see
   sync.c). 0, 1 (not complete: ask again later) or -1 refused. */
int	sync_take_snapshot(struct sync_txn *, const Labsync__Snapshot *,
	    const ProtobufCBinaryData *raw, struct wire_arena *scratch,
	    int *own);

/* Log (rate-limited), count by its code and keep a refused message of a
   peer's; why is for people, code decides. */
void	sync_reject(struct labsyncd *, struct sync_source *, enum reason,
	    const char *why);
/* The same for a source that is no configured peer. */
void	sync_reject_other(struct labsyncd *, const char *who, enum reason,
	    const char *why);

/* Our Hello: node, role, protocol, schema, vector; NULL if out of
   memory. */
Labsync__Hello *sync_hello_new(struct labsyncd *);
void	sync_hello_free(Labsync__Hello *);

/* Decide whether the node takes local writes; settled: every peer we
   connect to has answered our first request, or is down. */
void	sync_check_phase(struct labsyncd *, int settled);

void	sync_publish(struct labsyncd *);
void	sync_heartbeat(struct labsyncd *);
void	sync_local(struct labsyncd *);

/* Try the changes kept aside again; with reload, read the tables'
   layout from the database first. The hook for a layout change. */
int		 sync_release_kept(struct labsyncd *, int reload,
		    int *released, int *kept);

#endif
