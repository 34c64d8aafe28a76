/*
 * test_ops: the operations built-ins: stats (counters by endpoint and
 * error code, latency percentiles), clients, kill_client and monitor.
 * Loopback clients are trusted; the refusal of untrusted clients needs a
 * non-loopback address and is covered by tests/daemon/test_netns_ops.sh.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <unistd.h>

#include "integ/harness.h"

static json_t *
call(int fd, int id, const char *endpoint, const char *data)
{
	json_t *r;

	assert_int_equal(th_sendf(fd, "{\"id\":%d,\"endpoint\":\"%s\","
	    "\"data\":%s}", id, endpoint, data != NULL ? data : "null"), 0);
	r = th_recv(fd, 0);
	assert_non_null(r);
	assert_int_equal(th_id(r), id);
	return r;
}

static void
test_stats(void **state)
{
	witch_server_t *srv = th_server_start(NULL, NULL, NULL);
	int fd = th_connect(witch_server_port(srv)), i;
	json_t *r, *res, *lat;

	for (i = 0; i < 3; i++)
		json_decref(call(fd, i, "echo", "\"x\""));
	r = call(fd, 10, "nope", NULL);
	assert_string_equal(th_err_code(r), "unknown_endpoint");
	json_decref(r);
	r = call(fd, 11, "stats", NULL);
	res = json_object_get(r, "result");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
	    json_object_get(res, "endpoints"), "echo"), "calls")), 3);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
	    json_object_get(res, "endpoints"), "echo"), "errors")), 0);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
	    res, "errors"), "unknown_endpoint")), 1);
	assert_int_equal(json_integer_value(json_object_get(res,
	    "connections_accepted")), 1);
	lat = json_object_get(res, "latency");
	assert_true(json_integer_value(json_object_get(lat, "count")) >= 3);
	assert_true(json_real_value(json_object_get(lat, "p50_ms")) > 0);
	assert_true(json_real_value(json_object_get(lat, "p99_ms")) >=
	    json_real_value(json_object_get(lat, "p50_ms")));
	json_decref(r);
	close(fd);
	witch_server_free(srv);
}

static void
test_clients_and_kill(void **state)
{
	witch_server_t *srv = th_server_start(NULL, NULL, NULL);
	int a = th_connect(witch_server_port(srv));
	int b = th_connect(witch_server_port(srv));
	json_t *r, *list, *row, *ev;
	json_int_t bid = 0;
	size_t i;

	json_decref(call(b, 1, "hello", "{\"name\":\"victim\"}"));
	json_decref(call(a, 2, "ping", NULL));
	r = call(a, 3, "clients", NULL);
	list = json_object_get(r, "result");
	assert_int_equal(json_array_size(list), 2);
	json_array_foreach(list, i, row) {
		assert_non_null(strstr(json_string_value(json_object_get(row,
		    "addr")), "127.0.0.1:"));
		assert_false(json_is_true(json_object_get(row, "local")));
		if (strcmp(json_string_value(json_object_get(row, "name")),
		    "victim") == 0) {
			bid = json_integer_value(json_object_get(row, "id"));
			assert_int_equal(json_integer_value(json_object_get(row,
			    "requests")), 1);
		}
	}
	assert_true(bid > 0);
	json_decref(r);

	/* Errors: no such client, bad data. */
	r = call(a, 4, "kill_client", "{\"id\":999999}");
	assert_string_equal(th_err_code(r), "invalid_argument");
	json_decref(r);
	r = call(a, 5, "kill_client", "{\"id\":\"x\"}");
	assert_string_equal(th_err_code(r), "invalid_request");
	json_decref(r);

	r = call(a, 6, "kill_client", NULL);
	assert_string_equal(th_err_code(r), "invalid_request");
	json_decref(r);
	assert_int_equal(th_sendf(a, "{\"id\":7,\"endpoint\":\"kill_client\","
	    "\"data\":{\"id\":%lld}}", (long long)bid), 0);
	r = th_recv(a, 0);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r,
	    "result"), "killed")), bid);
	json_decref(r);
	/* The victim hears why, then EOF. */
	ev = th_recv(b, 0);
	assert_non_null(ev);
	assert_string_equal(json_string_value(json_object_get(ev, "event")),
	    "closing");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    ev, "data"), "reason")), "killed");
	json_decref(ev);
	assert_true(th_wait_eof(b, TH_TIMEOUT_MS));
	close(b);
	/* Polled: the kill completes on the reactor asynchronously. */
	for (i = 0; i < 200 && witch_server_clients(srv) != 1; i++)
		usleep(10000);
	assert_int_equal(witch_server_clients(srv), 1);
	close(a);
	witch_server_free(srv);
}

static void
test_monitor(void **state)
{
	witch_server_t *srv = th_server_start(NULL, NULL, NULL);
	int m = th_connect(witch_server_port(srv));
	int x = th_connect(witch_server_port(srv));
	json_t *r, *ev, *d;
	int i;

	r = call(m, 1, "monitor", NULL);
	assert_true(json_is_true(json_object_get(json_object_get(r, "result"),
	    "monitoring")));
	json_decref(r);
	for (i = 0; i < 3; i++)
		json_decref(call(x, 100 + i, "echo", "{\"k\":[1,2]}"));
	/* Exactly the three requests, in order, with their data. */
	for (i = 0; i < 3; i++) {
		ev = th_recv(m, 0);
		assert_non_null(ev);
		assert_string_equal(json_string_value(json_object_get(ev,
		    "event")), "monitor");
		d = json_object_get(ev, "data");
		assert_string_equal(json_string_value(json_object_get(d,
		    "endpoint")), "echo");
		assert_int_equal(json_integer_value(json_object_get(d, "id")),
		    100 + i);
		assert_int_equal(json_array_size(json_object_get(
		    json_object_get(d, "data"), "k")), 2);
		assert_true(json_real_value(json_object_get(d, "time")) > 1e9);
		json_decref(ev);
	}
	/* The monitor's own requests are not echoed to it. */
	r = call(m, 2, "ping", NULL);
	assert_null(th_err_code(r));
	json_decref(r);
	close(x);
	close(m);
	witch_server_free(srv);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stats),
		cmocka_unit_test(test_clients_and_kill),
		cmocka_unit_test(test_monitor),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
