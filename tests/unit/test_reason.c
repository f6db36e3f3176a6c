/*
 * test_reason.c: the reason codes (reason.h) are stable numbers with
 * unique names, and each refusal gives its code whatever its words: the
 * wire decoder, the schema check of a received change, and the row
 * writes of labsyncctl and the HTTP API (among them the capture
 * triggers' refusals on an observer and on a node that is recovering).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

#include <jansson.h>
#include <sqlite3.h>

#include "clock.h"
#include "reason.h"
#include "rows.h"
#include "store.h"
#include "wire.h"

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS t1(id TEXT PRIMARY KEY, n INTEGER, s TEXT,"
    " c TEXT CHECK (c IS NOT 'bad')) STRICT;\n";

static char schema_path[] = "/tmp/labsync-test-reason.XXXXXX";
static char t1_name[] = "t1";
static char *table_names[] = { t1_name };

/* The numbers go on the wire: a renumbered code fails here. */
static void
test_codes_keep_their_numbers_and_names(void **state)
{
	static const struct {
		enum reason	 code;
		int		 number;
		const char	*name;
	} golden[] = {
		{ REASON_OK, 0, "ok" },
		{ REASON_OTHER, 1, "other" },
		{ REASON_MALFORMED, 2, "malformed" },
		{ REASON_VERSION, 3, "version" },
		{ REASON_TOO_LARGE, 4, "too_large" },
		{ REASON_UNKNOWN_PEER, 5, "unknown_peer" },
		{ REASON_OBSERVER, 6, "observer" },
		{ REASON_BAD_ORIGIN, 7, "bad_origin" },
		{ REASON_OWN_ORIGIN, 8, "own_origin" },
		{ REASON_TOO_MANY_ORIGINS, 9, "too_many_origins" },
		{ REASON_BAD_SEQUENCE, 10, "bad_sequence" },
		{ REASON_BAD_CLOCK, 11, "bad_clock" },
		{ REASON_UNKNOWN_TABLE, 12, "unknown_table" },
		{ REASON_BAD_KEY, 13, "bad_key" },
		{ REASON_BAD_OPERATION, 14, "bad_operation" },
		{ REASON_UNKNOWN_COLUMN, 15, "unknown_column" },
		{ REASON_DUPLICATE_COLUMN, 16, "duplicate_column" },
		{ REASON_WRONG_TYPE, 17, "wrong_type" },
		{ REASON_VALUE_TOO_LARGE, 18, "value_too_large" },
		{ REASON_CLOCK_SKEW, 19, "clock_skew" },
		{ REASON_NOT_WRITABLE, 20, "not_writable" },
		{ REASON_DATABASE, 21, "database" },
		{ REASON_NO_MEMORY, 22, "no_memory" },
		{ REASON_READ_ONLY, 23, "read_only" },
		{ REASON_RECOVERING, 24, "recovering" },
		{ REASON_NOT_FOUND, 25, "not_found" },
		{ REASON_BAD_INPUT, 26, "bad_input" },
		{ REASON_CONSTRAINT, 27, "constraint" },
		{ REASON_IO, 28, "io" },
		{ REASON_NUL_IN_TEXT, 29, "nul_in_text" },
		{ REASON_COMPACTED, 30, "compacted" },
	};

	(void)state;
	assert_int_equal(sizeof(golden) / sizeof(golden[0]), REASON_N);
	for (size_t i = 0; i < sizeof(golden) / sizeof(golden[0]); i++) {
		assert_int_equal(golden[i].code, golden[i].number);
		assert_string_equal(reason_name(golden[i].code),
		    golden[i].name);
	}
}

/* Every code has a name of its own: non-empty snake_case, no two alike. */
static void
test_every_code_has_a_unique_name(void **state)
{
	(void)state;
	for (int i = 0; i < REASON_N; i++) {
		const char *n = reason_name(i);

		assert_non_null(n);
		if (n[0] == '\0')
			fail_msg("code %d has an empty name", i);
		for (const char *p = n; *p != '\0'; p++)
			if (!islower((unsigned char)*p) && *p != '_')
				fail_msg("code %d: '%s' is not snake_case", i,
				    n);
		for (int j = 0; j < i; j++)
			if (strcmp(n, reason_name(j)) == 0)
				fail_msg("codes %d and %d are both '%s'", j, i,
				    n);
	}
	/* a number this version does not know (a newer peer's) */
	assert_string_equal(reason_name(REASON_N), "other");
	assert_string_equal(reason_name((enum reason)-1), "other");
	assert_false(reason_counted(REASON_N));
}

/* The metric labels dashboards know stay series of the rejected counter. */
static void
test_old_metric_labels_are_still_counted(void **state)
{
	static const char *const labels[] = { "malformed", "unknown_table",
	    "unknown_column", "wrong_type", "own_origin", "observer",
	    "unknown_peer", "too_large", "database", "other" };

	(void)state;
	for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++) {
		int found = 0;

		for (int c = 0; c < REASON_N; c++)
			if (strcmp(reason_name(c), labels[i]) == 0) {
				assert_true(reason_counted(c));
				found = 1;
			}
		if (!found)
			fail_msg("no code named %s", labels[i]);
	}
	assert_false(reason_counted(REASON_OK));
	assert_false(reason_counted(REASON_NOT_FOUND));
}

/* Decode refusals give their code. */
static void
test_wire_refusals_give_their_code(void **state)
{
	static const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff };
	Labsync__Envelope	 e = LABSYNC__ENVELOPE__INIT;
	Labsync__Heartbeat	 hb = LABSYNC__HEARTBEAT__INIT;
	struct wire_arena	*arena = wire_arena_new();
	ProtobufCBinaryData	*raw;
	uint8_t			*buf;
	size_t			 len;
	char			 why[256];
	enum reason		 r;

	(void)state;
	assert_non_null(arena);
	assert_null(wire_unpack(garbage, 0, NULL, &r, why, sizeof(why)));
	assert_int_equal(r, REASON_MALFORMED);
	assert_null(wire_unpack(garbage, sizeof(garbage), NULL, &r, why,
	    sizeof(why)));
	assert_int_equal(r, REASON_MALFORMED);
	assert_null(wire_unpack_lazy(garbage, sizeof(garbage), arena, &raw,
	    &r, why, sizeof(why)));
	assert_int_equal(r, REASON_MALFORMED);
	wire_arena_reset(arena);

	e.body_case = LABSYNC__ENVELOPE__BODY_HEARTBEAT;
	e.heartbeat = &hb;
	buf = wire_pack(&e, "n2", &len);
	assert_non_null(buf);
	assert_non_null(wire_unpack_lazy(buf, len, arena, &raw, &r, why,
	    sizeof(why)));
	assert_int_equal(r, REASON_OK);
	wire_arena_reset(arena);
	free(buf);

	e.version = WIRE_VERSION + 1;	/* packed as is: another version */
	len = labsync__envelope__get_packed_size(&e);
	buf = malloc(len);
	assert_non_null(buf);
	labsync__envelope__pack(&e, buf);
	assert_null(wire_unpack_lazy(buf, len, arena, &raw, &r, why,
	    sizeof(why)));
	assert_int_equal(r, REASON_VERSION);
	free(buf);
	wire_arena_free(arena);
}

/* --- a store ------------------------------------------------------------ */

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
	opt.path = ":memory:";
	opt.node_id = "n1";
	opt.schema_path = schema_path;
	opt.tables = table_names;
	opt.ntables = 1;
	opt.cache_size_mib = 1;
	opt.max_clock_skew_ms = 1000;
	opt.mode = STORE_DAEMON;
	if ((f->clock = clock_new(NULL)) == NULL ||
	    (f->store = store_open(&opt, f->clock, err, sizeof(err))) ==
	    NULL) {
		fprintf(stderr, "store_open: %s\n", err);
		clock_free(f->clock);
		free(f);
		return -1;
	}
	/* written like labsyncctl and the HTTP API do: through the triggers */
	store_capture(f->store, 1);
	f->db = store_db(f->store);
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
	return 0;
}

/* A change of one column n = 7 of t1, on the stack. */
struct one_change {
	Labsync__Change	 c;
	Labsync__Column	 col, *colp;
	Labsync__Value	 val;
};

static void
one_change_init(struct one_change *o)
{
	labsync__change__init(&o->c);
	labsync__column__init(&o->col);
	labsync__value__init(&o->val);
	o->c.origin = UNCONST("n2");
	o->c.seq = 1;
	o->c.hlc = CLOCK_MAKE(1000000, 0);
	o->c.table = UNCONST("t1");
	o->c.pk = UNCONST("k1");
	o->c.op = LABSYNC__OP__OP_UPSERT;
	o->val.kind_case = LABSYNC__VALUE__KIND_INTEGER;
	o->val.integer = 7;
	o->col.name = UNCONST("n");
	o->col.value = &o->val;
	o->colp = &o->col;
	o->c.columns = &o->colp;
	o->c.n_columns = 1;
}

static void
assert_validate(struct store *s, const Labsync__Change *c, enum reason want)
{
	char		 why[256] = "";
	enum reason	 r = merge_validate(s, c, 0, why, sizeof(why));

	if (r != want)
		fail_msg("merge_validate: %s, expected %s (%s)",
		    reason_name(r), reason_name(want), why);
	if (want != REASON_OK && why[0] == '\0')
		fail_msg("merge_validate: %s without words", reason_name(r));
}

/* The schema check of a received change gives the code of its refusal. */
static void
test_validate_refusals_give_their_code(void **state)
{
	struct fixture		*f = *state;
	struct one_change	 o;

	one_change_init(&o);
	assert_validate(f->store, &o.c, REASON_OK);
	o.c.table = UNCONST("t9");
	assert_validate(f->store, &o.c, REASON_UNKNOWN_TABLE);
	o.c.table = UNCONST("t1");
	o.col.name = UNCONST("zz");
	assert_validate(f->store, &o.c, REASON_UNKNOWN_COLUMN);
	o.col.name = UNCONST("s");			/* an integer into TEXT */
	assert_validate(f->store, &o.c, REASON_WRONG_TYPE);
	o.col.name = UNCONST("n");
	o.c.pk = UNCONST("");
	assert_validate(f->store, &o.c, REASON_BAD_KEY);
	o.c.pk = UNCONST("k1");
	o.c.origin = UNCONST("n1");			/* ourselves */
	assert_validate(f->store, &o.c, REASON_OWN_ORIGIN);
	o.c.origin = UNCONST("N 2");
	assert_validate(f->store, &o.c, REASON_BAD_ORIGIN);
	o.c.origin = UNCONST("n2");
	o.c.seq = 0;
	assert_validate(f->store, &o.c, REASON_BAD_SEQUENCE);
}

/* A row write's code, and words with it when it is refused. */
static void
assert_put(sqlite3 *db, const char *pk, char *const *assign, int n,
    enum reason want)
{
	char		 err[512] = "";
	enum reason	 r = rows_put(db, "t1", pk, assign, n, err,
			    sizeof(err));

	if (r != want)
		fail_msg("rows_put %s: %s, expected %s (%s)", pk,
		    reason_name(r), reason_name(want), err);
	if (want != REASON_OK && err[0] == '\0')
		fail_msg("rows_put %s: %s without words", pk, reason_name(r));
}

/* labsyncctl's writes and reads: each outcome has its code. */
static void
test_row_results_give_their_code(void **state)
{
	struct fixture	*f = *state;
	char		*ok[] = { UNCONST("n=1"), UNCONST("s=x") };
	char		*noeq[] = { UNCONST("n") };
	char		*nocol[] = { UNCONST("zz=1") };
	char		*twice[] = { UNCONST("n=1"), UNCONST("n=2") };
	char		*notint[] = { UNCONST("n=many") };
	char		*check[] = { UNCONST("c=bad") };
	char		 err[512];
	FILE		*out;

	assert_put(f->db, "k1", ok, 2, REASON_OK);
	assert_put(f->db, "k1", noeq, 1, REASON_BAD_INPUT);
	assert_put(f->db, "k1", nocol, 1, REASON_UNKNOWN_COLUMN);
	assert_put(f->db, "k1", twice, 2, REASON_DUPLICATE_COLUMN);
	assert_put(f->db, "k1", notint, 1, REASON_WRONG_TYPE);
	assert_put(f->db, "k1", check, 1, REASON_CONSTRAINT);
	/* an empty key breaks a rule (rules.c): refused before the write */
	assert_put(f->db, "", ok, 2, REASON_BAD_KEY);
	assert_int_equal(rows_put(f->db, "t9", "k1", ok, 2, err, sizeof(err)),
	    REASON_UNKNOWN_TABLE);

	out = fopen("/dev/null", "w");
	assert_non_null(out);
	assert_int_equal(rows_get(f->db, "t1", "k1", out, err, sizeof(err)),
	    REASON_OK);
	assert_int_equal(rows_get(f->db, "t1", "k2", out, err, sizeof(err)),
	    REASON_NOT_FOUND);
	assert_int_equal(rows_get(f->db, "t9", "k1", out, err, sizeof(err)),
	    REASON_UNKNOWN_TABLE);
	fclose(out);
	assert_int_equal(rows_delete(f->db, "t1", "k2", err, sizeof(err)),
	    REASON_NOT_FOUND);
	assert_int_equal(rows_delete(f->db, "t1", "k1", err, sizeof(err)),
	    REASON_OK);
	assert_int_equal(rows_delete(f->db, "t1", "k1", err, sizeof(err)),
	    REASON_NOT_FOUND);
}

/*
 * The capture triggers refuse local writes on an observer and while the
 * node fetches its own lost changes back: told apart by the node's state,
 * whatever the words of the trigger's error.
 */
static void
test_trigger_refusals_give_the_node_state(void **state)
{
	struct fixture	*f = *state;
	char		*ok[] = { UNCONST("n=1") };
	char		 err[512];
	json_t		*obj;

	assert_put(f->db, "k1", ok, 1, REASON_OK);

	assert_int_equal(store_set_writable(f->store, STORE_RECOVERING), 0);
	store_capture(f->store, 1);
	assert_put(f->db, "k2", ok, 1, REASON_RECOVERING);
	assert_int_equal(rows_delete(f->db, "t1", "k1", err, sizeof(err)),
	    REASON_RECOVERING);
	obj = json_pack("{s:i}", "n", 3);
	assert_non_null(obj);
	assert_int_equal(rows_put_json(f->db, "t1", "k3", obj, err,
	    sizeof(err)), REASON_RECOVERING);

	assert_int_equal(store_set_writable(f->store, STORE_READONLY), 0);
	store_capture(f->store, 1);
	assert_put(f->db, "k2", ok, 1, REASON_READ_ONLY);
	assert_int_equal(rows_put_json(f->db, "t1", "k3", obj, err,
	    sizeof(err)), REASON_READ_ONLY);

	/* writable again: the same writes go through */
	assert_int_equal(store_set_writable(f->store, STORE_WRITABLE), 0);
	store_capture(f->store, 1);
	assert_put(f->db, "k2", ok, 1, REASON_OK);
	assert_int_equal(rows_put_json(f->db, "t1", "k3", obj, err,
	    sizeof(err)), REASON_OK);
	json_decref(obj);
}

/* The HTTP API's JSON writes and reads. */
static void
test_json_results_give_their_code(void **state)
{
	struct fixture	*f = *state;
	char		 err[512];
	json_t		*obj, *row, *rows;
	char		*next;

	obj = json_pack("[i]", 1);
	assert_int_equal(rows_put_json(f->db, "t1", "k1", obj, err,
	    sizeof(err)), REASON_BAD_INPUT);
	json_decref(obj);
	obj = json_pack("{s:s}", "n", "many");
	assert_int_equal(rows_put_json(f->db, "t1", "k1", obj, err,
	    sizeof(err)), REASON_WRONG_TYPE);
	json_decref(obj);
	obj = json_pack("{s:i}", "zz", 1);
	assert_int_equal(rows_put_json(f->db, "t1", "k1", obj, err,
	    sizeof(err)), REASON_UNKNOWN_COLUMN);
	json_decref(obj);
	obj = json_pack("{s:s}", "c", "bad");
	assert_int_equal(rows_put_json(f->db, "t1", "k1", obj, err,
	    sizeof(err)), REASON_CONSTRAINT);
	json_decref(obj);
	obj = json_pack("{s:i}", "n", 5);
	assert_int_equal(rows_put_json(f->db, "t1", "k1", obj, err,
	    sizeof(err)), REASON_OK);
	json_decref(obj);

	assert_int_equal(rows_get_json(f->db, "t1", "k1", &row), REASON_OK);
	assert_int_equal(json_integer_value(json_object_get(row, "n")), 5);
	json_decref(row);
	assert_int_equal(rows_get_json(f->db, "t1", "k9", &row),
	    REASON_NOT_FOUND);
	assert_null(row);
	assert_int_equal(rows_page_json(f->db, "t1", NULL, 10, &rows, &next),
	    REASON_OK);
	assert_int_equal(json_array_size(rows), 1);
	assert_null(next);
	json_decref(rows);
	assert_int_equal(rows_page_json(f->db, "t9", NULL, 10, &rows, &next),
	    REASON_UNKNOWN_TABLE);
	assert_null(rows);
}

static int
setup_schema(void)
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
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codes_keep_their_numbers_and_names),
		cmocka_unit_test(test_every_code_has_a_unique_name),
		cmocka_unit_test(test_old_metric_labels_are_still_counted),
		cmocka_unit_test(test_wire_refusals_give_their_code),
		cmocka_unit_test_setup_teardown(
		    test_validate_refusals_give_their_code, setup_store,
		    teardown_store),
		cmocka_unit_test_setup_teardown(
		    test_row_results_give_their_code, setup_store,
		    teardown_store),
		cmocka_unit_test_setup_teardown(
		    test_trigger_refusals_give_the_node_state, setup_store,
		    teardown_store),
		cmocka_unit_test_setup_teardown(
		    test_json_results_give_their_code, setup_store,
		    teardown_store),
	};
	int	 rc;

	if (setup_schema() == -1) {
		perror(schema_path);
		return 1;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(schema_path);
	return rc;
}
