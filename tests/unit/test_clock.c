/*
 * test_clock.c: the hybrid logical clock. Timestamps are 48 bits of
 * milliseconds and a 16-bit counter; a local stamp never repeats or goes
 * back, whatever the physical clock does, and absorbing a remote
 * timestamp puts every later local stamp after it. Local writes are
 * stamped by the capture triggers with clock_step_sql, and the daemon
 * hands what it absorbed to them with clock_absorb_sql: both run here in
 * a real SQLite connection and must agree with clock_step and
 * clock_absorb in every case.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <sqlite3.h>

#include "unit.h"

#include "clock.h"

/*
 * A local stamp as the daemon's side makes it: the physical clock, the
 * last stamp kept (struct clock absorbs), the step rule.
 */
static uint64_t
stamp(struct clock *c)
{
	uint64_t	 t = clock_step(clock_last(c), clock_physical_ms(c));

	clock_absorb(c, t);
	return t;
}

/* The physical clock the tests drive. */
static uint64_t fake_ms;

static uint64_t
fake_now(void)
{
	return fake_ms;
}

static int
setup_clock(void **state)
{
	fake_ms = 1700000000000ULL;
	if ((*state = clock_new(fake_now)) == NULL)
		return -1;
	return 0;
}

static int
teardown_clock(void **state)
{
	clock_free(*state);
	return 0;
}

static void
test_layout_is_48_bit_ms_and_16_bit_counter(void **state)
{
	struct clock	*c = *state;
	uint64_t	 t;

	assert_int_equal(CLOCK_MAKE(0x123456789abcULL, 0x4321),
	    0x123456789abc4321ULL);
	assert_int_equal(CLOCK_MS(0x123456789abc4321ULL), 0x123456789abcULL);
	assert_int_equal(CLOCK_MAKE(5, 0x1ffff), CLOCK_MAKE(5, 0xffff));
	assert_int_equal(CLOCK_MS(CLOCK_MAKE(0xffffffffffffULL, 0xffff)),
	    0xffffffffffffULL);

	fake_ms = 0x123456789abcULL;
	t = stamp(c);
	assert_int_equal(CLOCK_MS(t), fake_ms);
	assert_int_equal(t & 0xffff, 0);
	assert_int_equal(clock_last(c), t);
	assert_int_equal(clock_physical_ms(c), fake_ms);

	/* only 48 bits of milliseconds are used */
	fake_ms = (1ULL << 48) + 5;
	assert_int_equal(clock_physical_ms(c), 5);
}

static void
test_now_counts_up_while_physical_clock_stands_still(void **state)
{
	struct clock	*c = *state;
	uint64_t	 first, prev, t;

	first = prev = stamp(c);
	assert_int_equal(first, CLOCK_MAKE(fake_ms, 0));
	for (int i = 1; i <= 1000; i++) {
		t = stamp(c);
		assert_true(t > prev);
		assert_int_equal(CLOCK_MS(t), fake_ms);
		assert_int_equal(t & 0xffff, (uint64_t)i);
		prev = t;
	}
}

static void
test_now_resets_counter_when_physical_clock_moves_on(void **state)
{
	struct clock	*c = *state;
	uint64_t	 t;

	for (int i = 0; i < 5; i++)
		stamp(c);
	assert_int_equal(clock_last(c) & 0xffff, 4);
	fake_ms += 1;
	t = stamp(c);
	assert_int_equal(t, CLOCK_MAKE(fake_ms, 0));
}

static void
test_now_stays_ahead_when_physical_clock_goes_backwards(void **state)
{
	struct clock	*c = *state;
	uint64_t	 before, t, high = fake_ms;

	before = stamp(c);
	fake_ms -= 60 * 1000;		/* NTP step back by a minute */
	t = stamp(c);
	assert_true(t > before);
	assert_int_equal(CLOCK_MS(t), high);
	assert_int_equal(t & 0xffff, 1);
	fake_ms = 0;			/* and to the epoch */
	assert_true(stamp(c) > t);
	/* physical time catches up: back to physical, counter 0 */
	fake_ms = high + 1;
	assert_int_equal(stamp(c), CLOCK_MAKE(high + 1, 0));
}

static void
test_counter_overflow_carries_into_ms(void **state)
{
	struct clock	*c = *state;
	uint64_t	 prev, t;

	prev = stamp(c);
	for (int i = 0; i < 0x10000 + 10; i++) {
		t = stamp(c);
		assert_true(t > prev);
		prev = t;
	}
	assert_int_equal(CLOCK_MS(prev), fake_ms + 1);
	assert_int_equal(prev & 0xffff, 10);
}

static void
test_absorb_far_ahead_puts_now_after_remote(void **state)
{
	struct clock	*c = *state;
	uint64_t	 remote = CLOCK_MAKE(fake_ms + 3600 * 1000, 7), t;

	stamp(c);
	clock_absorb(c, remote);
	assert_int_equal(clock_last(c), remote);
	t = stamp(c);
	assert_true(t > remote);
	assert_int_equal(t, remote + 1);
	assert_true(stamp(c) > t);
	/* physical time passes the remote stamp: physical again */
	fake_ms += 3600 * 1000 + 1;
	assert_int_equal(stamp(c), CLOCK_MAKE(fake_ms, 0));
}

static void
test_absorb_of_older_value_changes_nothing(void **state)
{
	struct clock	*c = *state;
	uint64_t	 t = stamp(c);

	clock_absorb(c, t - 1);
	clock_absorb(c, CLOCK_MAKE(fake_ms - 1000, 0xffff));
	clock_absorb(c, 0);
	clock_absorb(c, t);
	assert_int_equal(clock_last(c), t);
	assert_int_equal(stamp(c), t + 1);
}

static void
test_random_walk_is_strictly_monotonic(void **state)
{
	struct clock	*c = *state;
	struct unit_rng	 r;
	uint64_t	 prev = 0, floor = 0, t;

	unit_rng_seed(&r, 42);
	for (int i = 0; i < 20000; i++) {
		switch (unit_rng_below(&r, 4)) {
		case 0:
			fake_ms += unit_rng_below(&r, 5);
			break;
		case 1:
			fake_ms -= unit_rng_below(&r, 5);
			break;
		case 2: {
			/* a remote stamp near our time, ahead or behind */
			uint64_t ms = fake_ms + unit_rng_below(&r, 20) - 10;
			uint64_t remote = CLOCK_MAKE(ms, unit_rng_below(&r,
			    0x10000));

			clock_absorb(c, remote);
			if (remote > floor)
				floor = remote;
			break;
		}
		default:
			break;
		}
		t = stamp(c);
		assert_true(t > prev);
		assert_true(t > floor);
		assert_true(t >= CLOCK_MAKE(fake_ms, 0));
		prev = floor = t;
	}
}

static void
test_null_time_source_is_the_system_clock(void **state)
{
	struct clock	*c = clock_new(NULL);
	uint64_t	 sys = (uint64_t)time(NULL) * 1000, phys, a, b;

	(void)state;
	assert_non_null(c);
	phys = clock_physical_ms(c);
	assert_true(phys + 5000 > sys && phys < sys + 5000);
	a = stamp(c);
	b = stamp(c);
	assert_true(b > a);
	assert_true(clock_system_ms() + 5000 > CLOCK_MS(b));
	clock_free(c);
	clock_free(NULL);
}

/* --- the SQL forms, in SQLite ------------------------------------------- */

static sqlite3 *
sql_open(void)
{
	sqlite3	*db;

	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	return db;
}

/* clock_step_sql over parameters last and now_ms, evaluated. */
static uint64_t
sql_step(sqlite3 *db, uint64_t last, uint64_t now_ms)
{
	char		 expr[256], sql[300];
	sqlite3_stmt	*st;
	uint64_t	 v;

	assert_int_equal(clock_step_sql(expr, sizeof(expr), "?1", "?2"), 0);
	snprintf(sql, sizeof(sql), "SELECT %s", expr);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL),
	    SQLITE_OK);
	sqlite3_bind_int64(st, 1, (int64_t)last);
	sqlite3_bind_int64(st, 2, (int64_t)now_ms);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_type(st, 0), SQLITE_INTEGER);
	v = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void
test_step_sql_agrees_with_c_on_the_edges(void **state)
{
	const uint64_t	 ms = 1700000000000ULL;
	const struct { uint64_t last, now; } cases[] = {
		{ 0, ms },				/* first stamp */
		{ CLOCK_MAKE(ms, 0), ms },		/* equal ms */
		{ CLOCK_MAKE(ms, 5), ms },		/* equal ms, counting */
		{ CLOCK_MAKE(ms, 5), ms + 1 },		/* wall clock moved on */
		{ CLOCK_MAKE(ms, 5), ms - 60000 },	/* wall clock behind */
		{ CLOCK_MAKE(ms, 0xffff), ms },		/* counter overflows */
		{ CLOCK_MAKE(ms, 0xffff), ms - 1 },
		{ CLOCK_MAKE(ms + 3600000, 7), ms },	/* a remote far ahead */
		{ CLOCK_MAKE(ms, 0), 0 },		/* wall clock at 0 */
		{ 0, (1ULL << 48) + 5 },		/* only 48 bits of ms */
		{ CLOCK_MAKE(CLOCK_MS_MASK, 0xfffe), CLOCK_MS_MASK },
	};
	sqlite3	*db = sql_open();

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t c = clock_step(cases[i].last, cases[i].now);

		assert_true(c > cases[i].last);
		assert_int_equal(sql_step(db, cases[i].last, cases[i].now), c);
	}
	/* the rule itself on the edges */
	assert_int_equal(clock_step(CLOCK_MAKE(ms, 0xffff), ms),
	    CLOCK_MAKE(ms + 1, 0));
	assert_int_equal(clock_step(CLOCK_MAKE(ms, 5), ms - 60000),
	    CLOCK_MAKE(ms, 6));
	assert_int_equal(clock_step(CLOCK_MAKE(ms, 5), ms + 1),
	    CLOCK_MAKE(ms + 1, 0));
	sqlite3_close(db);
}

/*
 * The capture triggers' statement and the daemon's commit, on a table
 * like labsync_state: a random walk of the wall clock, local stamps and
 * absorbed remote ones, kept in step with struct clock.
 */
static void
test_sql_walk_agrees_with_c(void **state)
{
	struct clock	*c = *state;
	struct unit_rng	 r;
	sqlite3		*db = sql_open();
	sqlite3_stmt	*step, *absorb, *get;
	char		 expr[256], sql[400];

	assert_int_equal(sqlite3_exec(db, "CREATE TABLE st(hlc INTEGER NOT "
	    "NULL); INSERT INTO st VALUES (0)", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(clock_step_sql(expr, sizeof(expr), "hlc", "?"), 0);
	snprintf(sql, sizeof(sql), "UPDATE st SET hlc = %s", expr);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &step, NULL),
	    SQLITE_OK);
	assert_int_equal(clock_absorb_sql(expr, sizeof(expr), "hlc", "?"), 0);
	snprintf(sql, sizeof(sql), "UPDATE st SET hlc = %s", expr);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &absorb, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT hlc FROM st", -1,
	    &get, NULL), SQLITE_OK);

	unit_rng_seed(&r, 7);
	for (int i = 0; i < 20000; i++) {
		uint64_t	 want, got;

		switch (unit_rng_below(&r, 5)) {
		case 0:
			fake_ms += unit_rng_below(&r, 3);
			break;
		case 1:
			fake_ms -= unit_rng_below(&r, 3);
			break;
		case 2: {
			uint64_t remote = CLOCK_MAKE(fake_ms +
			    unit_rng_below(&r, 20) - 10,
			    unit_rng_below(&r, 0x10000));

			clock_absorb(c, remote);
			sqlite3_bind_int64(absorb, 1, (int64_t)remote);
			assert_int_equal(sqlite3_step(absorb), SQLITE_DONE);
			sqlite3_reset(absorb);
			break;
		}
		default:
			break;
		}
		want = stamp(c);
		sqlite3_bind_int64(step, 1, (int64_t)fake_ms);
		assert_int_equal(sqlite3_step(step), SQLITE_DONE);
		sqlite3_reset(step);
		assert_int_equal(sqlite3_step(get), SQLITE_ROW);
		got = (uint64_t)sqlite3_column_int64(get, 0);
		sqlite3_reset(get);
		assert_int_equal(got, want);
	}
	sqlite3_finalize(step);
	sqlite3_finalize(absorb);
	sqlite3_finalize(get);
	sqlite3_close(db);
}

/* CLOCK_NOW_MS_SQL reads the same clock as clock_system_ms. */
static void
test_sql_wall_clock_is_the_system_clock(void **state)
{
	sqlite3		*db = sql_open();
	sqlite3_stmt	*st;
	uint64_t	 before, now, after;

	(void)state;
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT " CLOCK_NOW_MS_SQL,
	    -1, &st, NULL), SQLITE_OK);
	before = clock_system_ms();
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	now = (uint64_t)sqlite3_column_int64(st, 0);
	after = clock_system_ms();
	sqlite3_finalize(st);
	sqlite3_close(db);
	/* julianday keeps milliseconds, rounded */
	assert_true(now + 1 >= before && now <= after + 1);
}

/* A buffer too small for the SQL is refused, not cut short. */
static void
test_sql_that_does_not_fit_is_refused(void **state)
{
	char	 buf[16];

	(void)state;
	assert_int_equal(clock_step_sql(buf, sizeof(buf), "hlc",
	    CLOCK_NOW_MS_SQL), -1);
	assert_int_equal(clock_absorb_sql(buf, sizeof(buf), "hlc",
	    "some_long_parameter"), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_layout_is_48_bit_ms_and_16_bit_counter,
		    setup_clock, teardown_clock),
		cmocka_unit_test_setup_teardown(
		    test_now_counts_up_while_physical_clock_stands_still,
		    setup_clock, teardown_clock),
		cmocka_unit_test_setup_teardown(
		    test_now_resets_counter_when_physical_clock_moves_on,
		    setup_clock, teardown_clock),
		cmocka_unit_test_setup_teardown(
		    test_now_stays_ahead_when_physical_clock_goes_backwards,
		    setup_clock, teardown_clock),
		cmocka_unit_test_setup_teardown(
		    test_counter_overflow_carries_into_ms,
		    setup_clock, teardown_clock),
		cmocka_unit_test_setup_teardown(
		    test_absorb_far_ahead_puts_now_after_remote,
		    setup_clock, teardown_clock),
		cmocka_unit_test_setup_teardown(
		    test_absorb_of_older_value_changes_nothing,
		    setup_clock, teardown_clock),
		cmocka_unit_test_setup_teardown(
		    test_random_walk_is_strictly_monotonic,
		    setup_clock, teardown_clock),
		cmocka_unit_test(test_null_time_source_is_the_system_clock),
		cmocka_unit_test(test_step_sql_agrees_with_c_on_the_edges),
		cmocka_unit_test_setup_teardown(test_sql_walk_agrees_with_c,
		    setup_clock, teardown_clock),
		cmocka_unit_test(test_sql_wall_clock_is_the_system_clock),
		cmocka_unit_test(test_sql_that_does_not_fit_is_refused),
	};

	return cmocka_run_group_tests_name("clock", tests, NULL, NULL);
}
