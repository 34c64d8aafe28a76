/*
 * test_pollfail: a poller that fails does not make the reactor spin.
 *
 * witch__reactor_fail_waits() makes the reactor's next waits for events
 * fail (EBADF, ENOMEM).  The test counts how many waits the reactor
 * makes while they fail: with the back-off (1 ms, doubling) a few in half
 * a second; a loop that ignores the error would make hundreds of
 * thousands.  The failures are counted in status, the server serves
 * again as soon as the poller works, and it stops cleanly while the
 * poller is failing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "reactor/reactor.h"
#include "integ/harness.h"

#define FOREVER 1000000L	/* waits to fail: more than any test makes */

/* Waits the reactor made while every wait failed, over window_ms. */
static long
failed_waits(int err, unsigned window_ms)
{
	long left;

	witch__reactor_fail_waits(FOREVER, err);
	th_sleep_ms(window_ms);
	left = witch__reactor_fail_waits(0, 0);
	return FOREVER - left;
}

static void
test_backoff(void **state)
{
	witch_server_t *srv = th_server_start(NULL, NULL, NULL);
	int fd = th_connect(witch_server_port(srv));
	json_int_t before;
	long n;

	th_ping_ok(fd);
	before = th_status_get(fd, "poll_errors");
	assert_int_equal(before, 0);
	/*
	 * 500 ms of failures: pauses of 1, 2, 4 ... 256 ms fill it with
	 * about 9 waits.  Allow for a slow machine, never for a spin.
	 */
	n = failed_waits(EBADF, 500);
	print_message("failing poller (EBADF): %ld waits in 500 ms\n", n);
	assert_true(n >= 3);
	assert_true(n <= 16);
	/* Served again once the poller works; every failure counted. */
	th_ping_ok(fd);
	assert_int_equal(th_status_get(fd, "poll_errors"), before + n);
	/*
	 * The pause starts again from 1 ms after a successful wait (the
	 * first failure waits for the reactor's idle wait to end: <= 100
	 * ms; then 1 + 2 + ... + 64 ms).
	 */
	n = failed_waits(ENOMEM, 300);
	print_message("failing poller (ENOMEM): %ld waits in 300 ms\n", n);
	assert_true(n >= 3);
	assert_true(n <= 12);
	th_ping_ok(fd);
	close(fd);
	witch_server_free(srv);
}

static void
test_stop_while_failing(void **state)
{
	witch_server_t *srv = th_server_start(NULL, NULL, NULL);
	int fd = th_connect(witch_server_port(srv));
	uint64_t t0;

	th_ping_ok(fd);
	witch__reactor_fail_waits(FOREVER, EBADF);
	th_sleep_ms(1500);		/* at the longest pause by now */
	t0 = th_now_ms();
	assert_int_equal(witch_server_stop(srv, 0), 0);
	print_message("stop with a failing poller: %llu ms\n",
	    (unsigned long long)(th_now_ms() - t0));
	assert_true(th_now_ms() - t0 < 5000);
	witch__reactor_fail_waits(0, 0);
	/* The client was told and closed, not left hanging. */
	assert_int_equal(th_wait_eof(fd, 5000), 1);
	close(fd);
	witch_server_free(srv);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_stop_while_failing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
