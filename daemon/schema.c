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
			if ((t->pk = strdup(cname)) == NULL)
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

/* Run the domain schema file (CREATE TABLE IF NOT EXISTS ...). */
int
schema_run_file(struct store *s, const char *path, char *err, size_t errlen)
{
	FILE	*f;
	char	*buf = NULL, *msg = NULL;
	long	 len;
	int	 ret = -1;

	if ((f = fopen(path, "r")) == NULL) {
		store_seterr(err, errlen, "schema %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (fseek(f, 0, SEEK_END) == -1 || (len = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) == -1 ||
	    (buf = malloc(len + 1)) == NULL ||
	    fread(buf, 1, len, f) != (size_t)len) {
		store_seterr(err, errlen, "schema %s: cannot read", path);
		goto done;
	}
	buf[len] = '\0';
	if (sqlite3_exec(s->db, buf, NULL, NULL, &msg) != SQLITE_OK) {
		store_seterr(err, errlen, "schema %s: %s", path, msg);
		goto done;
	}
	ret = 0;
done:
	sqlite3_free(msg);
	free(buf);
	fclose(f);
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

/* SHA-256 of the synced tables' names and columns, in order. */
void
schema_fingerprint(struct store *s, uint8_t out[32])
{
	crypto_hash_sha256_state h;

	crypto_hash_sha256_init(&h);
	for (size_t i = 0; i < s->ntables; i++) {
		struct table *t = &s->tables[i];

		crypto_hash_sha256_update(&h, (const uint8_t *)t->name,
		    strlen(t->name) + 1);
		for (int j = 0; j < t->ncols; j++)
			crypto_hash_sha256_update(&h,
			    (const uint8_t *)t->cols[j].name,
			    strlen(t->cols[j].name) + 1);
	}
	crypto_hash_sha256_final(&h, out);
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

/* Forget the synced tables' layout (store_free). */
void
schema_free(struct store *s)
{
	for (size_t i = 0; i < s->ntables; i++)
		schema_table_free(&s->tables[i]);
	free(s->tables);
	s->tables = NULL;
	s->ntables = 0;
}
