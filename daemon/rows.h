/*
 * rows.h: rows as users see them (labsyncctl put, get, list, dump): typed
 * writes through the capture triggers, and JSON out.
 */
#ifndef LABSYNC_ROWS_H
#define LABSYNC_ROWS_H

#include <stddef.h>
#include <stdio.h>

struct sqlite3;

/* 0 ok, 1 not found, 2 bad value or column, -1 refused by the
   database (err says why). */
int	rows_put(struct sqlite3 *, const char *table, const char *pk,
	    char *const *assign, int nassign, char *err, size_t errlen);
int	rows_delete(struct sqlite3 *, const char *table, const char *pk,
	    char *err, size_t errlen);
int	rows_get(struct sqlite3 *, const char *table, const char *pk,
	    FILE *out, char *err, size_t errlen);
int	rows_list(struct sqlite3 *, const char *table, FILE *out,
	    char *err, size_t errlen);
/* The HTTP API's side: JSON in, JSON out (jansson). */
struct json_t;
int	rows_put_json(struct sqlite3 *, const char *table, const char *pk,
	    struct json_t *obj, char *err, size_t errlen);
int	rows_get_json(struct sqlite3 *, const char *table, const char *pk,
	    struct json_t **out);
/* Up to limit rows with keys after `after` (NULL: from the start);
   *next is the last key when more may follow, else NULL. */
int	rows_page_json(struct sqlite3 *, const char *table, const char *after,
	    int limit, struct json_t **rows, char **next);

/* table<TAB>id<TAB>{columns} lines of the given tables, bytewise order. */
int	rows_dump(struct sqlite3 *, char *const *tables, size_t ntables,
	    FILE *out, char *err, size_t errlen);

#endif
