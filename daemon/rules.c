/*
 * rules.c: the limits on a change's content (see rules.h), each defined
 * once, in a table: its C test, its SQL condition for the capture
 * triggers and its words. merge_validate checks received changes with
 * rules_check_key and rules_check_wire; rows.c checks labsyncctl's and
 * the HTTP API's writes with rules_check_key and rules_check_value
 * before it writes; capture.c puts rules_key_sql and rules_value_sql into
 * the triggers, so that a write by any other program breaking a rule
 * fails in its own transaction, with the same words.
 *
 * SQL conditions: '$' stands for the value's expression and '#' for the
 * rule's limit. They must stay cheap: they run on every captured write.
 * A key's UTF-8 is not checked (SQLite has no cheap test for it, and
 * neither side checks it).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "rules.h"
#include "store.h"

/* --- the rules ---------------------------------------------------------- */

static int
rules_key_empty(const char *p, size_t n)
{
	(void)p;
	return n == 0;
}

static int
rules_key_long(const char *p, size_t n)
{
	(void)p;
	return n > STORE_MAX_PK;
}

static int
rules_key_nul(const char *p, size_t n)
{
	return memchr(p, '\0', n) != NULL;
}

/* tab and newline among them: dump's format is one line per row */
static int
rules_key_control(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] == 0x7f)
			return 1;
	return 0;
}

/* The key rules, in the order they are checked. words: a format of the
   table, the column and the limit. */
static const struct rules_key_rule {
	int		(*broken)(const char *, size_t);
	const char	*sql;
	const char	*words;
	int		 limit;
} rules_keys[] = {
	{ rules_key_empty, "typeof($) <> 'text' OR $ = ''",
	    "primary key %s.%s must be non-empty text", 0 },
	{ rules_key_long, "length(CAST($ AS BLOB)) > #",
	    "primary key %s.%s is above the limit of %d bytes", STORE_MAX_PK },
	{ rules_key_nul, "instr(CAST($ AS BLOB), x'00') > 0",
	    "primary key %s.%s has a NUL byte", 0 },
	{ rules_key_control,
	    "$ GLOB '*[' || char(1) || '-' || char(31, 127) || ']*'",
	    "primary key %s.%s has a control character (tab, newline, ...)",
	    0 },
};

/* The value rules, in the order they are checked; the type's condition
   is written from rules_type_fits. */
#define RULES_TYPE_WORDS	"wrong type for %s.%s (%s)"
#define RULES_SIZE_SQL		"length(CAST($ AS BLOB)) > #"
#define RULES_SIZE_WORDS	"value of %s.%s is above the limit of %d bytes"
#define RULES_NUL_SQL \
	"typeof($) = 'text' AND instr(CAST($ AS BLOB), x'00') > 0"
#define RULES_NUL_WORDS \
	"text of %s.%s has a NUL byte (store it as a blob)"

static const char *const rules_kind_sql[] = {
	[RULES_NULL] = "null", [RULES_INTEGER] = "integer",
	[RULES_REAL] = "real", [RULES_TEXT] = "text", [RULES_BLOB] = "blob",
};

int
rules_type_fits(enum affinity a, enum rules_kind k)
{
	switch (k) {
	case RULES_NULL:
		return 1;
	case RULES_INTEGER:
		return a != AFF_TEXT;
	case RULES_REAL:
		return a == AFF_REAL || a == AFF_NUMERIC || a == AFF_BLOB;
	case RULES_TEXT:
		return a == AFF_TEXT || a == AFF_BLOB;
	case RULES_BLOB:
		return a == AFF_BLOB;
	}
	return 0;
}

enum affinity
rules_affinity(const char *decl)
{
	char	 up[128];
	size_t	 i;

	for (i = 0; decl[i] != '\0' && i < sizeof(up) - 1; i++)
		up[i] = (decl[i] >= 'a' && decl[i] <= 'z') ?
		    decl[i] - 32 : decl[i];
	up[i] = '\0';
	if (strstr(up, "INT") != NULL)
		return AFF_INTEGER;
	if (strstr(up, "CHAR") || strstr(up, "CLOB") || strstr(up, "TEXT"))
		return AFF_TEXT;
	if (strstr(up, "BLOB") != NULL || up[0] == '\0')
		return AFF_BLOB;
	if (strstr(up, "REAL") || strstr(up, "FLOA") || strstr(up, "DOUB"))
		return AFF_REAL;
	return AFF_NUMERIC;
}

const char *
rules_affinity_name(enum affinity a)
{
	static const char *const names[] = { "INTEGER", "REAL", "TEXT",
	    "BLOB", "NUMERIC" };

	return (unsigned)a < sizeof(names) / sizeof(names[0]) ? names[a] :
	    "?";
}

/* --- C checks ----------------------------------------------------------- */

static void rules_words(char *, size_t, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static void
rules_words(char *why, size_t whylen, const char *fmt, ...)
{
	va_list	 ap;

	if (why == NULL || whylen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

enum reason
rules_check_key(const char *table, const char *col, const char *pk,
    size_t len, char *why, size_t whylen)
{
	for (size_t i = 0; i < sizeof(rules_keys) / sizeof(rules_keys[0]);
	    i++) {
		const struct rules_key_rule *k = &rules_keys[i];

		if (pk == NULL || k->broken(pk, len)) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
			if (why != NULL && whylen > 0)
				snprintf(why, whylen, k->words, table, col,
				    k->limit);
#pragma GCC diagnostic pop
			return REASON_BAD_KEY;
		}
	}
	return REASON_OK;
}

enum reason
rules_check_value(const char *table, const char *col, enum affinity a,
    enum rules_kind k, const void *p, size_t len, char *why, size_t whylen)
{
	if (!rules_type_fits(a, k)) {
		rules_words(why, whylen, RULES_TYPE_WORDS, table, col,
		    rules_affinity_name(a));
		return REASON_WRONG_TYPE;
	}
	if ((k == RULES_TEXT || k == RULES_BLOB) && len > STORE_MAX_VALUE) {
		rules_words(why, whylen, RULES_SIZE_WORDS, table, col,
		    STORE_MAX_VALUE);
		return REASON_VALUE_TOO_LARGE;
	}
	if (k == RULES_TEXT && len > 0 && memchr(p, '\0', len) != NULL) {
		rules_words(why, whylen, RULES_NUL_WORDS, table, col);
		return REASON_NUL_IN_TEXT;
	}
	return REASON_OK;
}

enum reason
rules_check_wire(const char *table, const char *col, enum affinity a,
    const Labsync__Value *v, char *why, size_t whylen)
{
	switch (v != NULL ? v->kind_case : LABSYNC__VALUE__KIND__NOT_SET) {
	case LABSYNC__VALUE__KIND_NULL:
		return rules_check_value(table, col, a, RULES_NULL, NULL, 0,
		    why, whylen);
	case LABSYNC__VALUE__KIND_INTEGER:
		return rules_check_value(table, col, a, RULES_INTEGER, NULL, 0,
		    why, whylen);
	case LABSYNC__VALUE__KIND_REAL:
		return rules_check_value(table, col, a, RULES_REAL, NULL, 0,
		    why, whylen);
	case LABSYNC__VALUE__KIND_TEXT:
		/* a C string: a NUL would have cut it already */
		return rules_check_value(table, col, a, RULES_TEXT, v->text,
		    strlen(v->text), why, whylen);
	case LABSYNC__VALUE__KIND_BLOB:
		return rules_check_value(table, col, a, RULES_BLOB,
		    v->blob.data, v->blob.len, why, whylen);
	default:
		rules_words(why, whylen, RULES_TYPE_WORDS, table, col,
		    rules_affinity_name(a));
		return REASON_WRONG_TYPE;
	}
}

/* --- SQL for the capture triggers --------------------------------------- */

/* cond with '$' as expr and '#' as limit; NULL: no memory. */
static char *
rules_subst(const char *cond, const char *expr, int limit)
{
	char	*out = sqlite3_mprintf("%s", ""), *tmp;

	for (const char *p = cond; *p != '\0' && out != NULL; p++) {
		if (*p == '$')
			tmp = sqlite3_mprintf("%s%s", out, expr);
		else if (*p == '#')
			tmp = sqlite3_mprintf("%s%d", out, limit);
		else
			tmp = sqlite3_mprintf("%s%c", out, *p);
		sqlite3_free(out);
		out = tmp;
	}
	return out;
}

/* sql + " WHEN cond THEN RAISE(ABORT, 'labsync: words')"; NULL: no
   memory (sql freed). */
static char *
rules_arm(char *sql, const char *cond, const char *expr, int limit,
    const char *words)
{
	char	*c, *tmp;

	if ((c = rules_subst(cond, expr, limit)) == NULL) {
		sqlite3_free(sql);
		return NULL;
	}
	tmp = sqlite3_mprintf("%s WHEN %s THEN RAISE(ABORT, '"
	    RULES_RAISE_PREFIX "%q')",
	    sql != NULL ? sql : "", c, words);
	sqlite3_free(c);
	sqlite3_free(sql);
	return tmp;
}

char *
rules_key_sql(char *sql, const char *table, const char *col,
    const char *expr)
{
	char	 words[512];

	if (sql == NULL)
		sql = sqlite3_mprintf("%s", "");
	for (size_t i = 0; i < sizeof(rules_keys) / sizeof(rules_keys[0]) &&
	    sql != NULL; i++) {
		const struct rules_key_rule *k = &rules_keys[i];

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		snprintf(words, sizeof(words), k->words, table, col, k->limit);
#pragma GCC diagnostic pop
		sql = rules_arm(sql, k->sql, expr, k->limit, words);
	}
	return sql;
}

char *
rules_value_sql(char *sql, const char *table, const char *col,
    enum affinity a, const char *expr)
{
	char	 words[512], cond[256] = "";
	int	 n = 0, nfit = 0;

	if (sql == NULL && (sql = sqlite3_mprintf("%s", "")) == NULL)
		return NULL;
	/*
	 * The kinds that do not fit, or (fewer tests) not those that do.
	 * Comparisons, not an IN list: a trigger would build the list's
	 * table on every write (several times slower).
	 */
	for (int k = RULES_NULL; k <= RULES_BLOB; k++)
		nfit += rules_type_fits(a, k);
	for (int k = RULES_NULL; k <= RULES_BLOB && nfit < RULES_BLOB + 1;
	    k++)
		if (rules_type_fits(a, k) == (nfit <= RULES_BLOB / 2))
			n += snprintf(cond + n, sizeof(cond) - n,
			    "%stypeof($) %s '%s'", n == 0 ? "" :
			    nfit <= RULES_BLOB / 2 ? " AND " : " OR ",
			    nfit <= RULES_BLOB / 2 ? "<>" : "=",
			    rules_kind_sql[k]);
	if (n > 0) {
		rules_words(words, sizeof(words), RULES_TYPE_WORDS, table, col,
		    rules_affinity_name(a));
		sql = rules_arm(sql, cond, expr, 0, words);
	}
	/* a text or blob there: its size, and a text's NUL */
	if (sql != NULL && (rules_type_fits(a, RULES_TEXT) ||
	    rules_type_fits(a, RULES_BLOB))) {
		rules_words(words, sizeof(words), RULES_SIZE_WORDS, table, col,
		    STORE_MAX_VALUE);
		sql = rules_arm(sql, RULES_SIZE_SQL, expr, STORE_MAX_VALUE,
		    words);
	}
	if (sql != NULL && rules_type_fits(a, RULES_TEXT)) {
		rules_words(words, sizeof(words), RULES_NUL_WORDS, table, col);
		sql = rules_arm(sql, RULES_NUL_SQL, expr, 0, words);
	}
	return sql;
}
