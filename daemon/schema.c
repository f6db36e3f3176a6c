/*
 * schema.c: the synced tables as the store knows them: their columns,
 * primary keys, affinities and rowids, read from SQLite at open and
 * checked that they can be synced; running the schema file; and the
 * fingerprint of that layout that peers compare.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "log.h"
#include "store.h"

#include "store_private.h"

/* Names are checked by config; quoting is still done for safety. */
static int
schema_ident_ok(const char *name)
{
	if (name[0] == '\0')
		return 0;
	for (const char *p = name; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    *p == '_' || (p != name && *p >= '0' && *p <= '9')))
			return 0;
	return 1;
}

static void
schema_table_free(struct table *t)
{
	for (int i = 0; i < t->ncols; i++) {
		free(t->cols[i].name);
		free(t->cols[i].decl);
	}
	free(t->cols);
	free(t->name);
	free(t->pk);
	free(t->pk_decl);
	sqlite3_finalize(t->delete_row);
	sqlite3_finalize(t->find_row);
	sqlite3_finalize(t->insert_new);
	free(t->rowid);
	for (int i = 0; i < t->nupserts; i++)
		sqlite3_finalize(t->upserts[i].stmt);
}

/*
 * A table with rowids keeps its rows' clocks by rowid (labsync_rowid):
 * how SQL names the rowid (a column may take a name: SQLite has three),
 * and the statements that find it. One WITHOUT ROWID keeps them by key.
 */
static int
schema_table_rowid(struct store *s, struct table *t)
{
	static const char *const names[] = { "rowid", "_rowid_", "oid" };
	char	*sql, *cols, *vals;
	int64_t	 wr;
	int	 ret;

	sql = store_sql("SELECT wr FROM pragma_table_list WHERE "
	    "schema = 'main' AND name = %Q", t->name);
	wr = store_pragma_int(s, sql);
	sqlite3_free(sql);
	if (wr != 0)
		return wr == 1 ? 0 : -1;
	for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		int taken = strcasecmp(t->pk, names[k]) == 0;

		for (int i = 0; i < t->ncols && !taken; i++)
			taken = strcasecmp(t->cols[i].name, names[k]) == 0;
		if (!taken) {
			if ((t->rowid = strdup(names[k])) == NULL)
				return -1;
			break;
		}
	}
	if (t->rowid == NULL)
		return 0;	/* every name taken: by key, as without */
	sql = store_sql("SELECT %s FROM \"%w\" WHERE \"%w\" = ?",
	    t->rowid, t->name, t->pk);
	ret = store_prepare(s, &t->find_row, sql);
	sqlite3_free(sql);
	cols = store_sql("\"%w\"", t->pk);
	vals = store_sql("?1");
	for (int i = 0; i < t->ncols; i++) {
		cols = store_append(cols, ", \"%w\"", t->cols[i].name);
		vals = store_append(vals, ", ?%d", i + 2);
	}
	sql = store_sql("INSERT INTO \"%w\"(%s) VALUES (%s) "
	    "ON CONFLICT(\"%w\") DO NOTHING", t->name, cols, vals, t->pk);
	if (ret == 0)
		ret = store_prepare(s, &t->insert_new, sql);
	sqlite3_free(sql);
	sqlite3_free(cols);
	sqlite3_free(vals);
	return ret;
}

/* Is table.column in list (names ignore case, as in SQLite)? */
static int
schema_marked(char *const *list, size_t n, const char *table,
    const char *column)
{
	size_t	 tlen = strlen(table);

	for (size_t i = 0; i < n; i++)
		if (strncasecmp(list[i], table, tlen) == 0 &&
		    list[i][tlen] == '.' &&
		    strcasecmp(list[i] + tlen + 1, column) == 0)
			return 1;
	return 0;
}

static char **
schema_list_dup(char *const *list, size_t n)
{
	char	**copy;

	if ((copy = calloc(n + 1, sizeof(*copy))) == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if ((copy[i] = strdup(list[i])) == NULL) {
			for (size_t j = 0; j < i; j++)
				free(copy[j]);
			free(copy);
			return NULL;
		}
	return copy;
}

/* Free a list of schema_list_dup. */
static void
schema_list_free(char **list, size_t n)
{
	for (size_t i = 0; list != NULL && i < n; i++)
		free(list[i]);
	free(list);
}

/* 1 if LIST holds NAME (the config's spelling: exact). */
static int
schema_list_has(char *const *list, size_t n, const char *name)
{
	for (size_t i = 0; list != NULL && i < n; i++)
		if (strcmp(list[i], name) == 0)
			return 1;
	return 0;
}

int
schema_writable(const struct store *s, const char *table)
{
	return !s->partner || schema_list_has(s->writable, s->nwritable,
	    table);
}

int
schema_origin_may_write(const struct store *s, const char *origin,
    const char *table)
{
	for (size_t i = 0; i < s->npartners; i++)
		if (strcmp(s->partners[i].origin, origin) == 0)
			return schema_list_has(s->partners[i].tables,
			    s->partners[i].ntables, table);
	return 1;
}

/* Keep the store's local and pseudonymised columns and the key. */
int
schema_marks_set(struct store *s, const struct store_options *opt)
{
	if ((s->local_columns = schema_list_dup(opt->local_columns,
	    opt->nlocal_columns)) == NULL)
		return -1;
	s->nlocal_columns = opt->nlocal_columns;
	if ((s->pseudonymise = schema_list_dup(opt->pseudonymise,
	    opt->npseudonymise)) == NULL)
		return -1;
	s->npseudonymise = opt->npseudonymise;
	s->partner = opt->partner;
	if ((s->writable = schema_list_dup(opt->writable,
	    opt->nwritable)) == NULL)
		return -1;
	s->nwritable = opt->nwritable;
	if ((s->partners = calloc(opt->npartners + 1,
	    sizeof(*s->partners))) == NULL)
		return -1;
	for (size_t i = 0; i < opt->npartners; i++) {
		struct store_partner *sp = &s->partners[i];

		s->npartners = i + 1;
		if ((sp->origin = strdup(opt->partners[i].origin)) == NULL ||
		    (sp->tables = schema_list_dup(opt->partners[i].tables,
		    opt->partners[i].ntables)) == NULL)
			return -1;
		sp->ntables = opt->partners[i].ntables;
	}
	if (opt->pseudonym_key != NULL) {
		memcpy(s->pseudonym_key, opt->pseudonym_key,
		    sizeof(s->pseudonym_key));
		s->pseudonym_keyed = 1;
	}
	return 0;
}

void
schema_marks_free(struct store *s)
{
	for (size_t i = 0; s->local_columns != NULL &&
	    i < s->nlocal_columns; i++)
		free(s->local_columns[i]);
	for (size_t i = 0; s->pseudonymise != NULL &&
	    i < s->npseudonymise; i++)
		free(s->pseudonymise[i]);
	free(s->local_columns);
	free(s->pseudonymise);
	schema_list_free(s->writable, s->nwritable);
	for (size_t i = 0; s->partners != NULL && i < s->npartners; i++) {
		free(s->partners[i].origin);
		schema_list_free(s->partners[i].tables,
		    s->partners[i].ntables);
	}
	free(s->partners);
	sodium_memzero(s->pseudonym_key, sizeof(s->pseudonym_key));
}

/* Learn a synced table's layout and check it can be synced. */
static int
schema_table_load(struct store *s, struct table *t, const char *name,
    char *err, size_t errlen)
{
	sqlite3_stmt	*st = NULL;
	struct column	*cols, *c;
	char		*sql = NULL;
	int		 npk = 0, ret = -1, rc;

	if ((t->name = strdup(name)) == NULL)
		goto nomem;
	if (!schema_ident_ok(name)) {
		store_seterr(err, errlen, "table name '%s' is not valid", name);
		goto done;
	}
	if (sqlite3_prepare_v2(s->db,
	    "SELECT name, type, pk FROM pragma_table_info(?) ORDER BY cid",
	    -1, &st, NULL) != SQLITE_OK)
		goto sqlerr;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *cname = (const char *)sqlite3_column_text(st, 0);
		const char *decl = (const char *)sqlite3_column_text(st, 1);
		int pk = sqlite3_column_int(st, 2);

		if (decl == NULL)
			decl = "";
		if (!schema_ident_ok(cname)) {
			store_seterr(err, errlen, "table %s: column name '%s' "
			    "is not supported", name, cname);
			goto done;
		}
		if (pk != 0) {
			npk++;
			if (rules_affinity(decl) != AFF_TEXT) {
				store_seterr(err, errlen, "table %s: primary key "
				    "%s must be TEXT, not '%s'", name, cname,
				    decl);
				goto done;
			}
			free(t->pk);
			free(t->pk_decl);
			if ((t->pk = strdup(cname)) == NULL ||
			    (t->pk_decl = strdup(decl)) == NULL)
				goto nomem;
			continue;
		}
		if (t->ncols == STORE_MAX_COLUMNS) {
			store_seterr(err, errlen, "table %s: more than %d "
			    "columns", name, STORE_MAX_COLUMNS);
			goto done;
		}
		if ((cols = reallocarray(t->cols, t->ncols + 1,
		    sizeof(*t->cols))) == NULL)
			goto nomem;
		t->cols = cols;
		c = &t->cols[t->ncols++];
		c->name = strdup(cname);
		c->decl = strdup(decl);
		c->aff = rules_affinity(decl);
		if (c->name == NULL || c->decl == NULL)
			goto nomem;
		c->local = schema_marked(s->local_columns, s->nlocal_columns,
		    name, cname);
		c->pseudonymise = schema_marked(s->pseudonymise,
		    s->npseudonymise, name, cname);
	}
	if (rc != SQLITE_DONE)
		goto sqlerr;
	if (t->ncols == 0 && npk == 0) {
		store_seterr(err, errlen, "synced table %s does not exist", name);
		goto done;
	}
	if (npk != 1) {
		store_seterr(err, errlen, "synced table %s needs exactly one "
		    "TEXT primary key, it has %d", name, npk);
		goto done;
	}
	sql = store_sql("DELETE FROM \"%w\" WHERE \"%w\" = ?",
	    name, t->pk);
	if (store_prepare(s, &t->delete_row, sql) == -1)
		goto done;
	if (schema_table_rowid(s, t) == -1)
		goto sqlerr;
	ret = 0;
	goto done;
nomem:
	store_seterr(err, errlen, "out of memory");
	goto done;
sqlerr:
	store_seterr(err, errlen, "%s", sqlite3_errmsg(s->db));
done:
	sqlite3_free(sql);
	sqlite3_finalize(st);
	return ret;
}

/* A synced table by name; NULL if it is not synced. */
struct table *
schema_table_find(struct store *s, const char *name)
{
	for (size_t i = 0; i < s->ntables; i++)
		if (strcmp(s->tables[i].name, name) == 0)
			return &s->tables[i];
	return NULL;
}

/* hint: where the column probably is (changes list columns in table
   order, so the next one usually follows the last); -1 for none */
int
schema_column_find(const struct table *t, const char *name, int hint)
{
	if (hint >= 0 && hint < t->ncols &&
	    strcmp(t->cols[hint].name, name) == 0)
		return hint;
	for (int i = 0; i < t->ncols; i++)
		if (strcmp(t->cols[i].name, name) == 0)
			return i;
	return -1;
}

/* The whole schema file in a buffer (free it); NULL with err if not. */
static char *
schema_read_file(const char *path, char *err, size_t errlen)
{
	FILE	*f;
	char	*buf = NULL;
	long	 len;

	if ((f = fopen(path, "r")) == NULL) {
		store_seterr(err, errlen, "schema %s: %s", path,
		    strerror(errno));
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) == -1 || (len = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) == -1 ||
	    (buf = malloc(len + 1)) == NULL ||
	    fread(buf, 1, len, f) != (size_t)len) {
		store_seterr(err, errlen, "schema %s: cannot read", path);
		free(buf);
		buf = NULL;
	} else
		buf[len] = '\0';
	fclose(f);
	return buf;
}

/* Run the domain schema file (CREATE TABLE IF NOT EXISTS ...). */
int
schema_run_file(struct store *s, const char *path, char *err, size_t errlen)
{
	char	*buf, *msg = NULL;
	int	 ret = -1;

	if ((buf = schema_read_file(path, err, errlen)) == NULL)
		return -1;
	if (sqlite3_exec(s->db, buf, NULL, NULL, &msg) != SQLITE_OK) {
		store_seterr(err, errlen, "schema %s: %s", path, msg);
		goto done;
	}
	ret = 0;
done:
	sqlite3_free(msg);
	free(buf);
	return ret;
}

/* One column as pragma table_info has it. */
struct schema_col {
	char	*name;
	char	*type;
	char	*dflt;		/* SQL of its default, or NULL */
	int	 notnull;
	int	 pk;
};

static void
schema_cols_free(struct schema_col *c, int n)
{
	for (int i = 0; i < n; i++) {
		free(c[i].name);
		free(c[i].type);
		free(c[i].dflt);
	}
	free(c);
}

static char *
schema_dup_col(sqlite3_stmt *st, int i)
{
	const char *v = (const char *)sqlite3_column_text(st, i);

	return strdup(v != NULL ? v : "");
}

/* The columns of table name in db (none: it does not exist); -1 if the
   database fails or memory runs out. */
static int
schema_cols_read(sqlite3 *db, const char *name, struct schema_col **out,
    int *n)
{
	sqlite3_stmt	*st;
	struct schema_col *cols = NULL, *c;
	int		 rc, ncols = 0;

	*out = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(db, "SELECT name, type, \"notnull\", "
	    "dflt_value, pk FROM pragma_table_info(?) ORDER BY cid", -1, &st,
	    NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((c = reallocarray(cols, ncols + 1, sizeof(*cols))) ==
		    NULL)
			break;
		cols = c;
		c = &cols[ncols++];
		memset(c, 0, sizeof(*c));
		c->name = schema_dup_col(st, 0);
		c->type = schema_dup_col(st, 1);
		if (sqlite3_column_type(st, 3) != SQLITE_NULL)
			c->dflt = schema_dup_col(st, 3);
		c->notnull = sqlite3_column_int(st, 2);
		c->pk = sqlite3_column_int(st, 4);
		if (c->name == NULL || c->type == NULL ||
		    (sqlite3_column_type(st, 3) != SQLITE_NULL &&
		    c->dflt == NULL))
			break;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		schema_cols_free(cols, ncols);
		return -1;
	}
	*out = cols;
	*n = ncols;
	return 0;
}

static const struct schema_col *
schema_cols_find(const struct schema_col *c, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcasecmp(c[i].name, name) == 0)
			return &c[i];
	return NULL;
}

static int
schema_plan_add(struct schema_plan *p, char *sql, char *what)
{
	char	**a, **b;

	if (what == NULL ||
	    (a = reallocarray(p->sql, p->n + 1, sizeof(*a))) == NULL) {
		sqlite3_free(sql);
		sqlite3_free(what);
		return -1;
	}
	p->sql = a;
	if ((b = reallocarray(p->what, p->n + 1, sizeof(*b))) == NULL) {
		sqlite3_free(sql);
		sqlite3_free(what);
		return -1;
	}
	p->what = b;
	p->sql[p->n] = sql;
	p->what[p->n++] = what;
	return 0;
}

void
schema_plan_free(struct schema_plan *p)
{
	for (size_t i = 0; i < p->n; i++) {
		sqlite3_free(p->sql[i]);
		sqlite3_free(p->what[i]);
	}
	free(p->sql);
	free(p->what);
	sqlite3_free(p->seen);
	memset(p, 0, sizeof(*p));
}

/*
 * One table the file and the database both have: the file may add
 * columns, never take one away or change its declared type or the
 * primary key.
 */
static int
schema_plan_table(struct schema_plan *p, const char *path, const char *tbl,
    const struct schema_col *fc, int nf, const struct schema_col *dc,
    int nd, const char *before, char *err, size_t errlen)
{
	const struct schema_col *c;
	char	*sql, *key;
	int	 was;

	for (int i = 0; i < nf; i++)
		p->seen = store_append(p->seen, "%s.%s\n", tbl, fc[i].name);
	for (int i = 0; i < nd; i++) {
		if ((c = schema_cols_find(fc, nf, dc[i].name)) == NULL) {
			/* a column added by hand, never in the file, stays */
			key = store_sql("\n%s.%s\n", tbl, dc[i].name);
			was = before != NULL && strstr(before, key) != NULL;
			sqlite3_free(key);
			if (!was)
				continue;
			store_seterr(err, errlen, "schema %s: table %s, column "
			    "%s: in the database but not in the file; labsync "
			    "never drops a column (put it back)", path, tbl,
			    dc[i].name);
			return -1;
		}
		if (strcasecmp(c->type, dc[i].type) != 0) {
			store_seterr(err, errlen, "schema %s: table %s, column "
			    "%s: declared %s in the database, %s in the file; "
			    "labsync never changes a column's type", path, tbl,
			    dc[i].name, dc[i].type[0] ? dc[i].type : "(none)",
			    c->type[0] ? c->type : "(none)");
			return -1;
		}
		if ((c->pk != 0) != (dc[i].pk != 0)) {
			store_seterr(err, errlen, "schema %s: table %s, column "
			    "%s: %s the primary key in the file; labsync never "
			    "changes a table's primary key", path, tbl,
			    dc[i].name, c->pk ? "made" : "no longer");
			return -1;
		}
	}
	for (int i = 0; i < nf; i++) {
		if (schema_cols_find(dc, nd, fc[i].name) != NULL)
			continue;
		if (fc[i].pk) {
			store_seterr(err, errlen, "schema %s: table %s, column "
			    "%s: a new primary key column; labsync never "
			    "changes a table's primary key", path, tbl,
			    fc[i].name);
			return -1;
		}
		sql = store_sql("ALTER TABLE \"%w\" ADD COLUMN \"%w\" %s%s%s%s",
		    tbl, fc[i].name, fc[i].type,
		    fc[i].notnull ? " NOT NULL" : "",
		    fc[i].dflt != NULL ? " DEFAULT " : "",
		    fc[i].dflt != NULL ? fc[i].dflt : "");
		if (schema_plan_add(p, sql, store_sql("column %s.%s (%s)", tbl,
		    fc[i].name, fc[i].type[0] ? fc[i].type : "no type")) == -1)
			goto nomem;
	}
	return 0;
nomem:
	store_seterr(err, errlen, "out of memory");
	return -1;
}

/*
 * Compare the schema file with the database db: the file is run in a
 * database of its own in memory and both are read by pragma table_info
 * (no SQL parsed here). What the database lacks goes into p: a column
 * as its ALTER TABLE, a table with no SQL (running the file creates it).
 * Anything else, a column dropped or retyped, a primary key changed, is
 * refused: -1, err names the table and the column.
 */
int
schema_plan_file(sqlite3 *db, const char *path, struct schema_plan *p,
    char *err, size_t errlen)
{
	sqlite3		*mem = NULL;
	sqlite3_stmt	*st = NULL;
	struct schema_col *fc = NULL, *dc = NULL;
	char		*buf, *msg = NULL, *before = NULL;
	int		 nf = 0, nd = 0, rc, ret = -1;

	memset(p, 0, sizeof(*p));
	p->seen = store_sql("\n");
	if ((buf = schema_read_file(path, err, errlen)) == NULL)
		return -1;
	/* the columns of the file applied last (none: a new database, or
	   one of an older labsync) */
	if (sqlite3_prepare_v2(db, "SELECT value FROM labsync_meta WHERE "
	    "key = 'schema_columns'", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) !=
	    NULL && (before = strdup((const char *)sqlite3_column_text(st,
	    0))) == NULL)
		goto nomem;
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_open_v2(":memory:", &mem, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
		goto nomem;
	if (sqlite3_exec(mem, buf, NULL, NULL, &msg) != SQLITE_OK) {
		store_seterr(err, errlen, "schema %s: %s", path,
		    msg != NULL ? msg : sqlite3_errmsg(mem));
		goto done;
	}
	if (sqlite3_prepare_v2(mem, "SELECT name FROM sqlite_schema WHERE "
	    "type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
	    "ORDER BY rowid", -1, &st, NULL) != SQLITE_OK)
		goto sqlerr;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *tbl = (const char *)sqlite3_column_text(st, 0);

		if (schema_cols_read(mem, tbl, &fc, &nf) == -1 ||
		    schema_cols_read(db, tbl, &dc, &nd) == -1) {
			store_seterr(err, errlen, "schema %s: table %s: %s",
			    path, tbl, sqlite3_errmsg(db));
			goto done;
		}
		if (nd == 0) {
			for (int i = 0; i < nf; i++)
				p->seen = store_append(p->seen, "%s.%s\n",
				    tbl, fc[i].name);
			if (schema_plan_add(p, NULL, store_sql("table %s", tbl))
			    == -1)
				goto nomem;
		} else if (schema_plan_table(p, path, tbl, fc, nf, dc, nd,
		    before, err, errlen) == -1)
			goto done;
		schema_cols_free(fc, nf);
		schema_cols_free(dc, nd);
		fc = dc = NULL;
		nf = nd = 0;
	}
	if (rc != SQLITE_DONE)
		goto sqlerr;
	ret = 0;
	goto done;
nomem:
	store_seterr(err, errlen, "schema %s: out of memory", path);
	goto done;
sqlerr:
	store_seterr(err, errlen, "schema %s: %s", path, sqlite3_errmsg(mem));
done:
	schema_cols_free(fc, nf);
	schema_cols_free(dc, nd);
	sqlite3_finalize(st);
	sqlite3_free(msg);
	sqlite3_close(mem);
	free(buf);
	free(before);
	if (ret == -1)
		schema_plan_free(p);
	return ret;
}

/*
 * Carry out a plan inside the caller's transaction: the columns added
 * (ALTER TABLE only appends, so the columns a table had keep their
 * places, and their clocks), then the file run (new tables, indexes).
 */
int
schema_plan_run(struct store *s, const struct schema_plan *p,
    const char *path, char *err, size_t errlen)
{
	char	*msg = NULL, *sql;
	int	 rc;

	sql = store_sql("INSERT INTO labsync_meta(key, value) VALUES "
	    "('schema_columns', %Q) ON CONFLICT(key) DO UPDATE SET "
	    "value = excluded.value", p->seen != NULL ? p->seen : "\n");
	rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
	sqlite3_free(sql);
	if (rc != SQLITE_OK) {
		store_seterr(err, errlen, "schema %s: %s", path, msg);
		sqlite3_free(msg);
		return -1;
	}
	for (size_t i = 0; i < p->n; i++) {
		if (p->sql[i] == NULL)
			continue;
		if (sqlite3_exec(s->db, p->sql[i], NULL, NULL, &msg) !=
		    SQLITE_OK) {
			store_seterr(err, errlen, "schema %s: adding %s: %s",
			    path, p->what[i], msg != NULL ? msg :
			    sqlite3_errmsg(s->db));
			sqlite3_free(msg);
			return -1;
		}
	}
	return schema_run_file(s, path, err, errlen);
}

/*
 * labsyncd -n: compare the schema file with the database at dbpath, if
 * there is one, opened read-only; what a start or reload would add goes
 * to out. -1: refused, err says why.
 */
int
schema_check_file(const char *dbpath, const char *path, FILE *out,
    char *err, size_t errlen)
{
	struct schema_plan p;
	sqlite3	*db = NULL;
	int	 ret = -1;

	if (access(dbpath, F_OK) == -1)
		return 0;	/* a new database gets the file as it is */
	if (sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK) {
		store_seterr(err, errlen, "database %s: %s", dbpath,
		    db != NULL ? sqlite3_errmsg(db) : "out of memory");
		goto done;
	}
	sqlite3_busy_timeout(db, 5000);
	if (schema_plan_file(db, path, &p, err, errlen) == -1)
		goto done;
	for (size_t i = 0; i < p.n; i++)
		fprintf(out, "schema %s: would add %s\n", path, p.what[i]);
	schema_plan_free(&p);
	ret = 0;
done:
	sqlite3_close(db);
	return ret;
}

/* The pk of column (a "table.column") in db's schema sch: -1 none. */
static int
schema_column_pk(sqlite3 *db, const char *sch, const char *col)
{
	sqlite3_stmt	*st;
	size_t		 tlen = strcspn(col, ".");
	int		 pk = -1;

	if (col[tlen] == '\0' || sqlite3_prepare_v2(db, "SELECT pk FROM"
	    " pragma_table_info(?1, ?2) WHERE name = ?3 COLLATE NOCASE",
	    -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, col, (int)tlen, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, sch, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, col + tlen + 1, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		pk = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return pk;
}

int
schema_check_columns(const char *dbpath, const char *schema_path,
    char *const *cols, size_t n, int *kind, char *err, size_t errlen)
{
	sqlite3		*db = NULL;
	sqlite3_stmt	*st = NULL;
	char		*buf = NULL, *msg = NULL;
	int		 ret = -1, attached = 0, pk;

	if (n == 0)
		return 0;
	if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE, NULL) !=
	    SQLITE_OK) {
		store_seterr(err, errlen, "out of memory");
		goto done;
	}
	/* the file's tables in main, the database's (if any) as db */
	if ((buf = schema_read_file(schema_path, err, errlen)) == NULL)
		goto done;
	if (sqlite3_exec(db, buf, NULL, NULL, &msg) != SQLITE_OK) {
		store_seterr(err, errlen, "schema %s: %s", schema_path,
		    msg != NULL ? msg : "cannot run");
		goto done;
	}
	if (access(dbpath, F_OK) == 0) {
		sqlite3_busy_timeout(db, 5000);
		if (sqlite3_prepare_v2(db, "ATTACH DATABASE ? AS db", -1, &st,
		    NULL) != SQLITE_OK)
			goto sqlerr;
		sqlite3_bind_text(st, 1, dbpath, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto sqlerr;
		attached = 1;
	}
	for (size_t i = 0; i < n; i++) {
		if ((pk = schema_column_pk(db, "main", cols[i])) == -1 &&
		    attached)
			pk = schema_column_pk(db, "db", cols[i]);
		kind[i] = pk == -1 ? SCHEMA_COLUMN_NONE : pk != 0 ?
		    SCHEMA_COLUMN_PK : SCHEMA_COLUMN_OK;
	}
	ret = 0;
	goto done;
sqlerr:
	store_seterr(err, errlen, "database %s: %s", dbpath,
	    sqlite3_errmsg(db));
done:
	sqlite3_finalize(st);
	sqlite3_free(msg);
	free(buf);
	sqlite3_close(db);
	return ret;
}

/* The most non-key columns a synced table has. */
int
schema_widest(const struct store *s)
{
	int	 ncols = 0;

	for (size_t i = 0; i < s->ntables; i++)
		if (s->tables[i].ncols > ncols)
			ncols = s->tables[i].ncols;
	return ncols;
}

static int
schema_strcmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * SHA-256 of the synced tables' names and their columns' names, each
 * sorted by name: two nodes that replicate the same columns have the
 * same fingerprint, however they got them (a column added by ALTER TABLE
 * comes last, one in a new file's CREATE TABLE anywhere).
 */
void
schema_fingerprint(struct store *s, uint8_t out[32])
{
	crypto_hash_sha256_state h;
	const char	**tn, *cn[STORE_MAX_COLUMNS + 1];

	crypto_hash_sha256_init(&h);
	if ((tn = calloc(s->ntables + 1, sizeof(*tn))) == NULL)
		fatal("%s", __func__);
	for (size_t i = 0; i < s->ntables; i++)
		tn[i] = s->tables[i].name;
	qsort(tn, s->ntables, sizeof(*tn), schema_strcmp);
	for (size_t i = 0; i < s->ntables; i++) {
		struct table *t = schema_table_find(s, tn[i]);

		crypto_hash_sha256_update(&h, (const uint8_t *)t->name,
		    strlen(t->name) + 1);
		for (int j = 0; j < t->ncols; j++)
			cn[j] = t->cols[j].name;
		qsort(cn, t->ncols, sizeof(*cn), schema_strcmp);
		for (int j = 0; j < t->ncols; j++)
			crypto_hash_sha256_update(&h, (const uint8_t *)cn[j],
			    strlen(cn[j]) + 1);
	}
	free(tn);
	crypto_hash_sha256_final(&h, out);
}

/* Each synced column as the layout has it, the key first. */
void
schema_columns(struct store *s, schema_column_fn fn, void *arg)
{
	for (size_t i = 0; i < s->ntables; i++) {
		struct table *t = &s->tables[i];

		fn(arg, t->name, t->pk, t->pk_decl, 1);
		for (int j = 0; j < t->ncols; j++)
			fn(arg, t->name, t->cols[j].name, t->cols[j].decl, 0);
	}
}

/* Load the layout of the synced tables named; err says why not. */
int
schema_load(struct store *s, char *const *names, size_t n, char *err,
    size_t errlen)
{
	if (n > 0 && (s->tables = calloc(n, sizeof(*s->tables))) == NULL) {
		store_seterr(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		s->ntables++;
		if (schema_table_load(s, &s->tables[i], names[i], err,
		    errlen) == -1)
			return -1;
	}
	return 0;
}

/* Forget a layout: n tables (schema_free, a layout replaced). */
void
schema_tables_free(struct table *tables, size_t n)
{
	for (size_t i = 0; i < n; i++)
		schema_table_free(&tables[i]);
	free(tables);
}

/* Forget the synced tables' layout (store_free). */
void
schema_free(struct store *s)
{
	schema_tables_free(s->tables, s->ntables);
	s->tables = NULL;
	s->ntables = 0;
}

/* NULL clocks of table name's rows as text of its first n columns. */
int
schema_clocks_spell(struct store *s, const char *name, int n)
{
	char	*sql;
	int	 ret;

	sql = store_sql("UPDATE labsync_rowid SET clocks ="
	    " replace(hex(zeroblob(%d)), '00', printf('%%016x%%08x', r_hlc,"
	    " r_origin)) WHERE tbl = %Q AND clocks IS NULL;"
	    " UPDATE labsync_row SET clocks ="
	    " replace(hex(zeroblob(%d)), '00', printf('%%016x%%08x', r_hlc,"
	    " r_origin)) WHERE tbl = %Q AND clocks IS NULL;",
	    n, name, n, name);
	ret = store_exec(s, sql);
	sqlite3_free(sql);
	return ret;
}

/*
 * Read the synced tables' layout again: a table an operator rebuilt
 * (another column type) or altered (a column added) by hand. This is
 * store_schema_check without waiting for the schema cookie to move, and
 * the rows' clocks then follow rows that got other rowids (a rebuilt
 * table). On failure the old layout stays.
 */
int
store_reload_layout(struct store *s, char *err, size_t errlen)
{
	char	**names;
	int	  ret;

	if ((names = calloc(s->ntables + 1, sizeof(*names))) == NULL) {
		store_seterr(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < s->ntables; i++)
		names[i] = s->tables[i].name;
	ret = store_schema_reload(s, NULL, names, s->ntables, err, errlen);
	free(names);
	if (ret == -1)
		return -1;
	if (merge_rows_check(s) == -1) {
		store_seterr(err, errlen, "%s", sqlite3_errmsg(s->db));
		return -1;
	}
	log_info("layout of the synced tables read again");
	return 0;
}
