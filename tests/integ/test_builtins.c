/*
 * test_builtins: every built-in endpoint of protocol.md over a real
 * socket, and the hello handshake (protocol choice, source hash).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <unistd.h>

#include "integ/harness.h"

static int
h_add(witch_request_t *req, void *ud)
{
	json_t *d = witch_request_data(req);

	if (!json_is_array(d) || json_array_size(d) != 2)
		return witch_request_error(req, WITCH_EINVAL,
		    "add wants [a, b]");
	return witch_request_reply(req, json_integer(
	    json_integer_value(json_array_get(d, 0)) +
	    json_integer_value(json_array_get(d, 1))));
}

static int
h_v2only(witch_request_t *req, void *ud)
{
	return witch_request_reply(req, json_string(
	    witch_request_protocol(req)));
}

static void
reg(witch_server_t *srv, void *arg)
{
	const char *v2[] = { "v2" };

	assert_int_equal(witch_server_register_endpoint(srv, "add", h_add,
	    NULL), 0);
	assert_int_equal(witch_server_register_endpoint(srv, "add", h_add,
	    NULL), WITCH_EEXISTS);
	assert_int_equal(witch_server_register_endpoint(srv, "ping", h_add,
	    NULL), WITCH_EEXISTS);
	assert_int_equal(witch_server_register_endpoint_for(srv, "newer", v2,
	    1, h_v2only, NULL), 0);
}

static void
reg_add(witch_server_t *srv, void *arg)
{
	assert_int_equal(witch_server_register_endpoint(srv, "add", h_add,
	    NULL), 0);
}

struct fixture {
	witch_server_t	*srv;
	int		 fd;
};

static int
setup(void **state)
{
	static struct fixture f;
	witch_server_config_t *cfg = th_config();
	const char *protos[] = { "v1", "v2" };

	assert_int_equal(witch_server_config_set_protocols(cfg, protos, 2),
	    0);
	witch_server_config_set_name(cfg, "builtins-test");
	witch_server_config_set_project_id(cfg, "proj");
	assert_int_equal(witch_server_config_set_max_frame(cfg, 123456), 0);
	f.srv = th_server_start(cfg, reg, NULL);
	witch_server_config_free(cfg);
	f.fd = th_connect(witch_server_port(f.srv));
	*state = &f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	close(f->fd);
	witch_server_free(f->srv);
	return 0;
}

static void
test_ping_echo(void **state)
{
	struct fixture *f = *state;
	json_t *r, *res;

	th_send(f->fd, "{\"id\":1,\"endpoint\":\"ping\"}");
	r = th_recv(f->fd, 0);
	assert_non_null(r);
	assert_int_equal(th_id(r), 1);
	res = json_object_get(r, "result");
	assert_true(json_is_true(json_object_get(res, "pong")));
	assert_true(json_real_value(json_object_get(res, "time")) > 1.0e9);
	json_decref(r);

	th_send(f->fd, "{\"id\":\"s\",\"endpoint\":\"echo\","
	    "\"data\":{\"a\":[1,2,\"\\u00e9\"]}}");
	r = th_recv(f->fd, 0);
	assert_non_null(r);
	assert_string_equal(json_string_value(json_object_get(r, "id")), "s");
	res = json_object_get(json_object_get(r, "result"), "echo");
	assert_int_equal(json_array_size(json_object_get(res, "a")), 3);
	assert_string_equal(json_string_value(json_array_get(
	    json_object_get(res, "a"), 2)), "\xc3\xa9");
	json_decref(r);

	/* No id: the reply still comes, with id null. */
	th_send(f->fd, "{\"endpoint\":\"echo\",\"data\":7}");
	r = th_recv(f->fd, 0);
	assert_non_null(r);
	assert_true(json_is_null(json_object_get(r, "id")));
	assert_int_equal(json_integer_value(json_object_get(
	    json_object_get(r, "result"), "echo")), 7);
	json_decref(r);
}

static void
test_info_status_peers(void **state)
{
	struct fixture *f = *state;
	json_t *r, *res;

	th_send(f->fd, "{\"id\":2,\"endpoint\":\"info\"}");
	r = th_recv(f->fd, 0);
	res = json_object_get(r, "result");
	assert_string_equal(json_string_value(json_object_get(res, "name")),
	    "builtins-test");
	assert_string_equal(json_string_value(json_object_get(res,
	    "project_id")), "proj");
	assert_string_equal(json_string_value(json_object_get(res,
	    "server_id")), witch_server_id(f->srv));
	assert_string_equal(json_string_value(json_object_get(res,
	    "source_hash")), witch_server_source_hash(f->srv));
	assert_int_equal(strlen(witch_server_source_hash(f->srv)), 32);
	assert_string_equal(json_string_value(json_object_get(res,
	    "version")), witch_version());
	assert_non_null(json_object_get(json_object_get(res, "endpoints"),
	    "add"));
	assert_int_equal(json_array_size(json_object_get(json_object_get(res,
	    "endpoints"), "newer")), 1);
	json_decref(r);

	th_send(f->fd, "{\"id\":3,\"endpoint\":\"status\"}");
	r = th_recv(f->fd, 0);
	res = json_object_get(r, "result");
	assert_int_equal(json_integer_value(json_object_get(res, "clients")),
	    1);
	assert_int_equal(json_integer_value(json_object_get(res,
	    "max_clients")), WITCH_DEFAULT_MAX_CLIENTS);
	assert_true(json_integer_value(json_object_get(res,
	    "requests_served")) >= 1);
	assert_true(json_is_array(json_object_get(res, "peers")));
	json_decref(r);

	th_send(f->fd, "{\"id\":4,\"endpoint\":\"peer_list\"}");
	r = th_recv(f->fd, 0);
	assert_true(json_is_array(json_object_get(r, "result")));
	assert_int_equal(json_array_size(json_object_get(r, "result")), 0);
	json_decref(r);
}

static void
test_user_endpoint(void **state)
{
	struct fixture *f = *state;
	json_t *r;

	th_send(f->fd, "{\"id\":5,\"endpoint\":\"add\",\"data\":[40,2]}");
	r = th_recv(f->fd, 0);
	assert_int_equal(json_integer_value(json_object_get(r, "result")), 42);
	json_decref(r);
	/* A handler that returns an error: code and message come through. */
	th_send(f->fd, "{\"id\":6,\"endpoint\":\"add\",\"data\":\"x\"}");
	r = th_recv(f->fd, 0);
	assert_string_equal(th_err_code(r), "invalid_argument");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    r, "error"), "message")), "add wants [a, b]");
	json_decref(r);
}

static void
test_hello_protocols(void **state)
{
	struct fixture *f = *state;
	json_t *r, *res;

	/* Before hello the connection speaks v1: v2-only is unknown. */
	th_send(f->fd, "{\"id\":7,\"endpoint\":\"newer\"}");
	r = th_recv(f->fd, 0);
	assert_string_equal(th_err_code(r), "unknown_endpoint");
	json_decref(r);

	th_send(f->fd, "{\"id\":8,\"endpoint\":\"hello\",\"data\":"
	    "{\"protocols\":[\"v9\"]}}");
	r = th_recv(f->fd, 0);
	assert_string_equal(th_err_code(r), "unsupported_protocol");
	json_decref(r);

	th_send(f->fd, "{\"id\":9,\"endpoint\":\"hello\",\"data\":"
	    "{\"protocols\":[\"v9\",\"v2\",\"v1\"],\"name\":\"t\"}}");
	r = th_recv(f->fd, 0);
	res = json_object_get(r, "result");
	assert_string_equal(json_string_value(json_object_get(res,
	    "protocol")), "v2");
	assert_string_equal(json_string_value(json_object_get(res,
	    "server_id")), witch_server_id(f->srv));
	/* The client learns the largest frame it may send. */
	assert_int_equal(json_integer_value(json_object_get(res,
	    "max_frame")), 123456);
	json_decref(r);

	th_send(f->fd, "{\"id\":10,\"endpoint\":\"newer\"}");
	r = th_recv(f->fd, 0);
	assert_string_equal(json_string_value(json_object_get(r, "result")),
	    "v2");
	json_decref(r);

	/* A client expecting another interface is told incompatible. */
	th_send(f->fd, "{\"id\":11,\"endpoint\":\"hello\",\"data\":"
	    "{\"source_hash\":\"00000000000000000000000000000000\"}}");
	r = th_recv(f->fd, 0);
	assert_string_equal(th_err_code(r), "incompatible");
	assert_non_null(strstr(json_string_value(json_object_get(
	    json_object_get(r, "error"), "message")),
	    witch_server_source_hash(f->srv)));
	json_decref(r);

	th_sendf(f->fd, "{\"id\":12,\"endpoint\":\"hello\",\"data\":"
	    "{\"source_hash\":\"%s\"}}", witch_server_source_hash(f->srv));
	r = th_recv(f->fd, 0);
	assert_null(th_err_code(r));
	json_decref(r);
}

static void
test_source_hash_stable(void **state)
{
	witch_server_t *a, *b;

	/* Same interface, same hash; a different interface, another. */
	a = th_server_start(NULL, NULL, NULL);
	b = th_server_start(NULL, NULL, NULL);
	assert_string_equal(witch_server_source_hash(a),
	    witch_server_source_hash(b));
	witch_server_free(b);
	b = th_server_start(NULL, reg_add, NULL);
	assert_string_not_equal(witch_server_source_hash(a),
	    witch_server_source_hash(b));
	assert_string_not_equal(witch_server_id(a), witch_server_id(b));
	witch_server_free(a);
	witch_server_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ping_echo, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_info_status_peers, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_user_endpoint, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_hello_protocols, setup,
		    teardown),
		cmocka_unit_test(test_source_hash_stable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
