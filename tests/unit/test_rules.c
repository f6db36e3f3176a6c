/*
 * test_rules.c: each rule of rules.c gives the same verdict where the
 * write happens and where it is applied. For a table of keys and of
 * values (each affinity by each storage class, sizes at and above the
 * limit, a text with a NUL), a plain SQL write into a database with
 * labsync's capture triggers (what any other program does) is accepted
 * exactly when merge_validate accepts the change that write would send,
 * and when refused, the trigger's words are the C check's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

#include <sqlite3.h>

#include "clock.h"
#include "reason.h"
#include "rules.h"
#include "store.h"

#define UNCONST(p)	((void *)(uintptr_t)(p))

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS t1(id TEXT PRIMARY KEY, i INTEGER, r REAL,"
    " t TEXT, b BLOB, n NUMERIC);\n";

static char schema_path[] = "/tmp/labsync-test-rules.XXXXXX";
static char db_path[] = "/tmp/labsync-test-rules-db.XXXXXX";
static char t1_name[] = "t1";
static char *table_names[] = { t1_name };

struct fixture {
	struct clock	*clock;
	struct store	*store;
	sqlite3		*db;
};

static int
setup_store(void **state)
{
	struct store_options	 opt;
	struct fixture		*f = calloc(1, sizeof(*f));
	char			 err[512] = "";

	if (f == NULL)
		return -1;
	memset(&opt, 0, sizeof(opt));
	opt.path = db_path;
	opt.node_id = "n1";
	opt.schema_path = schema_path;
	opt.tables = table_names;
	opt.ntables = 1;
	opt.cache_size_mib = 1;
	opt.mode = STORE_INIT;
	if ((f->clock = clock_new(NULL)) == NULL ||
	    (f->store = store_open(&opt, f->clock, err, sizeof(err))) ==
	    NULL) {
		fprintf(stderr, "store_open: %s\n", err);
		clock_free(f->clock);
		free(f);
		return -1;
	}
	store_capture(f->store, 1);
	f->db = store_db(f->store);
	/* the same columns without triggers: what SQLite stores of a value */
	if (sqlite3_exec(f->db, "CREATE TEMP TABLE shadow(id TEXT PRIMARY"
	    " KEY, i INTEGER, r REAL, t TEXT, b BLOB, n NUMERIC)", NULL, NULL,
	    NULL) != SQLITE_OK) {
		fprintf(stderr, "shadow: %s\n", sqlite3_errmsg(f->db));
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown_store(void **state)
{
	struct fixture	*f = *state;

	store_free(f->store);
	clock_free(f->clock);
	free(f);
	unlink(db_path);
	return 0;
}

/* A received change of table t1: key pk, at most one column. */
static enum reason
apply_verdict(struct store *s, const char *pk, const char *col,
    Labsync__Value *v, char *why, size_t whylen)
{
	Labsync__Change	 c;
	Labsync__Column	 column, *colp = &column;

	labsync__change__init(&c);
	labsync__column__init(&column);
	c.origin = UNCONST("n2");
	c.seq = 1;
	c.hlc = CLOCK_MAKE(1000000, 0);
	c.table = UNCONST("t1");
	c.pk = UNCONST(pk);
	c.op = LABSYNC__OP__OP_UPSERT;
	if (col != NULL) {
		column.name = UNCONST(col);
		column.value = v;
		c.columns = &colp;
		c.n_columns = 1;
	}
	why[0] = '\0';
	return merge_validate(s, &c, 0, why, whylen);
}

/* Run sql with ?1 a key of len bytes and ?2 the value of st's column 0
   (st NULL: none); the error message, or "" when it went through. */
static void
capture_verdict(sqlite3 *db, const char *sql, const char *pk, size_t len,
    sqlite3_stmt *val, char *msg, size_t msglen)
{
	sqlite3_stmt	*st;
	int		 rc;

	msg[0] = '\0';
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL),
	    SQLITE_OK);
	if (sqlite3_bind_parameter_count(st) >= 1)
		assert_int_equal(sqlite3_bind_text(st, 1, pk, (int)len,
		    SQLITE_STATIC), SQLITE_OK);
	if (val != NULL)
		assert_int_equal(sqlite3_bind_value(st, 2,
		    sqlite3_column_value(val, 0)), SQLITE_OK);
	if ((rc = sqlite3_step(st)) != SQLITE_DONE) {
		snprintf(msg, msglen, "%s", sqlite3_errmsg(db));
		assert_int_equal(sqlite3_extended_errcode(db),
		    SQLITE_CONSTRAINT_TRIGGER);
	}
	sqlite3_finalize(st);
}

/* Both verdicts agree: accepted by both, or refused by both in the same
   words (the trigger's with "labsync: " before them). */
static void
assert_agree(const char *what, enum reason want, enum reason applied,
    const char *why, const char *captured)
{
	char	 expect[1024];

	if (applied != want)
		fail_msg("%s: applied: %s (%s), expected %s", what,
		    reason_name(applied), why, reason_name(want));
	if (want == REASON_OK) {
		if (captured[0] != '\0')
			fail_msg("%s: accepted at apply, refused at capture: "
			    "%s", what, captured);
		return;
	}
	snprintf(expect, sizeof(expect), "labsync: %s", why);
	if (strcmp(expect, captured) != 0)
		fail_msg("%s: refused at apply (%s), at capture: '%s'", what,
		    why, captured);
}

/* Keys: empty, at and above the limit, control characters, NUL, UTF-8. */
static void
test_key_rules_agree(void **state)
{
	static const struct {
		const char	*name;
		const char	*pk;
		size_t		 len;	/* 0: strlen, unless pk is "" */
		enum reason	 want;
	} keys[] = {
		{ "empty", "", 0, REASON_BAD_KEY },
		{ "1024 bytes", NULL, STORE_MAX_PK, REASON_OK },
		{ "1025 bytes", NULL, STORE_MAX_PK + 1, REASON_BAD_KEY },
		{ "1500 bytes", NULL, 1500, REASON_BAD_KEY },
		{ "a tab", "a\tb", 0, REASON_BAD_KEY },
		{ "a newline", "a\nb", 0, REASON_BAD_KEY },
		{ "a carriage return", "a\rb", 0, REASON_BAD_KEY },
		{ "0x01", "a\001b", 0, REASON_BAD_KEY },
		{ "0x1f", "a\037b", 0, REASON_BAD_KEY },
		{ "0x7f", "a\177b", 0, REASON_BAD_KEY },
		{ "a NUL", "a\0b", 3, REASON_BAD_KEY },
		{ "umlauts", "Gr\xc3\xbc\xc3\x9f" "e-\xc3\xa4\xc3\xb6", 0,
		    REASON_OK },
		{ "space and punctuation", "a b-c_d.e/f:g", 0, REASON_OK },
	};
	struct fixture	*f = *state;
	char		*big = malloc(2000), why[512], msg[512];

	assert_non_null(big);
	memset(big, 'k', 2000);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *pk = keys[i].pk != NULL ? keys[i].pk : big;
		size_t len = keys[i].len != 0 ? keys[i].len : strlen(pk);
		char *copy = malloc(len + 1);
		enum reason r;

		assert_non_null(copy);
		memcpy(copy, pk, len);
		copy[len] = '\0';
		/* a NUL cannot cross the wire (a C string): the C check that
		   merge_validate calls decides on the bytes themselves */
		if (memchr(copy, '\0', len) != NULL)
			r = rules_check_key("t1", "id", copy, len, why,
			    sizeof(why));
		else
			r = apply_verdict(f->store, copy, NULL, NULL, why,
			    sizeof(why));
		capture_verdict(f->db, "INSERT INTO t1(id) VALUES (?1)", copy,
		    len, NULL, msg, sizeof(msg));
		assert_agree(keys[i].name, keys[i].want, r, why, msg);
		/* a rename to that key: the same */
		if (keys[i].want != REASON_OK) {
			capture_verdict(f->db, "INSERT INTO t1(id) VALUES "
			    "('rename-me') ON CONFLICT DO NOTHING", "", 0,
			    NULL, msg, sizeof(msg));
			assert_string_equal(msg, "");
			capture_verdict(f->db, "UPDATE t1 SET id = ?1 WHERE "
			    "id = 'rename-me'", copy, len, NULL, msg,
			    sizeof(msg));
			assert_agree(keys[i].name, keys[i].want, r, why, msg);
		}
		free(copy);
	}
	free(big);
}

/* The value SQLite stores of st's column 0 in column col, as the change
   log carries it (changelog.c), in v. */
static void
stored_value(sqlite3_stmt *st, Labsync__Value *v)
{
	labsync__value__init(v);
	switch (sqlite3_column_type(st, 0)) {
	case SQLITE_INTEGER:
		v->kind_case = LABSYNC__VALUE__KIND_INTEGER;
		v->integer = sqlite3_column_int64(st, 0);
		break;
	case SQLITE_FLOAT:
		v->kind_case = LABSYNC__VALUE__KIND_REAL;
		v->real = sqlite3_column_double(st, 0);
		break;
	case SQLITE_TEXT:
		v->kind_case = LABSYNC__VALUE__KIND_TEXT;
		v->text = UNCONST(sqlite3_column_text(st, 0));
		break;
	case SQLITE_BLOB:
		v->kind_case = LABSYNC__VALUE__KIND_BLOB;
		v->blob.data = UNCONST(sqlite3_column_blob(st, 0));
		v->blob.len = sqlite3_column_bytes(st, 0);
		break;
	default:
		v->kind_case = LABSYNC__VALUE__KIND_NULL;
		v->null = 1;
		break;
	}
}

/* Values: each affinity by each storage class, sizes, NUL. */
static void
test_value_rules_agree(void **state)
{
	static const struct {
		const char	*name;
		const char	*sql;	/* the value, as SQL */
	} values[] = {
		{ "null", "NULL" },
		{ "integer", "7" },
		{ "real", "1.5" },
		{ "whole real", "2.0" },
		{ "text", "'abc'" },
		{ "numeric text", "'12'" },
		{ "umlaut text", "'Gr' || char(252) || 'e'" },
		{ "blob", "x'0102'" },
		{ "empty blob", "x''" },
		{ "1 MiB text", "CAST(zeroblob(1048576) AS TEXT)" },
		{ "1 MiB text of x", "replace(CAST(zeroblob(1048576) AS TEXT),"
		    " char(0), 'x')" },
		{ "1 MiB + 1 text of x", "replace(CAST(zeroblob(1048577) AS "
		    "TEXT), char(0), 'x')" },
		{ "1 MiB blob", "zeroblob(1048576)" },
		{ "1 MiB + 1 blob", "zeroblob(1048577)" },
		{ "text with NUL", "CAST(x'610062' AS TEXT)" },
	};
	static const char *const cols[] = { "i", "r", "t", "b", "n" };
	static const enum affinity affs[] = { AFF_INTEGER, AFF_REAL,
	    AFF_TEXT, AFF_BLOB, AFF_NUMERIC };
	struct fixture	*f = *state;
	char		 why[512], msg[512], what[128], *sql;
	int		 nrefused = 0, key = 0;

	for (size_t c = 0; c < sizeof(cols) / sizeof(cols[0]); c++) {
		for (size_t i = 0; i < sizeof(values) / sizeof(values[0]);
		    i++) {
			sqlite3_stmt *st;
			Labsync__Value v;
			enum reason r, want;
			char pk[32];

			snprintf(what, sizeof(what), "%s into %s",
			    values[i].name, cols[c]);
			snprintf(pk, sizeof(pk), "k%d", ++key);
			/* what SQLite stores of it in such a column */
			sql = sqlite3_mprintf("INSERT INTO temp.shadow(id, %s) "
			    "VALUES ('%s', %s) RETURNING %s", cols[c], pk,
			    values[i].sql, cols[c]);
			assert_non_null(sql);
			assert_int_equal(sqlite3_prepare_v2(f->db, sql, -1,
			    &st, NULL), SQLITE_OK);
			sqlite3_free(sql);
			assert_int_equal(sqlite3_step(st), SQLITE_ROW);
			stored_value(st, &v);
			if (v.kind_case == LABSYNC__VALUE__KIND_TEXT &&
			    memchr(sqlite3_column_blob(st, 0), '\0',
			    sqlite3_column_bytes(st, 0)) != NULL) {
				/* a NUL cannot cross the wire: the C check
				   merge_validate calls, on the bytes */
				r = rules_check_value("t1", cols[c], affs[c],
				    RULES_TEXT,
				    sqlite3_column_blob(st, 0),
				    sqlite3_column_bytes(st, 0), why,
				    sizeof(why));
			} else
				r = apply_verdict(f->store, pk, cols[c], &v,
				    why, sizeof(why));
			want = r;	/* the apply's verdict is the reference */
			if (r != REASON_OK)
				nrefused++;
			/* the same value written by any program */
			sql = sqlite3_mprintf("INSERT INTO t1(id, %s) VALUES "
			    "(?1, %s)", cols[c], values[i].sql);
			capture_verdict(f->db, sql, pk, strlen(pk), NULL, msg,
			    sizeof(msg));
			sqlite3_free(sql);
			assert_agree(what, want, r, why, msg);
			/* and by an update of a row that is there */
			sql = sqlite3_mprintf("UPDATE t1 SET %s = %s WHERE "
			    "id = ?1", cols[c], values[i].sql);
			capture_verdict(f->db, "INSERT INTO t1(id) VALUES (?1)"
			    " ON CONFLICT DO NOTHING", "row", 3, NULL, msg,
			    sizeof(msg));
			assert_string_equal(msg, "");
			capture_verdict(f->db, sql, "row", 3, NULL, msg,
			    sizeof(msg));
			sqlite3_free(sql);
			assert_agree(what, want, r, why, msg);
			sqlite3_finalize(st);
		}
	}
	/* each rule refused something (the table covers them all) */
	assert_true(nrefused >= 20);
}

/* Each rule's code, as the C check gives it. */
static void
test_value_rules_give_their_code(void **state)
{
	char	 why[256], *big = calloc(1, STORE_MAX_VALUE + 1);

	(void)state;
	assert_non_null(big);
	assert_int_equal(rules_check_value("t", "c", AFF_INTEGER, RULES_TEXT,
	    "x", 1, why, sizeof(why)), REASON_WRONG_TYPE);
	assert_int_equal(rules_check_value("t", "c", AFF_TEXT, RULES_TEXT,
	    big, STORE_MAX_VALUE + 1, why, sizeof(why)),
	    REASON_VALUE_TOO_LARGE);
	assert_non_null(strstr(why, "limit of 1048576 bytes"));
	assert_int_equal(rules_check_value("t", "c", AFF_BLOB, RULES_BLOB,
	    big, STORE_MAX_VALUE, why, sizeof(why)), REASON_OK);
	assert_int_equal(rules_check_value("t", "c", AFF_TEXT, RULES_TEXT,
	    "a\0b", 3, why, sizeof(why)), REASON_NUL_IN_TEXT);
	assert_int_equal(rules_check_value("t", "c", AFF_BLOB, RULES_BLOB,
	    "a\0b", 3, why, sizeof(why)), REASON_OK);
	assert_int_equal(rules_check_key("t", "id", big, STORE_MAX_PK + 1,
	    why, sizeof(why)), REASON_BAD_KEY);
	assert_non_null(strstr(why, "limit of 1024 bytes"));
	assert_int_equal(rules_check_key("t", "id", NULL, 0, why,
	    sizeof(why)), REASON_BAD_KEY);
	assert_int_equal(rules_check_wire("t", "c", AFF_TEXT, NULL, why,
	    sizeof(why)), REASON_WRONG_TYPE);
	free(big);
}

static int
setup_files(void)
{
	int	 fd;

	if ((fd = mkstemp(schema_path)) == -1)
		return -1;
	if (write(fd, schema_sql, sizeof(schema_sql) - 1) !=
	    (ssize_t)(sizeof(schema_sql) - 1)) {
		close(fd);
		unlink(schema_path);
		return -1;
	}
	close(fd);
	if ((fd = mkstemp(db_path)) == -1) {
		unlink(schema_path);
		return -1;
	}
	close(fd);
	unlink(db_path);	/* a new database at that name */
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_key_rules_agree,
		    setup_store, teardown_store),
		cmocka_unit_test_setup_teardown(test_value_rules_agree,
		    setup_store, teardown_store),
		cmocka_unit_test(test_value_rules_give_their_code),
	};
	int	 rc;

	if (setup_files() == -1) {
		perror("mkstemp");
		return 1;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(schema_path);
	return rc;
}
