/*
 * rules.h: the limits on a change's content, defined once. Every rule a
 * receiver checks on a change (merge_validate) is checked where the
 * write happens as well: by rows.c before a write of labsyncctl or the
 * HTTP API, and by the capture triggers (capture.c) for any other writer,
 * as SQL that this file writes from the same rule. So nothing enters the
 * change log that a peer of the same version would refuse.
 *
 * The rules:
 *   key    non-empty text, at most STORE_MAX_PK bytes, no NUL byte, no
 *          control character (bytes 0x01-0x1f and 0x7f): REASON_BAD_KEY
 *   value  fits the column's affinity (rules_type_fits):
 *          REASON_WRONG_TYPE; a text or blob at most STORE_MAX_VALUE
 *          bytes: REASON_VALUE_TOO_LARGE; a text without NUL byte (the
 *          wire carries text as a C string, which would cut it):
 *          REASON_NUL_IN_TEXT
 * Checked in that order, in C and in SQL alike, so both give the same
 * code for the same value.
 */
#ifndef LABSYNC_RULES_H
#define LABSYNC_RULES_H

#include <stddef.h>

#include "proto/labsync.pb-c.h"
#include "reason.h"

/* How the capture triggers' refusals start (RAISE(ABORT, ...)), so that
   any SQLite client shows whose they are; labsyncctl leaves it out when
   it prints them behind its own name (display only). */
#define RULES_RAISE_PREFIX	"labsync: "

/* A column's type affinity, by SQLite's rules (datatype3.html, 3.1). */
enum affinity { AFF_INTEGER, AFF_REAL, AFF_TEXT, AFF_BLOB, AFF_NUMERIC };

/* The kind of a value, as SQLite's storage classes. */
enum rules_kind {
	RULES_NULL,
	RULES_INTEGER,
	RULES_REAL,
	RULES_TEXT,
	RULES_BLOB,
};

/* The affinity of a declared type ("" for none: BLOB). */
enum affinity	 rules_affinity(const char *decl);
/* Its name, for messages: INTEGER, REAL, TEXT, BLOB, NUMERIC. */
const char	*rules_affinity_name(enum affinity);
/* Whether a value of kind k may go into a column of affinity a. */
int		 rules_type_fits(enum affinity a, enum rules_kind k);

/*
 * The C checks: REASON_OK, or the code of the first rule broken, with
 * words naming the column and the limit in why. pk is len bytes (a NUL
 * among them counts); p is len bytes of a text or blob (NULL for the
 * other kinds).
 */
enum reason	 rules_check_key(const char *table, const char *col,
		    const char *pk, size_t len, char *why, size_t whylen);
enum reason	 rules_check_value(const char *table, const char *col,
		    enum affinity, enum rules_kind, const void *p, size_t len,
		    char *why, size_t whylen);
/* A received value (NULL: refused as a wrong type). */
enum reason	 rules_check_wire(const char *table, const char *col,
		    enum affinity, const Labsync__Value *, char *why,
		    size_t whylen);

/*
 * The same rules as SQL for the capture triggers: CASE arms (WHEN cond
 * THEN RAISE(ABORT, 'labsync: ...')) that refuse a write breaking one,
 * for the key or the value given as an SQL expression. Appended to sql
 * (an sqlite3_malloc'd string or NULL); NULL when out of memory (sql is
 * freed then).
 */
char		*rules_key_sql(char *sql, const char *table, const char *col,
		    const char *expr);
char		*rules_value_sql(char *sql, const char *table,
		    const char *col, enum affinity, const char *expr);

#endif
