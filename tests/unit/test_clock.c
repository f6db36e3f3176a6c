/*
 * test_clock.c: the hybrid logical clock. Timestamps are 48 bits of
 * milliseconds and a 16-bit counter; clock_now never repeats or goes back,
 * whatever the physical clock does, and absorbing a remote timestamp puts
 * every later local timestamp after it.
 */
#include <stdlib.h>
#include <time.h>

#include "unit.h"

#include "clock.h"

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
	t = clock_now(c);
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

	first = prev = clock_now(c);
	assert_int_equal(first, CLOCK_MAKE(fake_ms, 0));
	for (int i = 1; i <= 1000; i++) {
		t = clock_now(c);
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
		clock_now(c);
	assert_int_equal(clock_last(c) & 0xffff, 4);
	fake_ms += 1;
	t = clock_now(c);
	assert_int_equal(t, CLOCK_MAKE(fake_ms, 0));
}

static void
test_now_stays_ahead_when_physical_clock_goes_backwards(void **state)
{
	struct clock	*c = *state;
	uint64_t	 before, t, high = fake_ms;

	before = clock_now(c);
	fake_ms -= 60 * 1000;		/* NTP step back by a minute */
	t = clock_now(c);
	assert_true(t > before);
	assert_int_equal(CLOCK_MS(t), high);
	assert_int_equal(t & 0xffff, 1);
	fake_ms = 0;			/* and to the epoch */
	assert_true(clock_now(c) > t);
	/* physical time catches up: back to physical, counter 0 */
	fake_ms = high + 1;
	assert_int_equal(clock_now(c), CLOCK_MAKE(high + 1, 0));
}

static void
test_counter_overflow_carries_into_ms(void **state)
{
	struct clock	*c = *state;
	uint64_t	 prev, t;

	prev = clock_now(c);
	for (int i = 0; i < 0x10000 + 10; i++) {
		t = clock_now(c);
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

	clock_now(c);
	clock_absorb(c, remote);
	assert_int_equal(clock_last(c), remote);
	t = clock_now(c);
	assert_true(t > remote);
	assert_int_equal(t, remote + 1);
	assert_true(clock_now(c) > t);
	/* physical time passes the remote stamp: physical again */
	fake_ms += 3600 * 1000 + 1;
	assert_int_equal(clock_now(c), CLOCK_MAKE(fake_ms, 0));
}

static void
test_absorb_of_older_value_changes_nothing(void **state)
{
	struct clock	*c = *state;
	uint64_t	 t = clock_now(c);

	clock_absorb(c, t - 1);
	clock_absorb(c, CLOCK_MAKE(fake_ms - 1000, 0xffff));
	clock_absorb(c, 0);
	clock_absorb(c, t);
	assert_int_equal(clock_last(c), t);
	assert_int_equal(clock_now(c), t + 1);
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
		t = clock_now(c);
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
	a = clock_now(c);
	b = clock_now(c);
	assert_true(b > a);
	assert_true(clock_system_ms() + 5000 > CLOCK_MS(b));
	clock_free(c);
	clock_free(NULL);
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
	};

	return cmocka_run_group_tests_name("clock", tests, NULL, NULL);
}
