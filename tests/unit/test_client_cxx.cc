// test_client_cxx: the client API used from C++17 (-Wall -Wextra -Werror
// -pedantic) through the installed-style shared library.  An in-process
// server on 127.0.0.1, port 0, gives the client something to talk to:
// synchronous calls, asynchronous calls with plain C callbacks driven both
// by witch_client_process() and by the library's I/O thread, a server
// error, notify, disconnect, clean-up.
#include <witch/witch.h>

#include <poll.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		std::fprintf(stderr, "%s:%d: check failed: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		std::exit(1);						\
	}								\
} while (0)

namespace {

// What an asynchronous completion saw.
struct outcome {
	std::mutex		 mu;
	std::condition_variable	 cv;
	int			 calls = 0;
	int			 status = 1;
	int			 remote = 0;
	long long		 sum = -1;
};

}	// namespace

extern "C" {

// Endpoint "add": the sum of an array of integers.
static int
add_handler(witch_request_t *req, void *)
{
	json_t *data = witch_request_data(req);
	json_t *v;
	json_int_t sum = 0;
	size_t i;

	if (!json_is_array(data))
		return witch_request_error(req, WITCH_EINVALID_REQUEST,
		    "data must be an array of integers");
	json_array_foreach(data, i, v) {
		if (!json_is_integer(v))
			return witch_request_error(req,
			    WITCH_EINVALID_REQUEST, "element %zu is not an "
			    "integer", i);
		sum += json_integer_value(v);
	}
	return witch_request_reply(req, json_pack("{s:I}", "sum", sum));
}

// Completion of an asynchronous "add": runs on the driving thread.
static void
on_add(witch_client_t *, int status, json_t *result,
    const witch_error_t *err, void *userdata)
{
	outcome *o = static_cast<outcome *>(userdata);
	std::lock_guard<std::mutex> lk(o->mu);

	o->calls++;
	o->status = status;
	if (status == 0)
		o->sum = json_integer_value(json_object_get(result, "sum"));
	else
		o->remote = err != nullptr ? err->remote : 0;
	o->cv.notify_all();
}

}	// extern "C"

// Drive the client from a poll(2) loop until o has seen want calls.
static void
drive_until(witch_client_t *c, outcome *o, int want)
{
	struct pollfd pfd;
	int rounds;

	pfd.fd = witch_client_fd(c);
	pfd.events = POLLIN;
	for (rounds = 0; rounds < 1000; rounds++) {
		{
			std::lock_guard<std::mutex> lk(o->mu);
			if (o->calls >= want)
				return;
		}
		int t = witch_client_timeout(c);
		CHECK(poll(&pfd, 1, t < 0 || t > 100 ? 100 : t) >= 0);
		CHECK(witch_client_process(c, 0) == 0);
	}
	std::fprintf(stderr, "no completion after 1000 turns\n");
	std::exit(1);
}

int
main()
{
	witch_server_config_t *scfg = nullptr;
	witch_server_t *srv = nullptr;
	witch_client_config_t *ccfg = nullptr;
	witch_client_t *c = nullptr;
	witch_error_t err;
	json_t *data, *result = nullptr, *info;
	const char *protos[] = { "v1" };
	uint64_t id = 0;
	unsigned port;
	outcome o1, o2;

	// The server: loopback only, a free port.
	CHECK(witch_server_config_new(&scfg) == 0);
	CHECK(witch_server_config_set_bind(scfg, "127.0.0.1") == 0);
	CHECK(witch_server_config_set_port(scfg, 0) == 0);
	CHECK(witch_server_config_set_workers(scfg, 2) == 0);
	CHECK(witch_server_config_set_listen_tcp(scfg, true) == 0);
	CHECK(witch_server_new(&srv, scfg) == 0);
	CHECK(witch_server_register_endpoint(srv, "add", add_handler,
	    nullptr) == 0);
	CHECK(witch_server_start(srv, &err) == 0);
	CHECK((port = witch_server_port(srv)) != 0);

	// The client's configuration, bad values included.
	CHECK(witch_client_config_new(&ccfg) == 0);
	CHECK(witch_client_config_set_port(ccfg, 0) == WITCH_EINVAL);
	CHECK(witch_client_config_set_port(ccfg, 65536) == WITCH_EINVAL);
	CHECK(witch_client_config_set_connect_timeout(ccfg, 0) ==
	    WITCH_EINVAL);
	CHECK(witch_client_config_set_protocols(ccfg, protos, 0) ==
	    WITCH_EINVAL);
	CHECK(witch_client_config_set_expected_source_hash(ccfg, "xyz") ==
	    WITCH_EINVAL);
	CHECK(witch_client_config_set_host(ccfg, "127.0.0.1") == 0);
	CHECK(witch_client_config_set_port(ccfg, port) == 0);
	CHECK(witch_client_config_set_name(ccfg, "test_client_cxx") == 0);
	CHECK(witch_client_config_set_protocols(ccfg, protos, 1) == 0);
	CHECK(witch_client_config_set_request_timeout(ccfg, 5000) == 0);
	CHECK(witch_client_config_set_jitter_seed(ccfg, 1) == 0);
	CHECK(witch_client_new(&c, ccfg) == 0);
	witch_client_config_free(ccfg);		// copied by witch_client_new

	CHECK(witch_client_state(c) == WITCH_CLIENT_DISCONNECTED);
	CHECK(witch_client_server_info(c) == nullptr);
	CHECK(witch_client_fd(c) >= 0);
	CHECK(witch_client_connect(c, &err) == 0);
	CHECK(witch_client_state(c) == WITCH_CLIENT_CONNECTED);
	CHECK((info = witch_client_server_info(c)) != nullptr);
	CHECK(std::strcmp(json_string_value(json_object_get(info,
	    "server_id")), witch_server_id(srv)) == 0);
	CHECK(std::strcmp(json_string_value(json_object_get(info,
	    "protocol")), "v1") == 0);
	json_decref(info);	// a new reference
	CHECK(witch_server_clients(srv) == 1);

	// Synchronous echo: result is a new reference, data stays ours.
	data = json_pack("{s:s, s:[i,i]}", "text", "hello", "list", 1, 2);
	CHECK(data != nullptr);
	CHECK(witch_client_call(c, "echo", data, 2000, &result, &err) == 0);
	CHECK(result != nullptr);
	CHECK(json_equal(json_object_get(result, "echo"), data));
	json_decref(result);
	json_decref(data);

	// The server's error comes back as WITCH_EREMOTE with its code.
	data = json_object();
	result = data;		// must be reset to NULL on failure
	CHECK(witch_client_call(c, "no_such_endpoint", nullptr, 0, &result,
	    &err) == WITCH_EREMOTE);
	CHECK(result == nullptr);
	json_decref(data);
	CHECK(err.code == WITCH_EREMOTE);
	CHECK(err.remote == WITCH_EUNKNOWN_ENDPOINT);

	// Asynchronous calls driven by this thread's poll loop.
	data = json_pack("[i,i,i]", 1, 2, 39);
	CHECK(witch_client_call_async(c, "add", data, 0, on_add, &o1,
	    &id) == 0);
	CHECK(id > 0);
	json_decref(data);
	data = json_pack("[s]", "x");
	CHECK(witch_client_call_async(c, "add", data, 0, on_add, &o2,
	    nullptr) == 0);
	json_decref(data);
	drive_until(c, &o1, 1);
	drive_until(c, &o2, 1);
	CHECK(o1.calls == 1 && o1.status == 0 && o1.sum == 42);
	CHECK(o2.calls == 1 && o2.status == WITCH_EREMOTE &&
	    o2.remote == WITCH_EINVALID_REQUEST);
	CHECK(witch_client_cancel(c, id) == WITCH_EINVAL);	// completed

	// Then by the library's I/O thread: wait on a condition variable.
	CHECK(witch_client_start_thread(c) == 0);
	CHECK(witch_client_start_thread(c) == 0);		// idempotent
	CHECK(witch_client_process(c, 0) == WITCH_ESTATE);
	data = json_pack("[i,i]", 40, 60);
	CHECK(witch_client_call_async(c, "add", data, 2000, on_add, &o1,
	    nullptr) == 0);
	json_decref(data);
	{
		std::unique_lock<std::mutex> lk(o1.mu);
		CHECK(o1.cv.wait_for(lk, std::chrono::seconds(10),
		    [&] { return o1.calls == 2; }));
		CHECK(o1.status == 0 && o1.sum == 100);
	}
	// A synchronous call now waits for the I/O thread.
	CHECK(witch_client_call(c, "ping", nullptr, 2000, nullptr, &err) == 0);
	CHECK(witch_client_notify(c, "echo", nullptr) == 0);

	// Disconnected for good: nothing more is accepted.
	witch_client_disconnect(c);
	CHECK(witch_client_state(c) == WITCH_CLIENT_CLOSED);
	CHECK(witch_client_server_info(c) == nullptr);
	CHECK(witch_client_call_async(c, "add", nullptr, 0, on_add, &o2,
	    nullptr) == WITCH_ECONNECTION);
	CHECK(witch_client_notify(c, "echo", nullptr) == WITCH_ECONNECTION);
	CHECK(witch_client_unknown_replies(c) == 0);
	CHECK(o1.calls == 2 && o2.calls == 1);		// exact totals

	witch_client_free(c);
	witch_client_free(nullptr);
	CHECK(witch_server_stop(srv, 1000) == 0);
	witch_server_free(srv);
	witch_server_config_free(scfg);
	return 0;
}
