/*
 * rows.c: typed row access for labsyncctl. Writes are plain SQL, so the
 * capture triggers see them like any other writer's; values are converted
 * to the column's declared type (participants=23 is an integer), and
 * table and column names are checked against the database before they
 * are quoted into SQL.
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

struct rows_col {
	char	 name[128];
	char	 type;		/* i integer, r real, t text, b blob, n numeric */
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

static char
rows_affinity(const char *decl)
{
	if (strcasestr(decl, "INT") != NULL)
		return 'i';
	if (strcasestr(decl, "CHAR") || strcasestr(decl, "CLOB") ||
	    strcasestr(decl, "TEXT"))
		return 't';
	if (strcasestr(decl, "BLOB") || decl[0] == '\0')
		return 'b';
	if (strcasestr(decl, "REAL") || strcasestr(decl, "FLOA") ||
	    strcasestr(decl, "DOUB"))
		return 'r';
	return 'n';
}

/* The table's columns; -1 if it does not exist. */
static int
rows_columns(sqlite3 *db, const char *table, struct rows_col **out,
    int *pkidx)
{
	sqlite3_stmt	*st;
	struct rows_col	*cols = NULL;
	int		 n = 0;

	*pkidx = -1;
	if (sqlite3_prepare_v2(db, "SELECT name, type, pk FROM "
	    "pragma_table_info(?) ORDER BY cid", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *decl = (const char *)sqlite3_column_text(st, 1);
		struct rows_col *more = reallocarray(cols, n + 1,
		    sizeof(*cols));

		if (more == NULL) {
			free(cols);
			sqlite3_finalize(st);
			return -1;
		}
		cols = more;
		snprintf(cols[n].name, sizeof(cols[n].name), "%s",
		    sqlite3_column_text(st, 0));
		cols[n].type = rows_affinity(decl != NULL ? decl : "");
		cols[n].pk = sqlite3_column_int(st, 2) != 0;
		if (cols[n].pk)
			*pkidx = n;
		n++;
	}
	sqlite3_finalize(st);
	if (n == 0) {
		free(cols);
		return -1;
	}
	*out = cols;
	return n;
}

/* Bind a command-line value with the column's type; \N is NULL. */
static int
rows_bind(sqlite3_stmt *st, int idx, const struct rows_col *c,
    const char *v, char *err, size_t errlen)
{
	char		*end;
	long long	 i;
	double		 d;

	if (strcmp(v, "\\N") == 0)
		return sqlite3_bind_null(st, idx) == SQLITE_OK ? 0 : -1;
	switch (c->type) {
	case 'i':
	case 'n':
		errno = 0;
		i = strtoll(v, &end, 10);
		if (errno == 0 && *v != '\0' && *end == '\0') {
			sqlite3_bind_int64(st, idx, i);
			return 0;
		}
		if (c->type == 'i') {
			rows_err(err, errlen, "%s: '%s' is not an integer",
			    c->name, v);
			return -1;
		}
		/* FALLTHROUGH */
	case 'r':
		errno = 0;
		d = strtod(v, &end);
		if (errno != 0 || *v == '\0' || *end != '\0') {
			rows_err(err, errlen, "%s: '%s' is not a number",
			    c->name, v);
			return -1;
		}
		sqlite3_bind_double(st, idx, d);
		return 0;
	default:
		sqlite3_bind_text(st, idx, v, -1, SQLITE_TRANSIENT);
		return 0;
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
static sqlite3_stmt *
rows_upsert_prepare(sqlite3 *db, const char *table, const char *pkname,
    const char *pk, const struct rows_col *const *set, int n, char *err,
    size_t errlen)
{
	sqlite3_stmt	*st = NULL;
	char		*names, *qs, *upd, *sql, *tmp;

	names = sqlite3_mprintf("\"%w\"", pkname);
	qs = sqlite3_mprintf("?1");
	upd = sqlite3_mprintf("");
	for (int i = 0; i < n; i++) {
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
	if (n == 0)
		sql = sqlite3_mprintf("INSERT INTO \"%w\"(%s) VALUES (%s) "
		    "ON CONFLICT DO NOTHING", table, names, qs);
	else
		sql = sqlite3_mprintf("INSERT INTO \"%w\"(%s) VALUES (%s) "
		    "ON CONFLICT(\"%w\") DO UPDATE SET %s", table, names, qs,
		    pkname, upd);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		rows_err(err, errlen, "%s", sqlite3_errmsg(db));
		st = NULL;
	} else
		sqlite3_bind_text(st, 1, pk, -1, SQLITE_TRANSIENT);
	sqlite3_free(sql);
	sqlite3_free(names);
	sqlite3_free(qs);
	sqlite3_free(upd);
	return st;
}

int
rows_put(sqlite3 *db, const char *table, const char *pk, char *const *assign,
    int nassign, char *err, size_t errlen)
{
	struct rows_col		*cols = NULL;
	const struct rows_col	**set = NULL;
	sqlite3_stmt		*st = NULL;
	int			 n, pkidx, ret = 2;

	if ((n = rows_columns(db, table, &cols, &pkidx)) == -1 || pkidx < 0) {
		rows_err(err, errlen, "no table %s with a primary key", table);
		goto done;
	}
	set = calloc(nassign + 1, sizeof(*set));
	for (int i = 0; i < nassign; i++) {
		const char *eq = strchr(assign[i], '=');

		if (eq == NULL) {
			rows_err(err, errlen, "'%s' is not col=value",
			    assign[i]);
			goto done;
		}
		set[i] = rows_col_find(cols, n, assign[i], eq - assign[i]);
		if (set[i] == NULL || set[i]->pk) {
			rows_err(err, errlen, "table %s has no column '%.*s'",
			    table, (int)(eq - assign[i]), assign[i]);
			goto done;
		}
		for (int j = 0; j < i; j++)
			if (set[j] == set[i]) {
				rows_err(err, errlen, "column %s given twice",
				    set[i]->name);
				goto done;
			}
	}
	if ((st = rows_upsert_prepare(db, table, cols[pkidx].name, pk, set,
	    nassign, err, errlen)) == NULL) {
		ret = -1;
		goto done;
	}
	for (int i = 0; i < nassign; i++)
		if (rows_bind(st, i + 2, set[i], strchr(assign[i], '=') + 1,
		    err, errlen) == -1)
			goto done;
	if (sqlite3_step(st) != SQLITE_DONE) {
		rows_err(err, errlen, "%s", sqlite3_errmsg(db));
		ret = -1;
		goto done;
	}
	ret = 0;
done:
	sqlite3_finalize(st);
	free(set);
	free(cols);
	return ret;
}

int
rows_delete(sqlite3 *db, const char *table, const char *pk, char *err,
    size_t errlen)
{
	struct rows_col	*cols = NULL;
	sqlite3_stmt	*st = NULL;
	char		*sql = NULL;
	int		 pkidx, ret = -1;

	if (rows_columns(db, table, &cols, &pkidx) == -1 || pkidx < 0) {
		rows_err(err, errlen, "no table %s with a primary key", table);
		goto done;
	}
	sql = sqlite3_mprintf("DELETE FROM \"%w\" WHERE \"%w\" = ?", table,
	    cols[pkidx].name);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		rows_err(err, errlen, "%s", sqlite3_errmsg(db));
		goto done;
	}
	sqlite3_bind_text(st, 1, pk, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rows_err(err, errlen, "%s", sqlite3_errmsg(db));
		goto done;
	}
	if (sqlite3_changes(db) == 0) {
		rows_err(err, errlen, "%s %s: no such row", table, pk);
		ret = 1;
		goto done;
	}
	ret = 0;
done:
	sqlite3_finalize(st);
	sqlite3_free(sql);
	free(cols);
	return ret;
}

/* A column value as JSON; blobs as {"base64": "..."}. */
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
		enc = malloc(elen);
		sodium_bin2base64(enc, elen, b, n,
		    sodium_base64_VARIANT_ORIGINAL);
		o = json_pack("{s:s}", "base64", enc);
		free(enc);
		return o;
	default:
		return json_null();
	}
}

static json_t *
rows_json_row(sqlite3_stmt *st, int skip)
{
	json_t	*o = json_object();

	for (int i = 0; i < sqlite3_column_count(st); i++)
		if (i != skip)
			json_object_set_new(o, sqlite3_column_name(st, i),
			    rows_json_value(st, i));
	return o;
}

static int
rows_print(json_t *o, FILE *out, const char *prefix)
{
	char	*s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	int	 ret = 0;

	if (s == NULL || fprintf(out, "%s%s\n", prefix, s) < 0)
		ret = -1;
	free(s);
	json_decref(o);
	return ret;
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

/* Walk rows of a table in key order; pk NULL means all rows. */
static int
rows_select(sqlite3 *db, const char *table, const char *pk, FILE *out,
    int dump, char *err, size_t errlen)
{
	struct rows_col	*cols = NULL;
	sqlite3_stmt	*st = NULL;
	char		*sql = NULL, *prefix;
	int		 pkidx, rc, found = 0, ret = -1;

	if (rows_columns(db, table, &cols, &pkidx) == -1 || pkidx < 0) {
		rows_err(err, errlen, "no table %s with a primary key", table);
		goto done;
	}
	if (pk != NULL)
		sql = sqlite3_mprintf("SELECT * FROM \"%w\" WHERE \"%w\" = ?",
		    table, cols[pkidx].name);
	else
		sql = sqlite3_mprintf("SELECT * FROM \"%w\" ORDER BY \"%w\"",
		    table, cols[pkidx].name);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		rows_err(err, errlen, "%s", sqlite3_errmsg(db));
		goto done;
	}
	if (pk != NULL)
		sqlite3_bind_text(st, 1, pk, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		found = 1;
		if (dump) {
			prefix = rows_dump_prefix(table,
			    sqlite3_column_text(st, pkidx));
			rc = prefix == NULL ? -1 :
			    rows_print(rows_json_row(st, pkidx), out, prefix);
			sqlite3_free(prefix);
		} else
			rc = rows_print(rows_json_row(st, -1), out, "");
		if (rc == -1) {
			rows_err(err, errlen, "write: %s", strerror(errno));
			goto done;
		}
	}
	if (rc != SQLITE_DONE) {
		rows_err(err, errlen, "%s", sqlite3_errmsg(db));
		goto done;
	}
	if (pk != NULL && !found) {
		rows_err(err, errlen, "%s %s: no such row", table, pk);
		ret = 1;
		goto done;
	}
	ret = 0;
done:
	sqlite3_finalize(st);
	sqlite3_free(sql);
	free(cols);
	return ret;
}

int
rows_get(sqlite3 *db, const char *table, const char *pk, FILE *out,
    char *err, size_t errlen)
{
	return rows_select(db, table, pk, out, 0, err, errlen);
}

int
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

int
rows_dump(sqlite3 *db, char *const *tables, size_t ntables, FILE *out,
    char *err, size_t errlen)
{
	char	**sorted;
	int	  ret = 0;

	if ((sorted = calloc(ntables + 1, sizeof(*sorted))) == NULL)
		return -1;
	memcpy(sorted, tables, ntables * sizeof(*sorted));
	qsort(sorted, ntables, sizeof(*sorted), rows_strcmp);
	/* one read transaction: a consistent snapshot of every table */
	sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	for (size_t i = 0; i < ntables && ret == 0; i++)
		ret = rows_select(db, sorted[i], NULL, out, 1, err, errlen);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	free(sorted);
	return ret;
}

/* Bind a JSON value if it fits the column's type; -1 if it does not. */
static int
rows_bind_json(sqlite3_stmt *st, int idx, const struct rows_col *c,
    json_t *v, char *err, size_t errlen)
{
	switch (json_typeof(v)) {
	case JSON_NULL:
		sqlite3_bind_null(st, idx);
		return 0;
	case JSON_INTEGER:
		if (c->type == 't')
			break;
		sqlite3_bind_int64(st, idx, json_integer_value(v));
		return 0;
	case JSON_REAL:
		if (c->type == 't' || c->type == 'i')
			break;
		sqlite3_bind_double(st, idx, json_real_value(v));
		return 0;
	case JSON_STRING:
		if (c->type != 't' && c->type != 'b')
			break;
		sqlite3_bind_text(st, idx, json_string_value(v),
		    (int)json_string_length(v), SQLITE_TRANSIENT);
		return 0;
	default:
		break;
	}
	rows_err(err, errlen, "column %s: a %s does not fit its type", c->name,
	    json_is_string(v) ? "string" : json_is_integer(v) ? "integer" :
	    json_is_real(v) ? "number" : json_is_boolean(v) ? "boolean" :
	    "structured value");
	return -1;
}

int
rows_put_json(sqlite3 *db, const char *table, const char *pk, json_t *obj,
    char *err, size_t errlen)
{
	struct rows_col		*cols = NULL;
	const struct rows_col	**set = NULL;
	json_t			**vals = NULL, *v;
	sqlite3_stmt		*st = NULL;
	const char		*key;
	int			 n, pkidx, nset = 0, ret = 2;

	if (!json_is_object(obj)) {
		rows_err(err, errlen, "the body must be a JSON object of "
		    "columns");
		return 2;
	}
	if ((n = rows_columns(db, table, &cols, &pkidx)) == -1 || pkidx < 0) {
		rows_err(err, errlen, "no table %s with a primary key", table);
		return 2;
	}
	set = calloc(json_object_size(obj) + 1, sizeof(*set));
	vals = calloc(json_object_size(obj) + 1, sizeof(*vals));
	json_object_foreach(obj, key, v) {
		const struct rows_col *c = rows_col_find(cols, n, key,
		    strlen(key));

		if (c == NULL || c->pk) {
			rows_err(err, errlen, "table %s has no column '%s'%s",
			    table, key, c != NULL ? " to set (the key is in "
			    "the path)" : "");
			goto done;
		}
		set[nset] = c;
		vals[nset++] = v;
	}
	if ((st = rows_upsert_prepare(db, table, cols[pkidx].name, pk, set,
	    nset, err, errlen)) == NULL) {
		ret = -1;
		goto done;
	}
	for (int i = 0; i < nset; i++)
		if (rows_bind_json(st, i + 2, set[i], vals[i], err,
		    errlen) == -1)
			goto done;
	if (sqlite3_step(st) != SQLITE_DONE) {
		rows_err(err, errlen, "%s", sqlite3_errmsg(db));
		/* a value SQLite itself refuses (STRICT) is the caller's */
		ret = sqlite3_errcode(db) == SQLITE_CONSTRAINT &&
		    strstr(err, "labsync:") == NULL ? 2 : -1;
		goto done;
	}
	ret = 0;
done:
	sqlite3_finalize(st);
	free(set);
	free(vals);
	free(cols);
	return ret;
}

int
rows_get_json(sqlite3 *db, const char *table, const char *pk, json_t **out)
{
	struct rows_col	*cols = NULL;
	sqlite3_stmt	*st = NULL;
	char		*sql;
	int		 pkidx, rc, ret = -1;

	*out = NULL;
	if (rows_columns(db, table, &cols, &pkidx) == -1 || pkidx < 0)
		return -1;
	sql = sqlite3_mprintf("SELECT * FROM \"%w\" WHERE \"%w\" = ?", table,
	    cols[pkidx].name);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, pk, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*out = rows_json_row(st, -1);
			ret = 0;
		} else if (rc == SQLITE_DONE)
			ret = 1;
	}
	sqlite3_finalize(st);
	sqlite3_free(sql);
	free(cols);
	return ret;
}

int
rows_page_json(sqlite3 *db, const char *table, const char *after, int limit,
    json_t **rows, char **next)
{
	struct rows_col	*cols = NULL;
	sqlite3_stmt	*st = NULL;
	char		*sql;
	int		 pkidx, rc, n = 0, ret = -1;

	*rows = NULL;
	*next = NULL;
	if (rows_columns(db, table, &cols, &pkidx) == -1 || pkidx < 0)
		return -1;
	sql = sqlite3_mprintf("SELECT * FROM \"%w\" WHERE ?1 IS NULL OR "
	    "\"%w\" > ?1 ORDER BY \"%w\" LIMIT ?2", table, cols[pkidx].name,
	    cols[pkidx].name);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		goto done;
	if (after != NULL)
		sqlite3_bind_text(st, 1, after, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, limit + 1);
	*rows = json_array();
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == limit) {
			/* one more exists: the page ends at the row before */
			json_t *last = json_array_get(*rows, n - 1);

			*next = strdup(json_string_value(json_object_get(last,
			    cols[pkidx].name)));
			break;
		}
		json_array_append_new(*rows, rows_json_row(st, -1));
		n++;
	}
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		ret = 0;
done:
	if (ret == -1) {
		json_decref(*rows);
		*rows = NULL;
	}
	sqlite3_finalize(st);
	sqlite3_free(sql);
	free(cols);
	return ret;
}
