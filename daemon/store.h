/*
 * store.h: the node's SQLite database. One connection, WAL mode. Owns the
 * capture triggers, the change log, the per-column merge metadata and the
 * version vector. Its files, one concern each, with the prefix of their
 * file:
 *
 *   store.c       open, upgrade, connection, transactions, SQL helpers
 *   schema.c      the synced tables' layout, the schema file, fingerprint
 *   vector.c      origins, their sequences, the version vector
 *   changelog.c   the change log: appending, reading, packing
 *   outbox.c      committed changes waiting for our live feed
 *   merge.c       validating and applying remote changes
 *   capture.c     the triggers that stamp local writes
 *   checkpoint.c  WAL checkpoints on a thread of their own
 *   aside.c       changes kept aside: what a receiver could not apply
 *   snapshot.c    the state as of one read transaction, for a peer
 *                 that lacks what the log no longer holds
 *   compact.c     dropping log entries every peer holds
 *   erase.c       erasures: scrubbing a row's old values, their audit
 *
 * They share store_private.h. SQL is spoken by these files and by one
 * other, rows.c: labsyncctl's and the HTTP API's reads and writes of rows
 * (put, get, delete, list, dump), on the connection store_db gives, whose
 * writes the capture triggers stamp like any other writer's.
 */
#ifndef LABSYNC_STORE_H
#define LABSYNC_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "proto/labsync.pb-c.h"
#include "reason.h"

#define STORE_FORMAT		6	/* version of the labsync_* tables */
#define STORE_BASE_FORMAT	5	/* ... that store.c's store_ddl creates */
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

/* A partner's write rights: changes of ORIGIN only to these tables. */
struct store_partner {
	char		 *origin;
	char		**tables;
	size_t		  ntables;
};

struct store_options {
	const char	 *path;
	const char	 *node_id;
	const char	 *schema_path;	/* run at open in DAEMON and INIT mode */
	int		  observer;
	int		  partner;	/* writes only its writable tables */
	char		**writable;
	size_t		  nwritable;
	const struct store_partner *partners;	/* the partners we know */
	size_t		  npartners;
	char		**tables;
	size_t		  ntables;
	char		**local_columns;	/* "table.column": never sent */
	size_t		  nlocal_columns;
	char		**pseudonymise;	/* "table.column": sent as HMACs */
	size_t		  npseudonymise;
	const uint8_t	 *pseudonym_key;	/* 32 bytes; NULL: none */
	int		  cache_size_mib;
	uint64_t	  max_clock_skew_ms;
	enum store_mode	  mode;
	int		 *refused;	/* set if the schema or file is refused
					   (a configuration error), not failed */
};

/* Outcome of applying changes (merge_apply_more). */
struct merge_stats {
	int		 applied;	/* new changes committed */
	int		 duplicates;	/* already held: skipped */
	int		 gaps;		/* beyond a missing sequence: skipped */
	int		 held;		/* stamped too far in the future */
	int		 own;		/* our own origin, fetched back */
	int		 kept;		/* applied in part, the rest kept
					   aside (counted in applied too) */
};

/* A packed change of origin, to send (outbox_drain, changelog_read_missing). */
typedef int	(*store_change_cb)(void *arg, const char *origin,
		    const uint8_t *, size_t);

/* --- store.c: the database, its connection, transactions --------------- */

struct store	*store_open(const struct store_options *, struct clock *,
		    char *err, size_t errlen);
void		 store_free(struct store *);
int		 store_set_writable(struct store *, enum store_writable);
/* 1 if another connection committed since the last call, 0 if not. */
int		 store_changed_elsewhere(struct store *);
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
int64_t		 store_db_bytes(struct store *);	/* file size in pages */
int		 store_healthy(struct store *);		/* 0 if a read works */
/* The connection, for rows.c (labsyncctl's and the HTTP API's reads and
   writes of rows). */
struct sqlite3	*store_db(struct store *);
/* Triggers of store_db on (1) or off (0); off in STORE_DAEMON mode. */
void		 store_capture(struct store *, int on);

/*
 * Bring the database up to the schema file at path (NULL: none) and the
 * layout to the synced tables names: adds what the file has and the
 * database lacks, never drops or retypes (refused, err names the column).
 * 1 if the layout changed, 0 if not, -1 refused or failed.
 */
int		 store_schema_reload(struct store *, const char *path,
		    char *const *names, size_t n, char *err, size_t errlen);
/* After another writer's commit: follow a schema changed by hand (1). */
int		 store_schema_check(struct store *);

/* --- schema.c: the synced tables' layout ------------------------------- */

void		 schema_fingerprint(struct store *, uint8_t out[32]);
/* A synced column: its table, name, declared type, whether it is the key. */
typedef void	(*schema_column_fn)(void *arg, const char *table,
		    const char *column, const char *decl, int pk);
void		 schema_columns(struct store *, schema_column_fn, void *arg);
/*
 * Whether each "table.column" of cols is a column of the database at
 * dbpath (if it exists) or of the schema file, and not a primary key:
 * kind[i] is SCHEMA_COLUMN_OK, _NONE or _PK. -1 if they cannot be read.
 */
#define SCHEMA_COLUMN_OK	0
#define SCHEMA_COLUMN_NONE	1
#define SCHEMA_COLUMN_PK	2
int		 schema_check_columns(const char *dbpath,
		    const char *schema_path, char *const *cols, size_t n,
		    int *kind, char *err, size_t errlen);
/* labsyncd -n: the schema file against the database, read-only; what it
   would add goes to out; -1 if refused (err). */
int		 schema_check_file(const char *dbpath, const char *schema_path,
		    FILE *out, char *err, size_t errlen);

/* --- vector.c: origins and the version vector -------------------------- */

/* The version vector; free with vector_free. */
Labsync__Vector	*vector_new(struct store *);
/* ... as committed: what peers are told we hold (they may compact). */
Labsync__Vector	*vector_new_committed(struct store *);
void		 vector_free(Labsync__Vector *);
/* Advance v over one change, if it follows origin's entry without a gap. */
int		 vector_advance(Labsync__Vector *, const char *origin,
		    uint64_t seq);
uint64_t	 vector_origin_seq(struct store *, const char *origin);
uint64_t	 vector_own_seq(struct store *);
/* How many changes a peer with vector v holds that we lack. */
uint64_t	 vector_lag_behind(struct store *, const Labsync__Vector *v);

/* --- changelog.c: the change log --------------------------------------- */

/*
 * Read up to max of our own changes that were committed since the last
 * call (the capture triggers stamp them) into the outbox; *n: how many.
 */
int		 changelog_take_local(struct store *, int max, int *n);
/* Our own changes committed but not taken yet. */
int		 changelog_pending(struct store *);
/*
 * Read the changes a peer with vector `have` lacks, in origin and
 * sequence order, at most max_changes and about max_bytes; *more says
 * whether more are left.
 */
int		 changelog_read_missing(struct store *,
		    const Labsync__Vector *have, size_t max_changes,
		    size_t max_bytes, store_change_cb, void *arg, int *more);
/* Entries the log holds (above each origin's floor). */
int64_t		 changelog_count(struct store *);
/* Bytes of the log and its index (dbstat, else an upper bound). */
int64_t		 changelog_bytes_used(struct store *);
/* The HLC of our own change seq; 0 if the log lacks it (compacted). */
uint64_t	 changelog_own_hlc(struct store *, uint64_t seq);
/*
 * The log lacks origin's entries up to this sequence (compacted away): a
 * peer that holds less of origin cannot catch up from the log (catch-up
 * leaves that origin out) and needs a snapshot.
 */
uint64_t	 changelog_floor(struct store *, const char *origin);

/* One entry of the change feed: its cursor and its packed change (NULL:
   an entry that cannot be read, said in the log; its cursor counts). */
typedef int	(*changelog_feed_cb)(void *arg, int64_t cursor,
		    const uint8_t *, size_t);
/*
 * The change feed: entries after cursor since, in this node's commit
 * order, of table (NULL: all), at most limit, to cb; -1 on failure.
 */
int		 changelog_read_feed(struct store *, int64_t since,
		    const char *table, int limit, changelog_feed_cb, void *arg);
/* The newest cursor (floor 0), or the newest one compaction removed
   (floor 1): a cursor below that may have missed changes. */
int64_t		 changelog_feed_mark(struct store *, int floor);

/* --- outbox.c: committed changes for our live feed --------------------- */

/* Changes committed since the last drain (local and relayed), packed. */
int		 outbox_drain(struct store *, store_change_cb, void *arg);
size_t		 outbox_len(const struct store *);

/* --- merge.c: remote changes in ---------------------------------------- */

/* Check one change against the schema: REASON_OK, or the code of the
   refusal with why in words. */
enum reason	 merge_validate(struct store *, const Labsync__Change *,
		    int allow_own, char *why, size_t whylen);
/*
 * Apply validated changes in one transaction: begin, then more (any
 * number of times; adds to the counts), then end (commit 1, or roll back
 * with commit 0, also what to do when more fails). raw: each change's
 * packed bytes as received (raw[i].data NULL: pack it again), relayed as
 * they are. With catchup (a catch-up answer) changes of our own origin
 * are accepted (fetching back what we lost), and none goes out on our
 * live feed: a peer that lacks them asks for them itself, and a node
 * catching up does not flood its feed.
 */
int		 merge_apply_begin(struct store *);
int		 merge_apply_more(struct store *, Labsync__Change *const *,
		    const ProtobufCBinaryData *raw, size_t n, int catchup,
		    struct merge_stats *);
int		 merge_apply_end(struct store *, int commit);
/* Roll back without a word: the caller refused what it was applying. */
void		 merge_apply_abort(struct store *);
/* Check one change of a snapshot (sequence 0, any origin, ours too). */
enum reason	 merge_validate_snapshot(struct store *,
		    const Labsync__Change *, char *why, size_t whylen);
/*
 * Merge validated snapshot changes inside merge_apply_begin's
 * transaction by the normal rule; none is logged and the vector stays
 * (a snapshot cut short changes nothing but rows). st->held counts
 * changes stamped too far ahead: not merged.
 */
int		 merge_snapshot_more(struct store *, Labsync__Change *const *,
		    size_t n, struct merge_stats *);
/*
 * The snapshot's last batch is in: in the same transaction, each
 * origin's sequence moves up to v's where it is behind, and its floor
 * with it (our log lacks what lies below); our own too, so no sequence
 * is given twice. *own: whether our own sequence moved.
 */
int		 merge_snapshot_end(struct store *, const Labsync__Vector *v,
		    int *own);

/*
 * Read the synced tables' layout from the database again (a table
 * rebuilt or altered by hand): triggers, log columns and row clocks
 * follow. On failure the old layout stays.
 */
int		 store_reload_layout(struct store *, char *err, size_t errlen);

/* --- aside.c: changes kept aside --------------------------------------- */

/* Try every kept part again, inside merge_apply_begin's transaction. */
int		 aside_release(struct store *, int *released, int *kept);
/* Kept changes by state. */
int		 aside_counts(struct store *, int64_t *waiting,
		    int64_t *refused);
/* Per origin what is kept, at most max entries. */
Labsync__Kept	**aside_summary(struct store *, size_t max, size_t *n);
void		 aside_summary_free(Labsync__Kept **, size_t n);
/* labsyncctl refused: lines, or a JSON array. */
int		 aside_list(struct store *, int json, FILE *);
/* Drop the kept parts of one change (logged): how many, or -1. */
int		 aside_discard(struct store *, const char *origin,
		    uint64_t seq);

/* --- compact.c: dropping log entries every peer holds ------------------ */

/* The configured peers (start, reload): each holds the log from what it
   confirmed on; what peers no longer configured confirmed is forgotten. */
int		 compact_peers(struct store *, char *const *names, size_t n);
/* A configured peer's committed vector: what it confirmed holding. */
void		 compact_heard(struct store *, const char *peer,
		    const Labsync__Vector *);
/*
 * One small step, in a transaction of its own (none while another is
 * open): save what peers confirmed, then drop at most max entries every
 * configured peer confirmed that are older than after_ms.
 */
int		 compact_step(struct store *, uint64_t now_ms,
		    uint64_t after_ms, int max, int *dropped);
/* Entries of the log peer has not confirmed (it holds them back), and
   when the oldest of them was made (ms, 0: none). */
uint64_t	 compact_held_back(struct store *, const char *peer,
		    uint64_t *oldest_ms);
/* What peer confirmed of origin's changes. */
uint64_t	 compact_confirmed(struct store *, const char *peer,
		    const char *origin);
/* --- erase.c: erasures ------------------------------------------------ */

/*
 * In the writer's transaction, right after a delete through the capture
 * triggers (rows.c): make the delete an erasure asked for by `by` and
 * carry it out here. seq: erase_seq before the delete. 0 done, 1 the
 * delete was not captured (a table that is not synced), -1 failed.
 */
uint64_t	 erase_seq(struct sqlite3 *);
/* Before erase_local, for a row deleted before (a tombstone, no row):
   stamp its delete again. 0 done, 1 key not known here, -1 failed, -2
   refused by the delete trigger's rules (err says why). */
int		 erase_absent(struct store *, const char *table,
		    const char *pk, char *err, size_t errlen);
int		 erase_local(struct sqlite3 *, const char *by, uint64_t seq);
/* labsyncctl erasures: the audit rows, lines or a JSON array, with
   which of peers confirmed each. */
int		 erase_list(struct store *, char *const *peers, size_t npeers,
		    int json, FILE *);
/* --- snapshot.c: the state as of one read transaction ----------------- */

/*
 * A snapshot: a read-only connection of its own in a transaction, so
 * the daemon's connection writes on. NULL on failure (logged).
 */
struct snapshot;
struct snapshot	*snapshot_open(struct store *);
void		 snapshot_free(struct snapshot *);
/* The version vector as of the snapshot. */
const Labsync__Vector *snapshot_vector(const struct snapshot *);
/* Rows and tombstones sent so far, of how many. */
void		 snapshot_progress(const struct snapshot *, uint64_t *sent,
		    uint64_t *total);
/* The next changes, whole rows, up to max_changes or about max_bytes;
   *more: whether rows are left. */
int		 snapshot_read(struct snapshot *, size_t max_changes,
		    size_t max_bytes, store_change_cb, void *arg, int *more);
/* 1 if a peer with vector v lacks changes our log no longer holds
   (below an origin's floor): it needs a snapshot (why: whose). -1 on
   failure. */
int		 snapshot_needed(struct store *, const Labsync__Vector *v,
		    char *why, size_t whylen);

/* --- checkpoint.c: WAL checkpoints on a thread ------------------------- */

/* Checkpoint the WAL on a thread of its own once it has this many pages. */
int		 checkpoint_start(struct store *, int pages);

#endif
