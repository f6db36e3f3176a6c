/*
 * store_private.h: the store's state and what its files call of each
 * other. Included by the store's files only: store.c, schema.c, vector.c,
 * changelog.c, outbox.c, merge.c, capture.c, aside.c, compact.c,
 * checkpoint.c and erase.c.
 */
#ifndef LABSYNC_STORE_PRIVATE_H
#define LABSYNC_STORE_PRIVATE_H

#include <stdint.h>

#include <sqlite3.h>

#include "rules.h"
#include "store.h"

#define ORIGIN_SHIFT	40	/* log key = origin id << 40 | seq */
#define ORIGIN_SEQ_MAX	((1ULL << ORIGIN_SHIFT) - 1)
#define MASK_CACHE	8	/* upsert statements cached per table */
#define STORE_BUSY_FAST	100	/* lock retries 0.1 ms apart, ... */
#define STORE_BUSY_SLOW	9990	/* ... then this many 1 ms apart */
#define STORE_OUTBOX_KEEP (1024 * 1024)	/* outbox bytes kept once drained */
#define CHANGELOG_MEASURE_MAX 100000	/* log entries dbstat measures */

struct column {
	char		*name;
	enum affinity	 aff;
	char		*decl;
	int		 local;		/* [sync] local: never captured, sent
					   or applied */
	int		 pseudonymise;	/* sent as an HMAC of its value */
};

struct upsert_stmt {
	uint64_t	 mask;
	sqlite3_stmt	*stmt;
};

struct table {
	char		*name;
	char		*pk;		/* its one TEXT primary key column */
	char		*pk_decl;	/* its declared type */
	struct column	*cols;		/* non-key columns, table order */
	int		 ncols;
	char		*rowid;		/* how SQL names its rowid; NULL:
					   WITHOUT ROWID, clocks by key */
	sqlite3_stmt	*delete_row;
	sqlite3_stmt	*find_row;	/* the rowid of a key */
	sqlite3_stmt	*insert_new;	/* a row with every column, if new */
	int		 no_keys;	/* labsync_row has no key of it: 1,
					   0, or -1 not known yet (in an
					   apply transaction) */
	struct upsert_stmt upserts[MASK_CACHE];
	int		 nupserts;
	int		 next_evict;
};

struct origin {
	int64_t		 id;
	char		*name;
	uint64_t	 seq;		/* highest contiguous held */
	uint64_t	 committed;	/* seq as last committed */
	uint64_t	 floor;		/* the log lacks its entries up to
					   here (labsync_origin.floor) */
	int		 floor_said;	/* a peer behind floor was logged */
};

struct col_clock {
	uint64_t	 hlc;
	int64_t		 origin;
};

/* Merge metadata of one row, from labsync_rowid or labsync_row. */
struct row_meta {
	int		 exists;	/* clocks known */
	int		 keyed;		/* labsync_row has them */
	int		 row;		/* the table has the row (rowid tables) */
	int64_t		 rid;		/* its rowid */
	int		 entry;		/* labsync_rowid has its clocks */
	struct col_clock r;		/* newest upsert */
	struct col_clock d;		/* newest delete */
	struct col_clock cols[STORE_MAX_COLUMNS];
};

/* A change in the outbox: its bytes are outbox_bytes[off, off + len). */
struct outbuf {
	size_t		 off, len;
	int64_t		 origin;	/* id; the name is looked up on drain */
};

struct store {
	sqlite3		*db;
	struct clock	*clock;
	char		*node_id;
	int		 observer;
	int		 partner;	/* local writes: only to writable */
	char		**writable;	/* copies */
	size_t		 nwritable;
	struct store_partner *partners;	/* copies */
	size_t		 npartners;
	int		 hold_local;	/* recovering: publish none of ours */
	uint64_t	 published;	/* own changes read into the outbox */
	int64_t		 at;		/* the apply transaction's last
					   labsync_log.at (changelog.c) */
	int		 at_dirty;	/* ... not yet in labsync_state */
	uint64_t	 max_skew_ms;
	struct table	*tables;
	size_t		 ntables;
	char		**local_columns;	/* "table.column", copies */
	size_t		 nlocal_columns;
	char		**pseudonymise;
	size_t		 npseudonymise;
	uint8_t		 pseudonym_key[32];
	int		 pseudonym_keyed;	/* pseudonym_key is set */
	struct origin	*origins;
	size_t		 norigins;
	struct origin	*self;
	int64_t		 data_version;

	struct checkpointer *checkpointer;	/* checkpoint.c, or NULL */
	struct compact	*compact;	/* compact.c: peers, what they hold */
	int64_t		 log_entry_bytes;	/* as last measured */
	int		 no_relay;	/* applied changes stay off our feed */
	int		 refused_row;	/* merge.c: the last write failed on a
					   constraint of this node's schema */

	/* committed changes not yet published, packed one after another
	   in one buffer: thousands of small copies would fragment the heap */
	struct outbuf	*outbox;
	size_t		 noutbox, outbox_cap;
	uint8_t		*outbox_bytes;
	size_t		 outbox_used, outbox_size;
	size_t		 apply_mark;	/* outbox length at merge_apply_begin */

	sqlite3_stmt	*st_meta_get, *st_meta_put;
	sqlite3_stmt	*st_row_get, *st_row_put, *st_row_upd, *st_row_drop;
	sqlite3_stmt	*st_rowid_get, *st_rowid_put, *st_rowid_upd;
	sqlite3_stmt	*st_rowid_drop, *st_row_any;
	sqlite3_stmt	*st_log_put, *st_log_range;
	sqlite3_stmt	*st_at_get, *st_at_put;	/* labsync_state.at */
	sqlite3_stmt	*st_origin_new, *st_origin_seq;
	sqlite3_stmt	*st_state_hlc, *st_state_seq;
	sqlite3_stmt	*st_applying;
	sqlite3_stmt	*st_aside_put;
	sqlite3_stmt	*st_erased;	/* erase_covers */
	int		 erased;	/* an erasure was carried out in the
					   apply transaction: cut the WAL
					   back after its commit */
	int		 erasures;	/* labsync_erasure had rows when it
					   began (else no lookups) */
	sqlite3_stmt	*st_begin, *st_commit, *st_data_version;
	int		 log_width;	/* value columns st_log_put and
					   st_log_range have */
	int		 capture_off;	/* triggers off (store_capture) */
	int64_t		 schema_version;	/* as the layout was loaded */
	void		(*held)(void *);	/* ends a held transaction */
	void		*held_arg;
};

/*
 * labsync_log: key, HLC, and a change's table, key, op, the mask of its
 * columns and their values in v0, v1, ...: as many as the widest synced
 * table has (changelog_widen adds them; a format 2 log has 63). Every
 * row carries all of the table's columns, so fewer is cheaper for each
 * one written or read. Local changes are written by the capture
 * triggers, applied ones by changelog_append. Older databases hold
 * applied changes packed as received, in body: read as they are.
 */
#define LOG_DDL \
    "CREATE TABLE IF NOT EXISTS labsync_log(" \
    "  key INTEGER PRIMARY KEY, hlc INTEGER NOT NULL, body BLOB," \
    "  tbl TEXT, pk TEXT, op INTEGER, mask INTEGER);"
/*
 * Format 6 (store.c's upgrade 5 -> 6, which a new database runs too):
 * labsync_log.at is the entry's place in this node's commit order (the
 * change feed's cursor), counted in labsync_state.at; compaction never
 * renumbers it, and labsync_state.at_floor is the highest at it removed
 * (a feed cursor below it may have missed an entry).
 * labsync_origin.floor: the log may lack that origin's entries up to
 * this sequence (compacted away, or taken in as a snapshot).
 */
/*
 * labsync_peer_seen: the sequence of each origin a configured peer has
 * confirmed holding (its heartbeat's or Ack's vector), kept across
 * restarts: compaction never drops what a peer that is down still needs.
 */
#define PEER_SEEN_DDL \
    "CREATE TABLE IF NOT EXISTS labsync_peer_seen(" \
    "  peer TEXT NOT NULL, origin TEXT NOT NULL, seq INTEGER NOT NULL," \
    "  PRIMARY KEY (peer, origin)) WITHOUT ROWID;"
/*
 * labsync_erasure: the audit of erasures this node carried out: which
 * table and key, the erasure change's origin, sequence and clock, who
 * asked on the origin node, when it was asked (at the origin) and when
 * it was done here. It holds no erased value. By key: every applied
 * change asks whether an erasure newer than it erased its row (erase.c).
 */
#define ERASURE_DDL \
    "CREATE TABLE IF NOT EXISTS labsync_erasure(" \
    "  id INTEGER PRIMARY KEY, tbl TEXT NOT NULL, pk TEXT NOT NULL," \
    "  origin TEXT NOT NULL, seq INTEGER NOT NULL, hlc INTEGER NOT NULL," \
    "  requested_by TEXT NOT NULL, asked_ms INTEGER NOT NULL," \
    "  done_ms INTEGER NOT NULL);" \
    "CREATE INDEX IF NOT EXISTS labsync_erasure_key" \
    "  ON labsync_erasure(tbl, pk);"
/* Columns of st_log_range. */
enum { LOG_KEY, LOG_HLC, LOG_BODY, LOG_TBL, LOG_PK, LOG_OP, LOG_MASK, LOG_V0 };
/* Parameter of st_log_put (the same columns) that takes v0. */
#define LOG_PUT_V0	(LOG_V0 + 1)

/*
 * labsync_aside: parts of received changes this node could not apply
 * (aside.c): a whole change (col NULL, body: the packed change) or one
 * column's value (body: the packed value), with the change's origin,
 * sequence and clock, a reason code, its state ('waiting': applied by
 * itself once possible; 'refused': an operator must act) and since when.
 */
#define ASIDE_DDL \
    "CREATE TABLE IF NOT EXISTS labsync_aside(" \
    "  id INTEGER PRIMARY KEY, origin TEXT NOT NULL, seq INTEGER NOT NULL," \
    "  hlc INTEGER NOT NULL, tbl TEXT NOT NULL, pk TEXT NOT NULL," \
    "  op INTEGER NOT NULL, col TEXT, body BLOB, reason INTEGER NOT NULL," \
    "  state TEXT NOT NULL, since_ms INTEGER NOT NULL);" \
    "CREATE INDEX IF NOT EXISTS labsync_aside_change" \
    "  ON labsync_aside(origin, seq);"

/* store.c */
void		 store_seterr(char *err, size_t errlen, const char *fmt, ...)
		    __attribute__((format(printf, 3, 4)));
int		 store_exec(struct store *, const char *);
char		*store_sql(const char *, ...);
char		*store_append(char *, const char *, ...);
int		 store_prepare(struct store *, sqlite3_stmt **, const char *);
int		 store_step_done(struct store *, sqlite3_stmt *);
int64_t		 store_pragma_int(struct store *, const char *);
void		 store_bind_value(sqlite3_stmt *, int, const Labsync__Value *);
int		 store_begin(struct store *);
int		 store_commit(struct store *);
void		 store_rollback(struct store *, size_t outbox_mark);

/* What a schema file adds to the database (schema_plan_file): for each
   item its SQL (NULL: a table, which running the file creates) and what
   it is, for the log. */
struct schema_plan {
	char		**sql;
	char		**what;
	size_t		  n;
	char		 *seen;		/* "\ntable.column\n..." of the file,
					   kept in labsync_meta: a column
					   that was in it may not go */
};

/* schema.c */
int		 schema_plan_file(sqlite3 *, const char *path,
		    struct schema_plan *, char *err, size_t errlen);
int		 schema_plan_run(struct store *, const struct schema_plan *,
		    const char *path, char *err, size_t errlen);
void		 schema_plan_free(struct schema_plan *);
void		 schema_tables_free(struct table *, size_t);
int		 schema_load(struct store *, char *const *names, size_t n,
		    char *err, size_t errlen);
void		 schema_free(struct store *);
/* NULL clocks of a table's rows spelt out for its first n columns. */
int		 schema_clocks_spell(struct store *, const char *name, int n);
int		 schema_marks_set(struct store *, const struct store_options *);
void		 schema_marks_free(struct store *);
/* 1 if this node's local writes may go to TABLE (a partner's rule) */
int		 schema_writable(const struct store *, const char *table);
/* 1 if a change of ORIGIN may go to TABLE (partners we know: theirs) */
int		 schema_origin_may_write(const struct store *, const char *origin,
		    const char *table);
int		 schema_run_file(struct store *, const char *path, char *err,
		    size_t errlen);
struct table	*schema_table_find(struct store *, const char *);
int		 schema_column_find(const struct table *, const char *,
		    int hint);
int		 schema_widest(const struct store *);

/* vector.c */
int		 vector_prepare(struct store *);
int		 vector_load(struct store *);
void		 vector_clear(struct store *);
int		 vector_save(struct store *);
void		 vector_committed(struct store *);
struct origin	*vector_origin_get(struct store *, const char *);
struct origin	*vector_origin_byid(struct store *, int64_t);
struct origin	*vector_origin_find(struct store *, const char *);
uint64_t	 vector_entry_seq(const Labsync__Vector *, const char *);

/* changelog.c */
int		 changelog_widen(struct store *);
int		 changelog_prepare(struct store *);
int		 changelog_append(struct store *, struct origin *,
		    Labsync__Change *, int as_values,
		    const ProtobufCBinaryData *raw, int relay);
/* Column col of st as a wire value (pointing into st's row). */
Labsync__Value	*changelog_value(sqlite3_stmt *, int col, Labsync__Value *);
/* v, our own value of a pseudonymised column, as it is sent: its HMAC
   in hex (written into hex), or NULL as it is. */
void		 changelog_pseudonym(struct store *, sqlite3_stmt *, int col,
		    Labsync__Value *v, char hex[2 * 32 + 1]);
/* Around the apply transaction: number its entries after the others. */
int		 changelog_at_begin(struct store *);
int		 changelog_at_end(struct store *);

/* outbox.c */
int		 outbox_add(struct store *, int64_t origin, const uint8_t *,
		    size_t);
void		 outbox_rollback(struct store *, size_t mark);
void		 outbox_clear(struct store *);

/* merge.c */
int		 merge_prepare(struct store *);
/* The clocks in st's columns 0-4: r_hlc, r_origin, d_hlc, d_origin,
   clocks (labsync_row's and labsync_rowid's) into m. */
void		 merge_meta_read(sqlite3_stmt *, const struct table *,
		    struct row_meta *);
int		 merge_rows_check(struct store *);

/* capture.c */
int		 capture_triggers(struct store *, struct table *);
int		 capture_replay_pending(struct store *);
int		 capture_clocks_upgrade(struct store *);
char		*capture_delete_sql(struct store *, const struct table *,
		    const char *key);

/* aside.c */
int		 aside_prepare(struct store *);
int		 aside_keep(struct store *, const Labsync__Change *, int col,
		    const ProtobufCBinaryData *raw, enum reason,
		    uint64_t since);

/* merge.c, for aside.c: merge what of c fits, keep the rest aside */
int		 merge_fitting(struct store *, struct origin *,
		    Labsync__Change *, const ProtobufCBinaryData *raw,
		    uint64_t since, int *kept);

/* compact.c */
void		 compact_free(struct store *);
/* erase.c */
int		 erase_prepare(struct store *);
int		 erase_carry_out(sqlite3 *, const Labsync__Change *);
int		 erase_covers(struct store *, const Labsync__Change *);

/* checkpoint.c */
void		 checkpoint_stop(struct store *);
/* Cut the WAL back to nothing (TRUNCATE) soon, trying again every
   second until it succeeds: after an erasure. */
void		 checkpoint_truncate(struct store *);
void		 checkpoint_nudge(struct store *);
void		 checkpoint_bound(struct store *);

#endif
