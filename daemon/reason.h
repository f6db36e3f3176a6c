/*
 * reason.h: why something was refused or failed, as a code. Metrics,
 * HTTP statuses, exit statuses, retries and (later) the protocol decide
 * by the code; the free text that goes with it is for people only and
 * may be reworded at will.
 *
 * The numbers are stable: they are meant to go on the wire. Never reuse
 * or renumber one; add new codes at the end, before REASON_N.
 */
#ifndef LABSYNC_REASON_H
#define LABSYNC_REASON_H

enum reason {
	REASON_OK = 0,
	REASON_OTHER = 1,		/* a code this version does not know */

	/* a received message as a whole */
	REASON_MALFORMED = 2,		/* not a valid envelope, frame or change */
	REASON_VERSION = 3,		/* another protocol version */
	REASON_TOO_LARGE = 4,		/* more changes in a batch than allowed */
	REASON_UNKNOWN_PEER = 5,	/* key or name not configured (any more) */
	REASON_OBSERVER = 6,		/* changes sent by an observer */

	/* one change, received or written locally */
	REASON_BAD_ORIGIN = 7,		/* empty, too long or bad bytes */
	REASON_OWN_ORIGIN = 8,		/* claims to come from this node */
	REASON_TOO_MANY_ORIGINS = 9,
	REASON_BAD_SEQUENCE = 10,	/* zero or beyond the log's range */
	REASON_BAD_CLOCK = 11,		/* an HLC of zero or out of range */
	REASON_UNKNOWN_TABLE = 12,
	REASON_BAD_KEY = 13,		/* primary key empty or too long */
	REASON_BAD_OPERATION = 14,	/* unknown op, a delete with columns */
	REASON_UNKNOWN_COLUMN = 15,
	REASON_DUPLICATE_COLUMN = 16,
	REASON_WRONG_TYPE = 17,		/* the value does not fit the column */
	REASON_VALUE_TOO_LARGE = 18,	/* text or blob above STORE_MAX_VALUE */
	REASON_CLOCK_SKEW = 19,		/* stamped beyond max_clock_skew: held */
	REASON_NOT_WRITABLE = 20,	/* the origin may not write that table */

	/* this node */
	REASON_DATABASE = 21,		/* valid, but SQLite failed */
	REASON_NO_MEMORY = 22,
	REASON_READ_ONLY = 23,		/* an observer: no local writes */
	REASON_RECOVERING = 24,		/* fetching its own lost changes back */
	REASON_NOT_FOUND = 25,		/* no such row */
	REASON_BAD_INPUT = 26,		/* a request that is not col=value, JSON */
	REASON_CONSTRAINT = 27,		/* refused by a CHECK, NOT NULL, STRICT */
	REASON_IO = 28,			/* reading or writing a file failed */

	/* one change, written locally (rules.c) */
	REASON_NUL_IN_TEXT = 29,	/* a text with a NUL byte */

	/* the change feed */
	REASON_COMPACTED = 30,		/* a cursor older than the log holds */

	REASON_N
};

/* The code's snake_case name for logs, metrics labels and JSON; never
   NULL ("other" for a number this version does not know). */
const char	*reason_name(enum reason);
/* 1 if a received message can be refused for it: the code has a series
   of labsync_messages_rejected_total. */
int		 reason_counted(enum reason);

/* What a receiver does with a change whose content it cannot take for
   this reason (see aside.c): refuse the batch (a protocol fault), or
   keep the part aside, waiting (applied by itself once possible) or
   refused (until an operator acts). */
enum reason_keep {
	KEEP_NO = 0,
	KEEP_WAITING = 1,
	KEEP_REFUSED = 2,
};
enum reason_keep reason_keep(enum reason);
const char	*reason_keep_name(enum reason_keep);	/* "waiting", ... */

#endif
