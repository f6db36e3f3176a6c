/*
 * rows.h: rows as users see them (labsyncctl put, get, list, dump): typed
 * writes through the capture triggers, and JSON out.
 */
#ifndef LABSYNC_ROWS_H
#define LABSYNC_ROWS_H

#include <stddef.h>
#include <stdio.h>

#include "reason.h"

struct sqlite3;

/*
 * Each returns a code and, where there is an err, says it in words:
 * REASON_OK; REASON_NOT_FOUND (no such row); the caller's mistake:
 * REASON_UNKNOWN_TABLE, REASON_UNKNOWN_COLUMN, REASON_DUPLICATE_COLUMN,
 * REASON_WRONG_TYPE, REASON_BAD_INPUT (not col=value, not a JSON object),
 * REASON_CONSTRAINT (the database refused the value); the node's state,
 * read in the write's own transaction: REASON_READ_ONLY (an observer),
 * REASON_RECOVERING (fetching its own lost changes back: try again
 * later); or REASON_DATABASE, REASON_NO_MEMORY. Each front end maps the
 * code to its own answer (exit status, HTTP status).
 */
enum reason rows_put(struct sqlite3 *, const char *table, const char *pk,
	    char *const *assign, int nassign, char *err, size_t errlen);
enum reason rows_delete(struct sqlite3 *, const char *table, const char *pk,
	    char *err, size_t errlen);
/* delete, and the erasure of every older value of the row (erase.c),
   also of a row deleted before (REASON_NOT_FOUND: a key never seen
   here); by: who asked. REASON_NOT_WRITABLE: the table is not synced. */
struct store;
enum reason rows_erase(struct store *, const char *table, const char *pk,
	    const char *by, char *err, size_t errlen);
enum reason rows_get(struct sqlite3 *, const char *table, const char *pk,
	    FILE *out, char *err, size_t errlen);
enum reason rows_list(struct sqlite3 *, const char *table, FILE *out,
	    char *err, size_t errlen);
/* The HTTP API's side: JSON in, JSON out (jansson). */
struct json_t;
enum reason rows_put_json(struct sqlite3 *, const char *table,
	    const char *pk, struct json_t *obj, char *err, size_t errlen);
enum reason rows_get_json(struct sqlite3 *, const char *table,
	    const char *pk, struct json_t **out);
/* Up to limit rows with keys after `after` (NULL: from the start);
   *next is the last key when more may follow, else NULL. */
enum reason rows_page_json(struct sqlite3 *, const char *table,
	    const char *after, int limit, struct json_t **rows, char **next);
/* Adds "_origin" to each row of a page: the node id of the row's newest
   upsert, or null (GET .../rows?meta=1). */
enum reason rows_origins_json(struct sqlite3 *, const char *table,
	    struct json_t *rows);

/* The same, only rows matching every "col=value" of where (the value
   taken as the column's type, \N for NULL). */
enum reason rows_page_where_json(struct sqlite3 *, const char *table,
	    const char *after, int limit, char *const *where, int nwhere,
	    struct json_t **rows, char **next, char *err, size_t errlen);
/* PUT: the row becomes the body; columns it leaves out become NULL. */
enum reason rows_replace_json(struct sqlite3 *, const char *table,
	    const char *pk, struct json_t *obj, char *err, size_t errlen);
/* PATCH: only the body's columns; REASON_NOT_FOUND if there is no row. */
enum reason rows_patch_json(struct sqlite3 *, const char *table,
	    const char *pk, struct json_t *obj, char *err, size_t errlen);
/* The table's columns: [{"name", "type", "primary_key"}, ...]. */
enum reason rows_columns_json(struct sqlite3 *, const char *table,
	    struct json_t **out);

enum rows_format {
	ROWS_CSV,		/* RFC 4180: header, CRLF, NULL empty */
	ROWS_JSON,		/* one object a line */
};
/*
 * The live rows of table matching every "col=value" of where, in key
 * order; meta adds labsync_origin (the node of the row's newest write)
 * and labsync_changed_at (its time, ISO 8601 UTC).
 */
enum reason rows_export(struct sqlite3 *, const char *table,
	    enum rows_format, char *const *where, int nwhere, int meta,
	    FILE *out, char *err, size_t errlen);

/* table<TAB>id<TAB>{columns} lines of the given tables, bytewise order,
   without the columns skip names ("table.column"). */
enum reason rows_dump(struct sqlite3 *, char *const *tables, size_t ntables,
	    char *const *skip, size_t nskip, FILE *out, char *err,
	    size_t errlen);

#endif
