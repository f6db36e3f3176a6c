/*
 * store.h: the node's SQLite database. One connection, WAL mode. Owns the
 * capture triggers, the change log, the per-column merge metadata and the
 * version vector; nothing else in labsyncd speaks SQL.
 */
#ifndef LABSYNC_STORE_H
#define LABSYNC_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "proto/labsync.pb-c.h"
#include "reason.h"

#define STORE_FORMAT		4	/* version of the labsync_* tables */
#define STORE_MAX_PK		1024	/* bytes in a primary key */
#define STORE_MAX_VALUE		(1024 * 1024)	/* bytes in a text or blob */
#define STORE_MAX_COLUMNS	63	/* non-key columns per synced table */
#define STORE_MAX_ORIGINS	4096	/* nodes a federation may have */
#define STORE_CHECKPOINT_PAGES	2048	/* WAL pages that start a checkpoint */

struct clock;
struct store;

enum store_mode {
	STORE_DAEMON,		/* creates tables, installs triggers */
	STORE_CLIENT,		/* labsyncctl: reads the layout only */
	STORE_INIT,		/* labsyncctl init: like the daemon */
};

/* What local writers may do; the capture triggers enforce it. */
enum store_writable {
	STORE_READONLY = 0,	/* observer: local writes are refused */
	STORE_WRITABLE = 1,
	STORE_RECOVERING = 2,	/* fetching our own lost changes back */
};

struct store_options {
	const char	 *path;
	const char	 *node_id;
	const char	 *schema_path;	/* run at open in DAEMON and INIT mode */
	int		  observer;
	char		**tables;
	size_t		  ntables;
	int		  cache_size_mib;
	uint64_t	  max_clock_skew_ms;
	enum store_mode	  mode;
	int		 *refused;	/* set if the schema or file is refused
					   (a configuration error), not failed */
};

/* Outcome of applying one batch. */
struct store_apply_stats {
	int		 applied;	/* new changes committed */
	int		 duplicates;	/* already held: skipped */
	int		 gaps;		/* beyond a missing sequence: skipped */
	int		 held;		/* stamped too far in the future */
	int		 own;		/* our own origin, fetched back */
};

struct store	*store_open(const struct store_options *, struct clock *,
		    char *err, size_t errlen);
void		 store_free(struct store *);
/* Checkpoint the WAL on a thread of its own once it has this many pages. */
int		 store_checkpointer_start(struct store *, int pages);
const char	*store_node_id(const struct store *);

int		 store_set_writable(struct store *, enum store_writable);
/* 1 if another connection committed since the last call, 0 if not. */
int		 store_changed_elsewhere(struct store *);
/*
 * Read up to max of our own changes that were committed since the last
 * call (the capture triggers stamp them) into the outbox; *n: how many.
 */
int		 store_take_local(struct store *, int max, int *n);
/* Our own changes committed but not taken yet. */
int		 store_pending_count(struct store *);

/* Check one change against the schema: REASON_OK, or the code of the
   refusal with why in words. */
enum reason	 store_validate(struct store *, const Labsync__Change *,
		    int allow_own, char *why, size_t whylen);
/*
 * Apply a validated batch in one transaction. With catchup (a catch-up
 * answer) changes of our own origin are accepted (fetching back what we
 * lost), and none goes out on our live feed: a peer that lacks them asks
 * for them itself, and a node catching up does not flood its feed.
 */
int		 store_apply(struct store *, Labsync__Change *const *, size_t n,
		    int catchup, struct store_apply_stats *);
/* The same, with each change's packed bytes as received (raw[i].data
   NULL: pack it again), relayed as they are. */
int		 store_apply_raw(struct store *, Labsync__Change *const *,
		    const ProtobufCBinaryData *raw, size_t n, int catchup,
		    struct store_apply_stats *);
/*
 * store_apply_raw in steps, so that changes decoded a few at a time go
 * into one transaction: begin, more (adds to the counts), end (commit 1)
 * or roll back (commit 0, also what to do when more fails).
 */
int		 store_apply_begin(struct store *);
int		 store_apply_more(struct store *, Labsync__Change *const *,
		    const ProtobufCBinaryData *raw, size_t n, int catchup,
		    struct store_apply_stats *);
int		 store_apply_end(struct store *, int commit);
/* Roll back without a word: the caller refused what it was applying. */
void		 store_apply_abort(struct store *);
/*
 * Leave the apply transaction open after this event (a catch-up commits
 * several answers at once). Whoever needs the connection next, to apply,
 * to write locally or to change whether the node is writable, first calls
 * end(arg) through store_settle, which must end the transaction.
 */
void		 store_hold(struct store *, void (*end)(void *), void *arg);
void		 store_settle(struct store *);

/*
 * Whether changes applied from the live feed go out on ours too (on by
 * default), for peers that may lack them; a node with one peer would only
 * send them back where they came from. Catch-up serves them either way.
 */
void		 store_set_relay(struct store *, int on);

/* Changes committed since the last drain (local and relayed), packed. */
typedef int	(*store_change_cb)(void *arg, const char *origin,
		    const uint8_t *, size_t);
int		 store_outbox_drain(struct store *, store_change_cb, void *arg);
size_t		 store_outbox_len(const struct store *);

/* The version vector; free with store_vector_free. */
Labsync__Vector	*store_vector(struct store *);
void		 store_vector_free(Labsync__Vector *);
int		 store_vector_advance(Labsync__Vector *, const char *origin,
		    uint64_t seq);
uint64_t	 store_origin_seq(struct store *, const char *origin);
uint64_t	 store_own_seq(struct store *);
/* How many changes a peer with vector v holds that we lack. */
uint64_t	 store_lag_behind(struct store *, const Labsync__Vector *v);

/*
 * Read the changes a peer with vector `have` lacks, in origin and
 * sequence order, at most max_changes and about max_bytes; *more says
 * whether more are left.
 */
int		 store_read_missing(struct store *, const Labsync__Vector *have,
		    size_t max_changes, size_t max_bytes, store_change_cb,
		    void *arg, int *more);

void		 store_fingerprint(struct store *, uint8_t out[32]);
int64_t		 store_log_count(struct store *);
int64_t		 store_db_bytes(struct store *);	/* file size in pages */
int		 store_healthy(struct store *);		/* 0 if a read works */

/* The connection, for rows.c (labsyncctl's reads and writes). */
struct sqlite3	*store_db(struct store *);
/* Triggers of store_db on (1) or off (0); off in STORE_DAEMON mode. */
void		 store_capture(struct store *, int on);

#endif
