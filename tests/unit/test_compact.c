/*
 * test_compact.c: log compaction drops an origin's entries only up to
 * what every configured peer confirmed, only once they are older than
 * compact_after, never inside a transaction held open; what peers
 * confirmed survives a reopen; a peer no longer configured holds
 * nothing; catch-up leaves out an origin a peer holds less of than the
 * log keeps, and serves the rest whole.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "unit.h"

#include "clock.h"
#include "store.h"
#include "wire.h"

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS t1(id TEXT PRIMARY KEY, a INTEGER) STRICT;\n";
static char schema_path[] = "/tmp/labsync-test-compact-schema.XXXXXX";
static char db_path[] = "/tmp/labsync-test-compact-db.XXXXXX";
static char t1_name[] = "t1";
static char *table_names[] = { t1_name };
static char p1_name[] = "p1", p2_name[] = "p2";

struct fixture {
	struct clock	*clock;
	struct store	*s;
	uint64_t	 now_ms;
};

static struct store *
open_store(struct clock *clock)
{
	struct store_options	 opt;
	struct store		*s;
	char			 err[512] = "";

	memset(&opt, 0, sizeof(opt));
	opt.path = db_path;
	opt.node_id = "n";
	opt.schema_path = schema_path;
	opt.tables = table_names;
	opt.ntables = 1;
	opt.cache_size_mib = 1;
	opt.max_clock_skew_ms = 60 * 1000;
	opt.mode = STORE_DAEMON;
	if ((s = store_open(&opt, clock, err, sizeof(err))) == NULL)
		fail_msg("store_open: %s", err);
	return s;
}

/* n changes of origin, seq from..from+n-1, stamped at ms. */
static void
apply_changes(struct store *s, const char *origin, uint64_t from, int n,
    uint64_t ms)
{
	struct merge_stats	 st;

	memset(&st, 0, sizeof(st));
	assert_int_equal(merge_apply_begin(s), 0);
	for (int i = 0; i < n; i++) {
		Labsync__Change	 c = LABSYNC__CHANGE__INIT, *cp = &c;
		Labsync__Column	 col = LABSYNC__COLUMN__INIT, *colp = &col;
		Labsync__Value	 v = LABSYNC__VALUE__INIT;
		char		 pk[32];

		snprintf(pk, sizeof(pk), "%s-k%d", origin, i % 3);
		v.kind_case = LABSYNC__VALUE__KIND_INTEGER;
		v.integer = (int64_t)(from + i);
		col.name = UNCONST("a");
		col.value = &v;
		c.origin = UNCONST(origin);
		c.seq = from + i;
		c.hlc = CLOCK_MAKE(ms, i);
		c.table = t1_name;
		c.pk = pk;
		c.op = LABSYNC__OP__OP_UPSERT;
		c.columns = &colp;
		c.n_columns = 1;
		assert_int_equal(merge_apply_more(s, &cp, NULL, 1, 0, &st), 0);
	}
	assert_int_equal(merge_apply_end(s, 1), 0);
	assert_int_equal(st.applied, n);
}

/* A vector of two origins. */
static void
heard(struct store *s, const char *peer, uint64_t o1, uint64_t o2)
{
	Labsync__Vector		 v = LABSYNC__VECTOR__INIT;
	Labsync__VectorEntry	 e[2] = { LABSYNC__VECTOR_ENTRY__INIT,
				    LABSYNC__VECTOR_ENTRY__INIT };
	Labsync__VectorEntry	*ep[2] = { &e[0], &e[1] };

	e[0].origin = UNCONST("o1");
	e[0].seq = o1;
	e[1].origin = UNCONST("o2");
	e[1].seq = o2;
	v.entries = ep;
	v.n_entries = 2;
	compact_heard(s, peer, &v);
}

static int
step(struct fixture *f, uint64_t after_ms)
{
	int	 n = -1;

	assert_int_equal(compact_step(f->s, f->now_ms, after_ms, 1000, &n), 0);
	return n;
}

static int64_t
log_entries(struct store *s, const char *origin)
{
	sqlite3_stmt	*st;
	int64_t		 n = -1;

	assert_int_equal(sqlite3_prepare_v2(store_db(s), "SELECT count(*)"
	    " FROM labsync_log l JOIN labsync_origin o ON l.key >> 40 = o.id"
	    " WHERE o.name = ?", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, origin, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* What catch-up sends: per origin, how many and the lowest sequence. */
struct served {
	int		 n[2];
	uint64_t	 first[2];
};

static int
served_cb(void *arg, const char *origin, const uint8_t *data, size_t len)
{
	struct served	*sv = arg;
	Labsync__Change	*c = labsync__change__unpack(NULL, len, data);
	int		 i = strcmp(origin, "o1") == 0 ? 0 : 1;

	assert_non_null(c);
	if (sv->n[i]++ == 0)
		sv->first[i] = c->seq;
	labsync__change__free_unpacked(c, NULL);
	return 0;
}

static void
serve(struct store *s, uint64_t o1, uint64_t o2, struct served *sv)
{
	Labsync__Vector		 v = LABSYNC__VECTOR__INIT;
	Labsync__VectorEntry	 e[2] = { LABSYNC__VECTOR_ENTRY__INIT,
				    LABSYNC__VECTOR_ENTRY__INIT };
	Labsync__VectorEntry	*ep[2] = { &e[0], &e[1] };
	int			 more = 0;

	e[0].origin = UNCONST("o1");
	e[0].seq = o1;
	e[1].origin = UNCONST("o2");
	e[1].seq = o2;
	v.entries = ep;
	v.n_entries = 2;
	memset(sv, 0, sizeof(*sv));
	assert_int_equal(changelog_read_missing(s, &v, 1000, 1 << 20,
	    served_cb, sv, &more), 0);
	assert_int_equal(more, 0);
}

static int
setup(void **state)
{
	struct fixture	*f = calloc(1, sizeof(*f));
	char		*names[] = { p1_name, p2_name };

	assert_non_null(f);
	unlink(db_path);
	f->clock = clock_new(NULL);
	f->s = open_store(f->clock);
	f->now_ms = clock_system_ms();
	/* o1: ten changes an hour old; o2: three a second old */
	apply_changes(f->s, "o1", 1, 10, f->now_ms - 3600 * 1000);
	apply_changes(f->s, "o2", 1, 3, f->now_ms - 1000);
	assert_int_equal(compact_peers(f->s, names, 2), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;
	char		 wal[64], shm[64];

	store_free(f->s);
	clock_free(f->clock);
	free(f);
	snprintf(wal, sizeof(wal), "%s-wal", db_path);
	snprintf(shm, sizeof(shm), "%s-shm", db_path);
	unlink(db_path);
	unlink(wal);
	unlink(shm);
	return 0;
}

static void
test_only_what_every_peer_confirmed_goes(void **state)
{
	struct fixture	*f = *state;
	struct served	 sv;
	uint64_t	 oldest;

	assert_int_equal(step(f, 30000), 0);	/* nobody confirmed */
	heard(f->s, "p1", 10, 3);
	assert_int_equal(step(f, 30000), 0);	/* p2 holds all */
	heard(f->s, "p2", 6, 3);
	heard(f->s, "stranger", 10, 3);		/* no configured peer */
	/* o1 up to 6; o2 is younger than compact_after */
	assert_int_equal(step(f, 30000), 6);
	assert_int_equal(log_entries(f->s, "o1"), 4);
	assert_int_equal(log_entries(f->s, "o2"), 3);
	assert_int_equal(changelog_floor(f->s, "o1"), 6);
	assert_int_equal(changelog_floor(f->s, "o2"), 0);
	assert_int_equal(changelog_count(f->s), 7);
	assert_int_equal(step(f, 30000), 0);	/* nothing more to do */

	/* p2 holds o1's 7..10 back, since an hour */
	assert_int_equal(compact_held_back(f->s, "p2", &oldest), 4);
	assert_true(oldest + 3500 * 1000 < f->now_ms);
	assert_int_equal(compact_held_back(f->s, "p1", &oldest), 0);
	assert_int_equal(oldest, 0);

	/* a peer behind the floor gets none of o1, the rest whole */
	serve(f->s, 3, 0, &sv);
	assert_int_equal(sv.n[0], 0);
	assert_int_equal(sv.n[1], 3);
	assert_int_equal(sv.first[1], 1);
	serve(f->s, 6, 3, &sv);
	assert_int_equal(sv.n[0], 4);
	assert_int_equal(sv.first[0], 7);
	assert_int_equal(sv.n[1], 0);

	/* compact_after 0: o2 goes too */
	assert_int_equal(step(f, 0), 3);
	assert_int_equal(log_entries(f->s, "o2"), 0);
}

static void
test_never_inside_a_held_transaction(void **state)
{
	struct fixture	*f = *state;

	heard(f->s, "p1", 10, 3);
	heard(f->s, "p2", 10, 3);
	assert_int_equal(merge_apply_begin(f->s), 0);
	assert_int_equal(step(f, 30000), 0);
	assert_int_equal(merge_apply_end(f->s, 1), 0);
	assert_int_equal(step(f, 30000), 10);
}

static void
test_what_peers_confirmed_survives_a_reopen(void **state)
{
	struct fixture	*f = *state;
	char		*names[] = { p1_name, p2_name }, *p1only[] = { p1_name };

	heard(f->s, "p1", 10, 3);
	heard(f->s, "p2", 4, 3);
	assert_int_equal(step(f, 30000), 4);
	store_free(f->s);
	f->s = open_store(f->clock);
	assert_int_equal(changelog_floor(f->s, "o1"), 4);
	assert_int_equal(compact_peers(f->s, names, 2), 0);
	assert_int_equal(compact_confirmed(f->s, "p2", "o1"), 4);
	assert_int_equal(step(f, 30000), 0);	/* p2 still at 4 */
	assert_int_equal(log_entries(f->s, "o1"), 6);

	/* p2 leaves the configuration: it holds nothing any more */
	assert_int_equal(compact_peers(f->s, p1only, 1), 0);
	assert_int_equal(step(f, 30000), 6);
	assert_int_equal(log_entries(f->s, "o1"), 0);
	assert_int_equal(changelog_floor(f->s, "o1"), 10);
	store_free(f->s);
	f->s = open_store(f->clock);
	assert_int_equal(compact_peers(f->s, names, 2), 0);
	assert_int_equal(compact_confirmed(f->s, "p2", "o1"), 0);
	assert_int_equal(compact_confirmed(f->s, "p1", "o1"), 10);
}

static void
test_no_peer_keeps_the_log(void **state)
{
	struct fixture	*f = *state;

	assert_int_equal(compact_peers(f->s, NULL, 0), 0);
	assert_int_equal(step(f, 0), 0);
	assert_int_equal(log_entries(f->s, "o1"), 10);
}

static int
setup_files(void **state)
{
	FILE	*fp;
	int	 fd;

	(void)state;
	if ((fd = mkstemp(schema_path)) == -1 ||
	    (fp = fdopen(fd, "w")) == NULL)
		return -1;
	fputs(schema_sql, fp);
	fclose(fp);
	if ((fd = mkstemp(db_path)) == -1)
		return -1;
	close(fd);
	return 0;
}

static int
teardown_files(void **state)
{
	(void)state;
	unlink(schema_path);
	unlink(db_path);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_only_what_every_peer_confirmed_goes, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_never_inside_a_held_transaction, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_what_peers_confirmed_survives_a_reopen, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_no_peer_keeps_the_log,
		    setup, teardown),
	};

	return cmocka_run_group_tests_name("compact", tests, setup_files,
	    teardown_files);
}
