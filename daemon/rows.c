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
	if (!own)
		return r;
	if (r == REASON_OK &&
	    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		r = rows_sqlite(db, err, errlen);
	if (r != REASON_OK)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return r;
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

/* Walk rows of a table in key order; pk NULL means all rows. */
static enum reason
rows_select(sqlite3 *db, const char *table, const char *pk, FILE *out,
    int dump, char *err, size_t errlen)
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
			prefix = sqlite3_mprintf("%s\t%s\t", table,
			    sqlite3_column_text(st, pkidx));
			r = rows_print(rows_json_row(st, pkidx), out, prefix,
			    err, errlen);
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
	return rows_select(db, table, pk, out, 0, err, errlen);
}

enum reason
rows_list(sqlite3 *db, const char *table, FILE *out, char *err,
    size_t errlen)
{
	return rows_select(db, table, NULL, out, 0, err, errlen);
}

static int
rows_strcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

enum reason
rows_dump(sqlite3 *db, char *const *tables, size_t ntables, FILE *out,
    char *err, size_t errlen)
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
		r = rows_select(db, sorted[i], NULL, out, 1, err, errlen);
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
	struct rows_col	*cols = NULL;
	sqlite3_stmt	*st = NULL;
	json_t		*row;
	char		*sql = NULL, err[256];
	const char	*key;
	int		 ncols, pkidx, rc, n = 0;
	enum reason	 r;

	*rows = NULL;
	*next = NULL;
	if ((r = rows_columns(db, table, &cols, &ncols, &pkidx, err,
	    sizeof(err))) != REASON_OK)
		goto done;
	sql = sqlite3_mprintf("SELECT * FROM \"%w\" WHERE ?1 IS NULL OR "
	    "\"%w\" > ?1 ORDER BY \"%w\" LIMIT ?2", table, cols[pkidx].name,
	    cols[pkidx].name);
	if (sql == NULL || (*rows = json_array()) == NULL) {
		r = REASON_NO_MEMORY;
		goto done;
	}
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK ||
	    (after != NULL && sqlite3_bind_text(st, 1, after, -1,
	    SQLITE_STATIC) != SQLITE_OK) ||
	    sqlite3_bind_int(st, 2, limit + 1) != SQLITE_OK) {
		r = rows_sqlite(db, err, sizeof(err));
		goto done;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == limit) {
			/* one more exists: the page ends at the row before */
			key = json_string_value(json_object_get(
			    json_array_get(*rows, n - 1), cols[pkidx].name));
			if (key != NULL && (*next = strdup(key)) == NULL)
				r = REASON_NO_MEMORY;
			break;
		}
		if ((row = rows_json_row(st, -1)) == NULL ||
		    json_array_append_new(*rows, row) == -1) {
			r = REASON_NO_MEMORY;
			break;
		}
		n++;
	}
	if (r == REASON_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = rows_sqlite(db, err, sizeof(err));
done:
	if (r != REASON_OK) {
		json_decref(*rows);
		*rows = NULL;
		free(*next);
		*next = NULL;
	}
	sqlite3_finalize(st);
	sqlite3_free(sql);
	free(cols);
	return r;
}
