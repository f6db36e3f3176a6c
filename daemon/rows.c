/*
 * rows.c: typed row access for labsyncctl and the HTTP API. Writes are
 * plain SQL, so the capture triggers see them like any other writer's;
 * values are converted to the column's declared type (participants=23 is
 * an integer), and table and column names are checked against the
 * database before they are quoted into SQL. Every function answers with
 * a code (reason.h): a write the capture triggers refuse is told apart by
 * the node's state, read in the write's own transaction, never by the
 * words of the error.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>

#include "rows.h"
#include "rules.h"
#include "store.h"

struct rows_col {
	char	 name[128];
	enum affinity aff;
	int	 pk;
};

static void rows_err(char *, size_t, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static void
rows_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Out of memory: the code, and the words. */
static enum reason
rows_nomem(char *err, size_t errlen)
{
	rows_err(err, errlen, "out of memory");
	return REASON_NO_MEMORY;
}

/* SQLite failed: the code of its error, and its message. */
static enum reason
rows_sqlite(sqlite3 *db, char *err, size_t errlen)
{
	rows_err(err, errlen, "%s", sqlite3_errmsg(db));
	switch (sqlite3_errcode(db)) {
	case SQLITE_NOMEM:
		return REASON_NO_MEMORY;
	case SQLITE_TOOBIG:
		return REASON_VALUE_TOO_LARGE;
	case SQLITE_CONSTRAINT:
		return REASON_CONSTRAINT;
	default:
		return REASON_DATABASE;
	}
}

/* End a write's transaction if it began it (own): commit on success,
   else roll back. The result, or the commit's failure. */
static enum reason
rows_end(sqlite3 *db, int own, enum reason r, char *err, size_t errlen)
{
	if (!own)
		return r;
	if (r == REASON_OK &&
	    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		r = rows_sqlite(db, err, errlen);
	if (r != REASON_OK)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

/* The table's columns and its key; REASON_UNKNOWN_TABLE if it does not
   exist or has no primary key. */
static enum reason
rows_columns(sqlite3 *db, const char *table, struct rows_col **out,
    int *ncols, int *pkidx, char *err, size_t errlen)
{
	sqlite3_stmt	*st;
	struct rows_col	*cols = NULL, *more;
	enum reason	 r = REASON_OK;
	int		 n = 0, rc;

	*out = NULL;
	*ncols = 0;
	*pkidx = -1;
	if (sqlite3_prepare_v2(db, "SELECT name, type, pk FROM "
	    "pragma_table_info(?) ORDER BY cid", -1, &st, NULL) != SQLITE_OK)
		return rows_sqlite(db, err, errlen);
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *decl = (const char *)sqlite3_column_text(st, 1);

		if ((more = reallocarray(cols, n + 1, sizeof(*cols))) == NULL) {
			r = rows_nomem(err, errlen);
			goto done;
		}
		cols = more;
		snprintf(cols[n].name, sizeof(cols[n].name), "%s",
		    sqlite3_column_text(st, 0));
		cols[n].aff = rules_affinity(decl != NULL ? decl : "");
		cols[n].pk = sqlite3_column_int(st, 2) != 0;
		if (cols[n].pk)
			*pkidx = n;
		n++;
	}
	if (rc != SQLITE_DONE)
		r = rows_sqlite(db, err, errlen);
	else if (n == 0 || *pkidx < 0) {
		rows_err(err, errlen, "no table %s with a primary key", table);
		r = REASON_UNKNOWN_TABLE;
	}
done:
	sqlite3_finalize(st);
	if (r != REASON_OK) {
		free(cols);
		*pkidx = -1;
		return r;
	}
	*out = cols;
	*ncols = n;
	return REASON_OK;
}

/* Whether a bind took; SQLite refuses only what is too large, or memory. */
static enum reason
rows_bound(int rc, const struct rows_col *c, char *err, size_t errlen)
{
	if (rc == SQLITE_OK)
		return REASON_OK;
	if (rc == SQLITE_TOOBIG) {
		rows_err(err, errlen, "%s: value too large", c->name);
		return REASON_VALUE_TOO_LARGE;
	}
	if (rc == SQLITE_NOMEM)
		return rows_nomem(err, errlen);
	rows_err(err, errlen, "%s: %s", c->name, sqlite3_errstr(rc));
	return REASON_DATABASE;
}

/* A text for column c of table: the rules (rules.c) it must keep. */
static enum reason
rows_text_ok(const char *table, const struct rows_col *c, const char *v,
    size_t len, char *err, size_t errlen)
{
	return rules_check_value(table, c->name, c->aff, RULES_TEXT, v, len,
	    err, errlen);
}

/* Bind a command-line value with the column's type; \N is NULL. */
static enum reason
rows_bind(sqlite3_stmt *st, int idx, const char *table,
    const struct rows_col *c, const char *v, char *err, size_t errlen)
{
	enum reason	 r;

	char		*end;
	long long	 i;
	double		 d;

	if (strcmp(v, "\\N") == 0)
		return rows_bound(sqlite3_bind_null(st, idx), c, err, errlen);
	switch (c->aff) {
	case AFF_INTEGER:
	case AFF_NUMERIC:
		errno = 0;
		i = strtoll(v, &end, 10);
		if (errno == 0 && *v != '\0' && *end == '\0')
			return rows_bound(sqlite3_bind_int64(st, idx, i), c,
			    err, errlen);
		if (c->aff == AFF_INTEGER) {
			rows_err(err, errlen, "%s: '%s' is not an integer",
			    c->name, v);
			return REASON_WRONG_TYPE;
		}
		/* FALLTHROUGH */
	case AFF_REAL:
		errno = 0;
		d = strtod(v, &end);
		if (errno != 0 || *v == '\0' || *end != '\0') {
			rows_err(err, errlen, "%s: '%s' is not a number",
			    c->name, v);
			return REASON_WRONG_TYPE;
		}
		return rows_bound(sqlite3_bind_double(st, idx, d), c, err,
		    errlen);
	default:
		if ((r = rows_text_ok(table, c, v, strlen(v), err, errlen)) !=
		    REASON_OK)
			return r;
		return rows_bound(sqlite3_bind_text(st, idx, v, -1,
		    SQLITE_TRANSIENT), c, err, errlen);
	}
}

static const struct rows_col *
rows_col_find(const struct rows_col *cols, int n, const char *name,
    size_t len)
{
	for (int i = 0; i < n; i++)
		if (strlen(cols[i].name) == len &&
		    strncmp(cols[i].name, name, len) == 0)
			return &cols[i];
	return NULL;
}

/*
 * INSERT ... ON CONFLICT DO UPDATE of the columns in set, with the key
 * bound to ?1 and column i's value to be bound to ?(i + 2).
 */
static enum reason
rows_upsert_prepare(sqlite3 *db, const char *table, const char *pkname,
    const char *pk, const struct rows_col *const *set, int n,
    sqlite3_stmt **stp, char *err, size_t errlen)
{
	char		*names, *qs, *upd, *sql = NULL, *tmp;
	enum reason	 r = REASON_OK;

	*stp = NULL;
	names = sqlite3_mprintf("\"%w\"", pkname);
	qs = sqlite3_mprintf("?1");
	upd = sqlite3_mprintf("%s", "");
	for (int i = 0; i < n && names != NULL && qs != NULL && upd != NULL;
	    i++) {
		tmp = sqlite3_mprintf("%s, \"%w\"", names, set[i]->name);
		sqlite3_free(names);
		names = tmp;
		tmp = sqlite3_mprintf("%s, ?%d", qs, i + 2);
		sqlite3_free(qs);
		qs = tmp;
		tmp = sqlite3_mprintf("%s%s\"%w\" = excluded.\"%w\"", upd,
		    i ? ", " : "", set[i]->name, set[i]->name);
		sqlite3_free(upd);
		upd = tmp;
	}
	if (names == NULL || qs == NULL || upd == NULL) {
		r = rows_nomem(err, errlen);
		goto done;
	}
	if (n == 0)
		sql = sqlite3_mprintf("INSERT INTO \"%w\"(%s) VALUES (%s) "
		    "ON CONFLICT DO NOTHING", table, names, qs);
	else
		sql = sqlite3_mprintf("INSERT INTO \"%w\"(%s) VALUES (%s) "
		    "ON CONFLICT(\"%w\") DO UPDATE SET %s", table, names, qs,
		    pkname, upd);
	if (sql == NULL)
		r = rows_nomem(err, errlen);
	else if (sqlite3_prepare_v2(db, sql, -1, stp, NULL) != SQLITE_OK) {
		r = rows_sqlite(db, err, errlen);
		*stp = NULL;
	} else if (sqlite3_bind_text(*stp, 1, pk, -1, SQLITE_TRANSIENT) !=
	    SQLITE_OK) {
		r = rows_sqlite(db, err, errlen);
		sqlite3_finalize(*stp);
		*stp = NULL;
	}
done:
	sqlite3_free(sql);
	sqlite3_free(names);
	sqlite3_free(qs);
	sqlite3_free(upd);
	return r;
}

/*
 * The node's state as the capture triggers read it (labsync_state):
 * REASON_READ_ONLY, REASON_RECOVERING, or REASON_OK when it takes local
 * writes (or the database has no such state).
 */
static enum reason
rows_node_state(sqlite3 *db)
{
	sqlite3_stmt	*st;
	enum reason	 r = REASON_OK;

	if (sqlite3_prepare_v2(db, "SELECT writable FROM labsync_state", -1,
	    &st, NULL) != SQLITE_OK)
		return REASON_OK;
	if (sqlite3_step(st) == SQLITE_ROW) {
		switch (sqlite3_column_int(st, 0)) {
		case STORE_READONLY:
			r = REASON_READ_ONLY;
			break;
		case STORE_RECOVERING:
			r = REASON_RECOVERING;
			break;
		default:
			break;
		}
	}
	sqlite3_finalize(st);
	return r;
}

/*
 * Run a prepared write in a transaction of its own (unless the caller
 * has one open), so that when a trigger refuses it the node's state read
 * after is the one the trigger saw. *changed: the rows it changed.
 */
static enum reason
rows_write(sqlite3 *db, sqlite3_stmt *st, int *changed, char *err,
    size_t errlen)
{
	enum reason	 r = REASON_OK, state;
	int		 own = 0;

	*changed = 0;
	if (sqlite3_get_autocommit(db)) {
		if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
		    SQLITE_OK)
			return rows_sqlite(db, err, errlen);
		own = 1;
	}
	if (sqlite3_step(st) == SQLITE_DONE)
		*changed = sqlite3_changes(db);
	else {
		int ext = sqlite3_extended_errcode(db);

		r = rows_sqlite(db, err, errlen);
		sqlite3_reset(st);
		/* a RAISE of the capture triggers: for the node's sake, or
		   for the value's (then it stays REASON_CONSTRAINT) */
		if (ext == SQLITE_CONSTRAINT_TRIGGER &&
		    (state = rows_node_state(db)) != REASON_OK)
			r = state;
	}
	return rows_end(db, own, r, err, errlen);
}

enum reason
rows_put(sqlite3 *db, const char *table, const char *pk, char *const *assign,
    int nassign, char *err, size_t errlen)
{
	struct rows_col		*cols = NULL;
	const struct rows_col	**set = NULL;
	sqlite3_stmt		*st = NULL;
	const char		*eq;
	int			 n, pkidx, changed;
	enum reason		 r;

	if ((r = rows_columns(db, table, &cols, &n, &pkidx, err,
	    errlen)) != REASON_OK ||
	    (r = rules_check_key(table, cols[pkidx].name, pk, strlen(pk), err,
	    errlen)) != REASON_OK)
		goto done;
	if ((set = calloc(nassign + 1, sizeof(*set))) == NULL) {
		r = rows_nomem(err, errlen);
		goto done;
	}
	for (int i = 0; i < nassign; i++) {
		if ((eq = strchr(assign[i], '=')) == NULL) {
			rows_err(err, errlen, "'%s' is not col=value",
			    assign[i]);
			r = REASON_BAD_INPUT;
			goto done;
		}
		set[i] = rows_col_find(cols, n, assign[i], eq - assign[i]);
		if (set[i] == NULL || set[i]->pk) {
			rows_err(err, errlen, "table %s has no column '%.*s'",
			    table, (int)(eq - assign[i]), assign[i]);
			r = REASON_UNKNOWN_COLUMN;
			goto done;
		}
		for (int j = 0; j < i; j++)
			if (set[j] == set[i]) {
				rows_err(err, errlen, "column %s given twice",
				    set[i]->name);
				r = REASON_DUPLICATE_COLUMN;
				goto done;
			}
	}
	if ((r = rows_upsert_prepare(db, table, cols[pkidx].name, pk, set,
	    nassign, &st, err, errlen)) != REASON_OK)
		goto done;
	for (int i = 0; i < nassign; i++)
		if ((r = rows_bind(st, i + 2, table, set[i],
		    strchr(assign[i], '=') + 1, err, errlen)) != REASON_OK)
			goto done;
	r = rows_write(db, st, &changed, err, errlen);
done:
	sqlite3_finalize(st);
	free(set);
	free(cols);
	return r;
}

enum reason
rows_delete(sqlite3 *db, const char *table, const char *pk, char *err,
    size_t errlen)
{
	struct rows_col	*cols = NULL;
	sqlite3_stmt	*st = NULL;
	char		*sql = NULL;
	int		 n, pkidx, changed;
	enum reason	 r;

	if ((r = rows_columns(db, table, &cols, &n, &pkidx, err,
	    errlen)) != REASON_OK ||
	    (r = rules_check_key(table, cols[pkidx].name, pk, strlen(pk), err,
	    errlen)) != REASON_OK)
		goto done;
	if ((sql = sqlite3_mprintf("DELETE FROM \"%w\" WHERE \"%w\" = ?",
	    table, cols[pkidx].name)) == NULL) {
		r = rows_nomem(err, errlen);
		goto done;
	}
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, pk, -1, SQLITE_STATIC) != SQLITE_OK) {
		r = rows_sqlite(db, err, errlen);
		goto done;
	}
	if ((r = rows_write(db, st, &changed, err, errlen)) == REASON_OK &&
	    changed == 0) {
		rows_err(err, errlen, "%s %s: no such row", table, pk);
		r = REASON_NOT_FOUND;
	}
done:
	sqlite3_finalize(st);
	sqlite3_free(sql);
	free(cols);
	return r;
}

/*
 * The delete and its erasure in one transaction (the caller's, or one of
 * its own): whoever reads the log after the commit sees an erasure.
 */
enum reason
rows_erase(struct store *s, const char *table, const char *pk,
    const char *by, char *err, size_t errlen)
{
	sqlite3		*db = store_db(s);
	enum reason	 r;
	uint64_t	 seq;
	int		 own = 0, rc;

	if (sqlite3_get_autocommit(db)) {
		if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
		    SQLITE_OK)
			return rows_sqlite(db, err, errlen);
		own = 1;
	}
	seq = erase_seq(db);
	r = rows_delete(db, table, pk, err, errlen);
	/* a row deleted before: its old values may be in the logs */
	if (r == REASON_NOT_FOUND) {
		switch (erase_absent(s, table, pk, err, errlen)) {
		case 0:
			r = REASON_OK;
			break;
		case 1:
			break;
		case -2:	/* as rows_write tells a trigger's refusal */
			if ((r = rows_node_state(db)) == REASON_OK)
				r = REASON_CONSTRAINT;
			break;
		default:
			r = REASON_DATABASE;
			break;
		}
	}
	if (r != REASON_OK)
		return rows_end(db, own, r, err, errlen);
	if ((rc = erase_local(db, by, seq)) == 1) {
		rows_err(err, errlen, "table %s is not synced: its rows never "
		    "leave this node, delete removes them", table);
		r = REASON_NOT_WRITABLE;
	} else if (rc == -1)
		r = rows_sqlite(db, err, errlen);
	return rows_end(db, own, r, err, errlen);
}

/* A column value as JSON; blobs as {"base64": "..."}. NULL: no memory. */
static json_t *
rows_json_value(sqlite3_stmt *st, int i)
{
	const uint8_t	*b;
	json_t		*o;
	char		*enc;
	size_t		 n, elen;

	switch (sqlite3_column_type(st, i)) {
	case SQLITE_INTEGER:
		return json_integer(sqlite3_column_int64(st, i));
	case SQLITE_FLOAT:
		return json_real(sqlite3_column_double(st, i));
	case SQLITE_TEXT:
		n = sqlite3_column_bytes(st, i);
		o = json_stringn((const char *)sqlite3_column_text(st, i), n);
		return o != NULL ? o : json_string("(invalid UTF-8)");
	case SQLITE_BLOB:
		b = sqlite3_column_blob(st, i);
		n = sqlite3_column_bytes(st, i);
		elen = sodium_base64_encoded_len(n,
		    sodium_base64_VARIANT_ORIGINAL);
		if ((enc = malloc(elen)) == NULL)
			return NULL;
		sodium_bin2base64(enc, elen, b, n,
		    sodium_base64_VARIANT_ORIGINAL);
		o = json_pack("{s:s}", "base64", enc);
		free(enc);
		return o;
	default:
		return json_null();
	}
}

/* The row as a JSON object, without column skip; NULL: no memory. */
static json_t *
rows_json_row(sqlite3_stmt *st, int skip)
{
	json_t	*o = json_object();

	for (int i = 0; o != NULL && i < sqlite3_column_count(st); i++) {
		json_t *v;

		if (i == skip)
			continue;
		if ((v = rows_json_value(st, i)) == NULL ||
		    json_object_set_new(o, sqlite3_column_name(st, i), v) ==
		    -1) {
			json_decref(o);
			o = NULL;
		}
	}
	return o;
}

/* Print prefix and o on one line; takes o (and checks both for NULL). */
static enum reason
rows_print(json_t *o, FILE *out, const char *prefix, char *err,
    size_t errlen)
{
	char		*s = NULL;
	enum reason	 r = REASON_OK;

	if (o == NULL || prefix == NULL ||
	    (s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
		r = rows_nomem(err, errlen);
	else if (fprintf(out, "%s%s\n", prefix, s) < 0) {
		rows_err(err, errlen, "write: %s", strerror(errno));
		r = REASON_IO;
	}
	free(s);
	json_decref(o);
	return r;
}

/*
 * The start of a dump line, "TABLE\tKEY\t", with tab, newline, carriage
 * return and backslash in the key written \t, \n, \r and \\: a row stays
 * one line whatever its key. NULL if out of memory.
 */
static char *
rows_dump_prefix(const char *table, const unsigned char *key)
{
	sqlite3_str	*s = sqlite3_str_new(NULL);

	sqlite3_str_appendf(s, "%s\t", table);
	for (; key != NULL && *key != '\0'; key++) {
		switch (*key) {
		case '\t':
			sqlite3_str_appendall(s, "\\t");
			break;
		case '\n':
			sqlite3_str_appendall(s, "\\n");
			break;
		case '\r':
			sqlite3_str_appendall(s, "\\r");
			break;
		case '\\':
			sqlite3_str_appendall(s, "\\\\");
			break;
		default:
			sqlite3_str_appendchar(s, 1, (char)*key);
			break;
		}
	}
	sqlite3_str_appendchar(s, 1, '\t');
	return sqlite3_str_finish(s);
}

/* o without the columns of table that skip names ("table.column"). */
static json_t *
rows_json_skip(json_t *o, const char *table, char *const *skip,
    size_t nskip)
{
	size_t		 tlen = strlen(table);
	const char	*key;
	json_t		*v;
	void		*tmp;

	for (size_t i = 0; o != NULL && i < nskip; i++) {
		if (strncasecmp(skip[i], table, tlen) != 0 ||
		    skip[i][tlen] != '.')
			continue;
		json_object_foreach_safe(o, tmp, key, v)
			if (strcasecmp(key, skip[i] + tlen + 1) == 0)
				json_object_del(o, key);
	}
	return o;
}

/* Walk rows of a table in key order; pk NULL means all rows; a dump
   leaves out the columns skip names. */
static enum reason
rows_select(sqlite3 *db, const char *table, const char *pk, FILE *out,
    int dump, char *const *skip, size_t nskip, char *err, size_t errlen)
{
	struct rows_col	*cols = NULL;
	sqlite3_stmt	*st = NULL;
	char		*sql = NULL, *prefix;
	int		 n, pkidx, rc, found = 0;
	enum reason	 r;

	if ((r = rows_columns(db, table, &cols, &n, &pkidx, err,
	    errlen)) != REASON_OK)
		goto done;
	if (pk != NULL)
		sql = sqlite3_mprintf("SELECT * FROM \"%w\" WHERE \"%w\" = ?",
		    table, cols[pkidx].name);
	else
		sql = sqlite3_mprintf("SELECT * FROM \"%w\" ORDER BY \"%w\"",
		    table, cols[pkidx].name);
	if (sql == NULL) {
		r = rows_nomem(err, errlen);
		goto done;
	}
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK ||
	    (pk != NULL && sqlite3_bind_text(st, 1, pk, -1, SQLITE_STATIC) !=
	    SQLITE_OK)) {
		r = rows_sqlite(db, err, errlen);
		goto done;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		found = 1;
		if (dump) {
			prefix = rows_dump_prefix(table,
			    sqlite3_column_text(st, pkidx));
			r = rows_print(rows_json_skip(rows_json_row(st,
			    pkidx), table, skip, nskip), out, prefix, err,
			    errlen);
			sqlite3_free(prefix);
		} else
			r = rows_print(rows_json_row(st, -1), out, "", err,
			    errlen);
		if (r != REASON_OK)
			goto done;
	}
	if (rc != SQLITE_DONE)
		r = rows_sqlite(db, err, errlen);
	else if (pk != NULL && !found) {
		rows_err(err, errlen, "%s %s: no such row", table, pk);
		r = REASON_NOT_FOUND;
	}
done:
	sqlite3_finalize(st);
	sqlite3_free(sql);
	free(cols);
	return r;
}

enum reason
rows_get(sqlite3 *db, const char *table, const char *pk, FILE *out,
    char *err, size_t errlen)
{
	return rows_select(db, table, pk, out, 0, NULL, 0, err, errlen);
}

enum reason
rows_list(sqlite3 *db, const char *table, FILE *out, char *err,
    size_t errlen)
{
	return rows_select(db, table, NULL, out, 0, NULL, 0, err, errlen);
}

static int
rows_strcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

enum reason
rows_dump(sqlite3 *db, char *const *tables, size_t ntables,
    char *const *skip, size_t nskip, FILE *out, char *err, size_t errlen)
{
	char		**sorted;
	enum reason	  r = REASON_OK;

	if ((sorted = calloc(ntables + 1, sizeof(*sorted))) == NULL)
		return rows_nomem(err, errlen);
	memcpy(sorted, tables, ntables * sizeof(*sorted));
	qsort(sorted, ntables, sizeof(*sorted), rows_strcmp);
	/* one read transaction: a consistent snapshot of every table */
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		r = rows_sqlite(db, err, errlen);
	for (size_t i = 0; i < ntables && r == REASON_OK; i++)
		r = rows_select(db, sorted[i], NULL, out, 1, skip, nskip, err,
		    errlen);
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	free(sorted);
	return r;
}

/* Bind a JSON value if it fits the column's type. */
static enum reason
rows_bind_json(sqlite3_stmt *st, int idx, const char *table,
    const struct rows_col *c, json_t *v, char *err, size_t errlen)
{
	enum reason	 r;

	switch (json_typeof(v)) {
	case JSON_NULL:
		return rows_bound(sqlite3_bind_null(st, idx), c, err, errlen);
	case JSON_INTEGER:
		if (c->aff == AFF_TEXT)
			break;
		return rows_bound(sqlite3_bind_int64(st, idx,
		    json_integer_value(v)), c, err, errlen);
	case JSON_REAL:
		if (c->aff == AFF_TEXT || c->aff == AFF_INTEGER)
			break;
		return rows_bound(sqlite3_bind_double(st, idx,
		    json_real_value(v)), c, err, errlen);
	case JSON_STRING:
		if (c->aff != AFF_TEXT && c->aff != AFF_BLOB)
			break;
		if ((r = rows_text_ok(table, c, json_string_value(v),
		    json_string_length(v), err, errlen)) != REASON_OK)
			return r;
		return rows_bound(sqlite3_bind_text(st, idx,
		    json_string_value(v), (int)json_string_length(v),
		    SQLITE_TRANSIENT), c, err, errlen);
	default:
		break;
	}
	rows_err(err, errlen, "column %s: a %s does not fit its type", c->name,
	    json_is_string(v) ? "string" : json_is_integer(v) ? "integer" :
	    json_is_real(v) ? "number" : json_is_boolean(v) ? "boolean" :
	    "structured value");
	return REASON_WRONG_TYPE;
}

enum reason
rows_put_json(sqlite3 *db, const char *table, const char *pk, json_t *obj,
    char *err, size_t errlen)
{
	struct rows_col		*cols = NULL;
	const struct rows_col	**set = NULL;
	json_t			**vals = NULL, *v;
	sqlite3_stmt		*st = NULL;
	const char		*key;
	int			 n, pkidx, nset = 0, changed;
	enum reason		 r;

	if (!json_is_object(obj)) {
		rows_err(err, errlen, "the body must be a JSON object of "
		    "columns");
		return REASON_BAD_INPUT;
	}
	if ((r = rows_columns(db, table, &cols, &n, &pkidx, err,
	    errlen)) != REASON_OK ||
	    (r = rules_check_key(table, cols[pkidx].name, pk, strlen(pk), err,
	    errlen)) != REASON_OK)
		goto done;
	set = calloc(json_object_size(obj) + 1, sizeof(*set));
	vals = calloc(json_object_size(obj) + 1, sizeof(*vals));
	if (set == NULL || vals == NULL) {
		r = rows_nomem(err, errlen);
		goto done;
	}
	json_object_foreach(obj, key, v) {
		const struct rows_col *c = rows_col_find(cols, n, key,
		    strlen(key));

		if (c == NULL || c->pk) {
			rows_err(err, errlen, "table %s has no column '%s'%s",
			    table, key, c != NULL ? " to set (the key is in "
			    "the path)" : "");
			r = REASON_UNKNOWN_COLUMN;
			goto done;
		}
		set[nset] = c;
		vals[nset++] = v;
	}
	if ((r = rows_upsert_prepare(db, table, cols[pkidx].name, pk, set,
	    nset, &st, err, errlen)) != REASON_OK)
		goto done;
	for (int i = 0; i < nset; i++)
		if ((r = rows_bind_json(st, i + 2, table, set[i], vals[i],
		    err, errlen)) != REASON_OK)
			goto done;
	r = rows_write(db, st, &changed, err, errlen);
done:
	sqlite3_finalize(st);
	free(set);
	free(vals);
	free(cols);
	return r;
}

enum reason
rows_get_json(sqlite3 *db, const char *table, const char *pk, json_t **out)
{
	struct rows_col	*cols = NULL;
	sqlite3_stmt	*st = NULL;
	char		*sql = NULL, err[256];
	int		 n, pkidx, rc;
	enum reason	 r;

	*out = NULL;
	if ((r = rows_columns(db, table, &cols, &n, &pkidx, err,
	    sizeof(err))) != REASON_OK)
		goto done;
	if ((sql = sqlite3_mprintf("SELECT * FROM \"%w\" WHERE \"%w\" = ?",
	    table, cols[pkidx].name)) == NULL) {
		r = REASON_NO_MEMORY;
		goto done;
	}
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, pk, -1, SQLITE_STATIC) != SQLITE_OK) {
		r = rows_sqlite(db, err, sizeof(err));
		goto done;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = (*out = rows_json_row(st, -1)) != NULL ? REASON_OK :
		    REASON_NO_MEMORY;
	else if (rc == SQLITE_DONE)
		r = REASON_NOT_FOUND;
	else
		r = rows_sqlite(db, err, sizeof(err));
done:
	sqlite3_finalize(st);
	sqlite3_free(sql);
	free(cols);
	return r;
}

enum reason
rows_page_json(sqlite3 *db, const char *table, const char *after, int limit,
    json_t **rows, char **next)
{
	char	 err[256];

	return rows_page_where_json(db, table, after, limit, NULL, 0, rows,
	    next, err, sizeof(err));
}

/* --- filters, export, replace, patch, the tables' layout --------------- */

/*
 * The columns and values of where ("col=value" each) for a WHERE clause:
 * *sql gets " AND t."col" IS ?N" for each, N counting from first; the
 * values are bound later by rows_where_bind with the column's type.
 */
static enum reason
rows_where_sql(const struct rows_col *cols, int n, const char *table,
    char *const *where, int nwhere, int first, char **sql,
    const struct rows_col ***wcols, char *err, size_t errlen)
{
	const struct rows_col	**w;
	const char		*eq;
	char			*s, *tmp;

	*sql = NULL;
	*wcols = NULL;
	if ((w = calloc(nwhere + 1, sizeof(*w))) == NULL ||
	    (s = sqlite3_mprintf("%s", "")) == NULL) {
		free(w);
		return rows_nomem(err, errlen);
	}
	for (int i = 0; i < nwhere; i++) {
		if ((eq = strchr(where[i], '=')) == NULL) {
			rows_err(err, errlen, "'%s' is not col=value",
			    where[i]);
			free(w);
			sqlite3_free(s);
			return REASON_BAD_INPUT;
		}
		if ((w[i] = rows_col_find(cols, n, where[i],
		    eq - where[i])) == NULL) {
			rows_err(err, errlen, "table %s has no column '%.*s'",
			    table, (int)(eq - where[i]), where[i]);
			free(w);
			sqlite3_free(s);
			return REASON_UNKNOWN_COLUMN;
		}
		tmp = sqlite3_mprintf("%s AND t.\"%w\" IS ?%d", s, w[i]->name,
		    first + i);
		sqlite3_free(s);
		if ((s = tmp) == NULL) {
			free(w);
			return rows_nomem(err, errlen);
		}
	}
	*sql = s;
	*wcols = w;
	return REASON_OK;
}

/* Bind the values of where from parameter first on. */
static enum reason
rows_where_bind(sqlite3_stmt *st, const char *table,
    const struct rows_col **wcols, char *const *where, int nwhere, int first,
    char *err, size_t errlen)
{
	enum reason	 r;

	for (int i = 0; i < nwhere; i++)
		if ((r = rows_bind(st, first + i, table, wcols[i],
		    strchr(where[i], '=') + 1, err, errlen)) != REASON_OK)
			return r;
	return REASON_OK;
}

enum reason
rows_page_where_json(sqlite3 *db, const char *table, const char *after,
    int limit, char *const *where, int nwhere, json_t **rows, char **next,
    char *err, size_t errlen)
{
	struct rows_col		*cols = NULL;
	const struct rows_col	**wcols = NULL;
	sqlite3_stmt		*st = NULL;
	json_t			*row;
	char			*sql = NULL, *wsql = NULL;
	const char		*key;
	int			 ncols, pkidx, rc, n = 0;
	enum reason		 r;

	*rows = NULL;
	*next = NULL;
	if ((r = rows_columns(db, table, &cols, &ncols, &pkidx, err,
	    errlen)) != REASON_OK ||
	    (r = rows_where_sql(cols, ncols, table, where, nwhere, 3, &wsql,
	    &wcols, err, errlen)) != REASON_OK)
		goto done;
	sql = sqlite3_mprintf("SELECT * FROM \"%w\" AS t WHERE (?1 IS NULL OR "
	    "t.\"%w\" > ?1)%s ORDER BY t.\"%w\" LIMIT ?2", table,
	    cols[pkidx].name, wsql, cols[pkidx].name);
	if (sql == NULL || (*rows = json_array()) == NULL) {
		r = rows_nomem(err, errlen);
		goto done;
	}
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK ||
	    (after != NULL && sqlite3_bind_text(st, 1, after, -1,
	    SQLITE_STATIC) != SQLITE_OK) ||
	    sqlite3_bind_int(st, 2, limit + 1) != SQLITE_OK) {
		r = rows_sqlite(db, err, errlen);
		goto done;
	}
	if ((r = rows_where_bind(st, table, wcols, where, nwhere, 3, err,
	    errlen)) != REASON_OK)
		goto done;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == limit) {
			/* one more exists: the page ends at the row before */
			key = json_string_value(json_object_get(
			    json_array_get(*rows, n - 1), cols[pkidx].name));
			if (key != NULL && (*next = strdup(key)) == NULL)
				r = rows_nomem(err, errlen);
			break;
		}
		if ((row = rows_json_row(st, -1)) == NULL ||
		    json_array_append_new(*rows, row) == -1) {
			r = rows_nomem(err, errlen);
			break;
		}
		n++;
	}
	if (r == REASON_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = rows_sqlite(db, err, errlen);
done:
	if (r != REASON_OK) {
		json_decref(*rows);
		*rows = NULL;
		free(*next);
		*next = NULL;
	}
	sqlite3_finalize(st);
	sqlite3_free(sql);
	sqlite3_free(wsql);
	free(wcols);
	free(cols);
	return r;
}

/*
 * Adds to each row of a page "_origin": the node id that made the row's
 * newest upsert (its row clock), or null if no clock is known. A row's
 * clocks are found by rowid (an entry of another key there is stale) or,
 * for a table without rowid, by key, as merge.c keeps them.
 */
#define ROWS_KEYED_ORIGIN "(SELECT o.name FROM labsync_row c JOIN " \
	"labsync_origin o ON o.id = c.r_origin WHERE c.tbl = ?1 AND c.pk = ?2)"

enum reason
rows_origins_json(sqlite3 *db, const char *table, json_t *rows)
{
	struct rows_col	*cols = NULL;
	sqlite3_stmt	*st = NULL;
	char		*sql = NULL, err[256];
	const char	*pk, *origin;
	json_t		*row;
	size_t		 i;
	int		 ncols, pkidx, rc, byrowid;
	enum reason	 r;

	if ((r = rows_columns(db, table, &cols, &ncols, &pkidx, err,
	    sizeof(err))) != REASON_OK)
		goto done;
	for (byrowid = 1; byrowid >= 0 && st == NULL; byrowid--) {
		sqlite3_free(sql);
		sql = byrowid ? sqlite3_mprintf("SELECT coalesce((SELECT "
		    "o.name FROM \"%w\" t JOIN labsync_rowid c ON c.tbl = ?1 AND "
		    "c.rid = t.rowid AND c.pk = ?2 JOIN labsync_origin o ON "
		    "o.id = c.r_origin WHERE t.\"%w\" = ?2), %s)", table,
		    cols[pkidx].name, ROWS_KEYED_ORIGIN) :
		    sqlite3_mprintf("SELECT %s", ROWS_KEYED_ORIGIN);
		if (sql == NULL) {
			r = REASON_NO_MEMORY;
			goto done;
		}
		/* a table without rowid: no t.rowid, clocks by key only */
		if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
			st = NULL;
	}
	if (st == NULL) {
		r = rows_sqlite(db, err, sizeof(err));
		goto done;
	}
	json_array_foreach(rows, i, row) {
		pk = json_string_value(json_object_get(row, cols[pkidx].name));
		origin = NULL;
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, pk, -1, SQLITE_STATIC);
		if ((rc = sqlite3_step(st)) == SQLITE_ROW)
			origin = (const char *)sqlite3_column_text(st, 0);
		else if (rc != SQLITE_DONE) {
			r = rows_sqlite(db, err, sizeof(err));
			goto done;
		}
		if (json_object_set_new(row, "_origin", origin != NULL ?
		    json_string(origin) : json_null()) == -1) {
			r = REASON_NO_MEMORY;
			goto done;
		}
	}
done:
	sqlite3_finalize(st);
	sqlite3_free(sql);
	free(cols);
	return r;
}

/* One CSV field (RFC 4180): quoted if it holds a comma, quote, CR or LF,
   or is empty text (so that it differs from NULL, which is nothing). */
static int
rows_csv_field(FILE *out, const char *s, size_t len, int null)
{
	int	 quote = !null && len == 0;

	for (size_t i = 0; i < len && !quote; i++)
		quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' ||
		    s[i] == '\n';
	if (!quote)
		return fwrite(s, 1, len, out) == len ? 0 : -1;
	if (fputc('"', out) == EOF)
		return -1;
	for (size_t i = 0; i < len; i++)
		if ((s[i] == '"' && fputc('"', out) == EOF) ||
		    fputc(s[i], out) == EOF)
			return -1;
	return fputc('"', out) == EOF ? -1 : 0;
}

/* One row (or, with header, the column names) as a CSV record. */
static enum reason
rows_csv_record(sqlite3_stmt *st, int header, FILE *out, char *err,
    size_t errlen)
{
	const char	*s;
	char		*enc;
	size_t		 n, elen;
	int		 rc = 0;

	for (int i = 0; rc == 0 && i < sqlite3_column_count(st); i++) {
		if (i > 0 && fputc(',', out) == EOF)
			rc = -1;
		else if (header) {
			s = sqlite3_column_name(st, i);
			rc = rows_csv_field(out, s, strlen(s), 0);
		} else if (sqlite3_column_type(st, i) == SQLITE_NULL)
			rc = rows_csv_field(out, "", 0, 1);
		else if (sqlite3_column_type(st, i) == SQLITE_BLOB) {
			/* a blob: base64, as in JSON's {"base64": ...} */
			n = sqlite3_column_bytes(st, i);
			elen = sodium_base64_encoded_len(n,
			    sodium_base64_VARIANT_ORIGINAL);
			if ((enc = malloc(elen)) == NULL)
				return rows_nomem(err, errlen);
			sodium_bin2base64(enc, elen, sqlite3_column_blob(st, i),
			    n, sodium_base64_VARIANT_ORIGINAL);
			rc = rows_csv_field(out, enc, strlen(enc), 0);
			free(enc);
		} else {
			s = (const char *)sqlite3_column_text(st, i);
			rc = rows_csv_field(out, s != NULL ? s : "",
			    sqlite3_column_bytes(st, i), 0);
		}
	}
	if (rc == 0 && fputs("\r\n", out) == EOF)
		rc = -1;
	if (rc == -1) {
		rows_err(err, errlen, "write: %s", strerror(errno));
		return REASON_IO;
	}
	return REASON_OK;
}

/*
 * How SQL names the rowid of table (NULL: it has none, or every name is
 * a column's), for finding its rows' clocks in labsync_rowid.
 */
static const char *
rows_rowid_name(sqlite3 *db, const char *table, const struct rows_col *cols,
    int n)
{
	static const char *const names[] = { "rowid", "_rowid_", "oid" };
	sqlite3_stmt	*st;
	int		 wr = 1;

	if (sqlite3_prepare_v2(db, "SELECT wr FROM pragma_table_list WHERE "
	    "schema = 'main' AND name = ?", -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		wr = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (wr != 0)
		return NULL;
	for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
		if (rows_col_find(cols, n, names[k], strlen(names[k])) == NULL)
			return names[k];
	return NULL;
}

enum reason
rows_export(sqlite3 *db, const char *table, enum rows_format fmt,
    char *const *where, int nwhere, int meta, FILE *out, char *err,
    size_t errlen)
{
	struct rows_col		*cols = NULL;
	const struct rows_col	**wcols = NULL;
	sqlite3_stmt		*st = NULL;
	const char		*rid;
	char			*sql = NULL, *wsql = NULL, *msel = NULL;
	int			 n, pkidx, rc = SQLITE_DONE, own = 0;
	enum reason		 r;

	if ((r = rows_columns(db, table, &cols, &n, &pkidx, err,
	    errlen)) != REASON_OK ||
	    (r = rows_where_sql(cols, n, table, where, nwhere, 1, &wsql,
	    &wcols, err, errlen)) != REASON_OK)
		goto done;
	if (meta) {
		/* the row's newest upsert: by rowid while the row is there,
		   by key in a table without rowids */
		rid = rows_rowid_name(db, table, cols, n);
		msel = sqlite3_mprintf(", (SELECT name FROM labsync_origin "
		    "WHERE id = coalesce(%s, k.r_origin)) AS labsync_origin, "
		    "strftime('%%Y-%%m-%%dT%%H:%%M:%%fZ', (coalesce(%s, "
		    "k.r_hlc) >> 16) / 1000.0, 'unixepoch') AS "
		    "labsync_changed_at FROM \"%w\" AS t LEFT JOIN labsync_row "
		    "AS k ON k.tbl = %Q AND k.pk = t.\"%w\"",
		    rid != NULL ? "e.r_origin" : "NULL",
		    rid != NULL ? "e.r_hlc" : "NULL", table, table,
		    cols[pkidx].name);
		if (msel != NULL && rid != NULL) {
			char *tmp = sqlite3_mprintf("%s LEFT JOIN labsync_rowid "
			    "AS e ON e.tbl = %Q AND e.rid = t.%s AND e.pk = "
			    "t.\"%w\"", msel, table, rid, cols[pkidx].name);

			sqlite3_free(msel);
			msel = tmp;
		}
	} else
		msel = sqlite3_mprintf(" FROM \"%w\" AS t", table);
	if (msel == NULL || (sql = sqlite3_mprintf("SELECT t.*%s WHERE 1%s "
	    "ORDER BY t.\"%w\"", msel, wsql, cols[pkidx].name)) == NULL) {
		r = rows_nomem(err, errlen);
		goto done;
	}
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		r = rows_sqlite(db, err, errlen);
		goto done;
	}
	if ((r = rows_where_bind(st, table, wcols, where, nwhere, 1, err,
	    errlen)) != REASON_OK)
		goto done;
	/* one read transaction: the rows and their clocks agree */
	if (sqlite3_get_autocommit(db)) {
		if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
			r = rows_sqlite(db, err, errlen);
			goto done;
		}
		own = 1;
	}
	if (fmt == ROWS_CSV)
		r = rows_csv_record(st, 1, out, err, errlen);
	while (r == REASON_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
		r = fmt == ROWS_CSV ? rows_csv_record(st, 0, out, err, errlen) :
		    rows_print(rows_json_row(st, -1), out, "", err, errlen);
	if (r == REASON_OK && rc != SQLITE_DONE)
		r = rows_sqlite(db, err, errlen);
done:
	sqlite3_finalize(st);
	if (own)
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_free(sql);
	sqlite3_free(wsql);
	sqlite3_free(msel);
	free(wcols);
	free(cols);
	return r;
}

enum reason
rows_replace_json(sqlite3 *db, const char *table, const char *pk,
    json_t *obj, char *err, size_t errlen)
{
	struct rows_col	*cols = NULL;
	json_t		*full = NULL;
	int		 n, pkidx;
	enum reason	 r;

	if (!json_is_object(obj)) {
		rows_err(err, errlen, "the body must be a JSON object of "
		    "columns");
		return REASON_BAD_INPUT;
	}
	if ((r = rows_columns(db, table, &cols, &n, &pkidx, err,
	    errlen)) != REASON_OK)
		return r;
	if ((full = json_copy(obj)) == NULL) {
		r = rows_nomem(err, errlen);
		goto done;
	}
	/* every column the body leaves out becomes NULL */
	for (int i = 0; i < n; i++)
		if (i != pkidx && json_object_get(full, cols[i].name) == NULL &&
		    json_object_set_new(full, cols[i].name, json_null()) ==
		    -1) {
			r = rows_nomem(err, errlen);
			goto done;
		}
	r = rows_put_json(db, table, pk, full, err, errlen);
done:
	json_decref(full);
	free(cols);
	return r;
}

enum reason
rows_patch_json(sqlite3 *db, const char *table, const char *pk, json_t *obj,
    char *err, size_t errlen)
{
	json_t		*row = NULL;
	enum reason	 r;
	int		 own = sqlite3_get_autocommit(db);

	/* the row's presence and the write in one transaction */
	if (own && sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK)
		return rows_sqlite(db, err, errlen);
	if ((r = rows_get_json(db, table, pk, &row)) == REASON_NOT_FOUND)
		rows_err(err, errlen, "%s %s: no such row", table, pk);
	else if (r != REASON_OK)
		rows_err(err, errlen, "cannot read the row");
	else
		r = rows_put_json(db, table, pk, obj, err, errlen);
	json_decref(row);
	return rows_end(db, own, r, err, errlen);
}

enum reason
rows_columns_json(sqlite3 *db, const char *table, json_t **out)
{
	sqlite3_stmt	*st = NULL;
	json_t		*a, *c;
	enum reason	 r = REASON_OK;
	int		 rc;

	*out = NULL;
	if ((a = json_array()) == NULL)
		return REASON_NO_MEMORY;
	if (sqlite3_prepare_v2(db, "SELECT name, type, pk FROM "
	    "pragma_table_info(?) ORDER BY cid", -1, &st, NULL) != SQLITE_OK) {
		json_decref(a);
		return REASON_DATABASE;
	}
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		c = json_pack("{s:s, s:s, s:b}", "name",
		    (const char *)sqlite3_column_text(st, 0), "type",
		    sqlite3_column_text(st, 1) != NULL ?
		    (const char *)sqlite3_column_text(st, 1) : "",
		    "primary_key", sqlite3_column_int(st, 2) != 0);
		if (c == NULL || json_array_append_new(a, c) == -1) {
			r = REASON_NO_MEMORY;
			break;
		}
	}
	if (r == REASON_OK && rc != SQLITE_DONE)
		r = REASON_DATABASE;
	else if (r == REASON_OK && json_array_size(a) == 0)
		r = REASON_UNKNOWN_TABLE;
	sqlite3_finalize(st);
	if (r != REASON_OK)
		json_decref(a);
	else
		*out = a;
	return r;
}
