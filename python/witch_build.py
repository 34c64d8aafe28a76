"""cffi builder of witch._witch_cffi (API mode, compiled against <witch/witch.h>).

Used three ways:
  - by setup.py (cffi_modules) for ``pip install --no-build-isolation ./python``;
  - by the top Makefile, as ``python3 witch_build.py OUT.c``, which only
    writes the C source: libtool then compiles and links it against the
    just-built libwitch.la and installs it with ``make install``;
  - by hand: ``python3 witch_build.py`` builds the module in place.

Where libwitch is found (setup.py and in-place builds): the directories in
WITCH_INCLUDE_DIRS and WITCH_LIBRARY_DIRS (separated by os.pathsep), else
``pkg-config libwitch``, else the compiler's default paths.

The C glue below keeps the interpreter out of everything but the Python
call: JSON is converted to and from text by jansson with the GIL released,
and only the call of the user's handler (or callback) takes the GIL.
"""

import os
import shlex
import subprocess
import sys

import cffi

CDEF = r"""
typedef struct json_t json_t;
typedef struct witch_server witch_server_t;
typedef struct witch_server_config witch_server_config_t;
typedef struct witch_request witch_request_t;
typedef struct witch_client witch_client_t;
typedef struct witch_client_config witch_client_config_t;
typedef struct witch_announcer witch_announcer_t;
typedef struct witch_announcer_config witch_announcer_config_t;
typedef struct witch_listener witch_listener_t;
typedef struct witch_listener_config witch_listener_config_t;

typedef struct witch_error {
	int code;
	int remote;
	char text[...];
} witch_error_t;

typedef void (*witch_log_fn)(int level, const char *msg, void *userdata);

const char *witch_version(void);
const char *witch_strerror(int code);
const char *witch_err_name(int code);
int witch_err_from_name(const char *slug);
void free(void *);

/* server */
int witch_server_config_new(witch_server_config_t **ret);
void witch_server_config_free(witch_server_config_t *cfg);
int witch_server_config_set_port(witch_server_config_t *, unsigned);
int witch_server_config_set_bind(witch_server_config_t *, const char *);
int witch_server_config_set_name(witch_server_config_t *, const char *);
int witch_server_config_set_project_id(witch_server_config_t *,
    const char *);
int witch_server_config_set_max_clients(witch_server_config_t *, unsigned);
int witch_server_config_set_protocols(witch_server_config_t *,
    const char *const *, size_t);
int witch_server_config_set_inline_builtins(witch_server_config_t *, bool);
int witch_server_config_set_workers(witch_server_config_t *, unsigned);
int witch_server_config_set_queue_depth(witch_server_config_t *, unsigned);
int witch_server_config_set_max_frame(witch_server_config_t *, size_t);
int witch_server_config_set_idle_timeout(witch_server_config_t *, unsigned);
int witch_server_config_set_handshake_timeout(witch_server_config_t *,
    unsigned);
int witch_server_config_set_output_limits(witch_server_config_t *, size_t,
    size_t);
int witch_server_config_set_source_hash(witch_server_config_t *,
    const char *);
int witch_server_config_set_drain_timeout(witch_server_config_t *,
    unsigned);
int witch_server_config_set_listen_tcp(witch_server_config_t *, bool);
int witch_server_config_set_unix_path(witch_server_config_t *, const char *,
    unsigned);
int witch_server_config_set_discovery(witch_server_config_t *, bool);
int witch_server_config_set_discovery_port(witch_server_config_t *,
    unsigned);
int witch_server_config_set_discovery_interval(witch_server_config_t *,
    unsigned);
int witch_server_config_set_advertise(witch_server_config_t *,
    const char *);
int witch_server_config_set_discovery_target(witch_server_config_t *,
    const char *);
int witch_server_config_set_logger(witch_server_config_t *, witch_log_fn,
    void *);
int witch_server_new(witch_server_t **ret, const witch_server_config_t *);
int witch_server_start(witch_server_t *, witch_error_t *);
unsigned witch_server_port(const witch_server_t *);
unsigned witch_server_clients(const witch_server_t *);
const char *witch_server_id(const witch_server_t *);
const char *witch_server_source_hash(const witch_server_t *);
int witch_server_stop(witch_server_t *, int drain_ms);
void witch_server_free(witch_server_t *);

/* client */
int witch_client_config_new(witch_client_config_t **ret);
void witch_client_config_free(witch_client_config_t *cfg);
int witch_client_config_set_host(witch_client_config_t *, const char *);
int witch_client_config_set_port(witch_client_config_t *, unsigned);
int witch_client_config_set_unix_path(witch_client_config_t *,
    const char *);
int witch_client_config_set_connect_timeout(witch_client_config_t *,
    unsigned);
int witch_client_config_set_request_timeout(witch_client_config_t *,
    unsigned);
int witch_client_config_set_auto_reconnect(witch_client_config_t *, bool);
int witch_client_config_set_max_reconnect_attempts(witch_client_config_t *,
    unsigned);
int witch_client_config_set_reconnect_delay(witch_client_config_t *,
    unsigned);
int witch_client_config_set_reconnect_delay_max(witch_client_config_t *,
    unsigned);
int witch_client_config_set_expected_source_hash(witch_client_config_t *,
    const char *);
int witch_client_config_set_name(witch_client_config_t *, const char *);
int witch_client_config_set_protocols(witch_client_config_t *,
    const char *const *, size_t);
int witch_client_new(witch_client_t **ret, const witch_client_config_t *);
int witch_client_connect(witch_client_t *, witch_error_t *);
void witch_client_disconnect(witch_client_t *);
void witch_client_free(witch_client_t *);
int witch_client_state(witch_client_t *);
int witch_client_start_thread(witch_client_t *);
int witch_client_cancel(witch_client_t *, uint64_t id);

/* discovery */
int witch_announcer_config_new(witch_announcer_config_t **ret);
void witch_announcer_config_free(witch_announcer_config_t *);
int witch_announcer_config_set_name(witch_announcer_config_t *,
    const char *);
int witch_announcer_config_set_server_id(witch_announcer_config_t *,
    const char *);
int witch_announcer_config_set_port(witch_announcer_config_t *, unsigned);
int witch_announcer_config_set_protocols(witch_announcer_config_t *,
    const char *const *, size_t);
int witch_announcer_config_set_project_id(witch_announcer_config_t *,
    const char *);
int witch_announcer_config_set_source_hash(witch_announcer_config_t *,
    const char *);
int witch_announcer_config_set_discovery_port(witch_announcer_config_t *,
    unsigned);
int witch_announcer_config_set_interval(witch_announcer_config_t *,
    unsigned);
int witch_announcer_config_set_bind(witch_announcer_config_t *,
    const char *);
int witch_announcer_config_set_advertise(witch_announcer_config_t *,
    const char *);
int witch_announcer_config_set_target(witch_announcer_config_t *,
    const char *);
int witch_announcer_config_set_logger(witch_announcer_config_t *,
    witch_log_fn, void *);
int witch_announcer_new(witch_announcer_t **ret,
    const witch_announcer_config_t *);
int witch_announcer_start(witch_announcer_t *);
void witch_announcer_stop(witch_announcer_t *);
void witch_announcer_free(witch_announcer_t *);
uint64_t witch_announcer_sent(const witch_announcer_t *);

int witch_listener_config_new(witch_listener_config_t **ret);
void witch_listener_config_free(witch_listener_config_t *);
int witch_listener_config_set_port(witch_listener_config_t *, unsigned);
int witch_listener_config_set_bind(witch_listener_config_t *, const char *);
int witch_listener_config_set_expiry(witch_listener_config_t *, unsigned);
int witch_listener_config_set_verify(witch_listener_config_t *, bool);
int witch_listener_config_set_verify_timeout(witch_listener_config_t *,
    unsigned);
int witch_listener_config_set_ipv6(witch_listener_config_t *, bool);
int witch_listener_config_set_logger(witch_listener_config_t *,
    witch_log_fn, void *);
int witch_listener_new(witch_listener_t **ret,
    const witch_listener_config_t *);
int witch_listener_start(witch_listener_t *, witch_error_t *);
unsigned witch_listener_port(const witch_listener_t *);
void witch_listener_stop(witch_listener_t *);
void witch_listener_free(witch_listener_t *);

/* glue (defined in the source below) */
struct wpy_call {
	const char	*endpoint;
	const char	*data;
	size_t		 data_len;
	uint64_t	 client_id;
	char		*reply;		/* malloc'd by wpy_set_reply */
	size_t		 reply_len;
	int		 code;		/* 0 or a WITCH_E* value */
	char		*errmsg;	/* malloc'd by wpy_set_error */
};
int wpy_server_register(witch_server_t *, const char *name, void *ud);
int wpy_set_reply(struct wpy_call *, const char *buf, size_t len);
int wpy_set_error(struct wpy_call *, int code, const char *msg);
int wpy_client_call(witch_client_t *, const char *endpoint,
    const char *data, size_t len, unsigned timeout_ms, char **out,
    size_t *outlen, witch_error_t *err);
int wpy_client_call_async(witch_client_t *, const char *endpoint,
    const char *data, size_t len, unsigned timeout_ms, void *ud,
    uint64_t *id);
int wpy_listener_config_set_callback(witch_listener_config_t *, void *ud);
int wpy_client_config_set_event_callback(witch_client_config_t *,
    void *ud);
int wpy_server_config_set_logger(witch_server_config_t *, void *ud);
int wpy_snapshot(witch_listener_t *, char **out);

/* peers */
int witch_server_config_set_peering(witch_server_config_t *, bool);
int witch_server_config_add_peer_seed(witch_server_config_t *,
    const char *);
int witch_server_config_set_peer_heartbeat(witch_server_config_t *,
    unsigned);
int witch_server_config_set_peer_thresholds(witch_server_config_t *,
    unsigned, unsigned);
int witch_server_config_set_peer_queue(witch_server_config_t *, unsigned);
int wpy_server_config_set_peer_callbacks(witch_server_config_t *,
    void *ud);
int wpy_peer_broadcast(witch_server_t *, const char *data, size_t len);
int wpy_peer_send(witch_server_t *, const char *peer, const char *data,
    size_t len);
int wpy_peers(witch_server_t *, char **out);

extern "Python" void wpy_handler_py(void *ud, struct wpy_call *call);
extern "Python" void wpy_reply_py(void *ud, int status, const char *text,
    size_t len, const witch_error_t *err);
extern "Python" void wpy_discovery_py(void *ud, int ev, const char *text);
extern "Python" void wpy_log_py(int level, const char *msg, void *ud);
extern "Python" void wpy_event_py(void *ud, const char *event,
    const char *text, size_t len);
extern "Python" void wpy_peer_message_py(void *ud, const char *from_id,
    const char *from_name, const char *text, size_t len);
extern "Python" void wpy_peer_status_py(void *ud, const char *text);
"""

SOURCE = r"""
#include <stdlib.h>
#include <string.h>
#include <witch/witch.h>

struct wpy_call {
	const char	*endpoint;
	const char	*data;
	size_t		 data_len;
	uint64_t	 client_id;
	char		*reply;
	size_t		 reply_len;
	int		 code;
	char		*errmsg;
};

static void wpy_handler_py(void *, struct wpy_call *);
static void wpy_reply_py(void *, int, const char *, size_t,
    const witch_error_t *);
static void wpy_discovery_py(void *, int, const char *);
static void wpy_log_py(int, const char *, void *);
static void wpy_event_py(void *, const char *, const char *, size_t);
static void wpy_peer_message_py(void *, const char *, const char *,
    const char *, size_t);
static void wpy_peer_status_py(void *, const char *);

#define WPY_DUMP_FLAGS (JSON_ENCODE_ANY | JSON_COMPACT)

/*
 * Endpoint handler of every Python endpoint, on a libwitch worker.  The
 * request's data becomes text, the Python side gets the GIL only for the
 * call, and the text it answers is parsed here, without the GIL.
 */
static int
wpy_handler(witch_request_t *req, void *ud)
{
	struct wpy_call call;
	json_error_t jerr;
	json_t *result;
	char *text;
	int rc;

	memset(&call, 0, sizeof(call));
	text = json_dumps(witch_request_data(req), WPY_DUMP_FLAGS);
	if (text == NULL)
		return witch_request_error(req, WITCH_ENOMEM,
		    "cannot serialise the request data");
	call.endpoint = witch_request_endpoint(req);
	call.data = text;
	call.data_len = strlen(text);
	call.client_id = witch_request_client_id(req);
	wpy_handler_py(ud, &call);
	free(text);
	if (call.code != 0 || call.reply == NULL) {
		rc = witch_request_error(req,
		    call.code != 0 ? call.code : WITCH_EHANDLER, "%s",
		    call.errmsg != NULL ? call.errmsg :
		    "Python handler failed");
		free(call.errmsg);
		free(call.reply);
		return rc;
	}
	result = json_loadb(call.reply, call.reply_len, JSON_DECODE_ANY,
	    &jerr);
	free(call.reply);
	if (result == NULL)
		return witch_request_error(req, WITCH_EHANDLER,
		    "handler reply is not valid JSON: %s", jerr.text);
	return witch_request_reply(req, result);
}

static int
wpy_server_register(witch_server_t *srv, const char *name, void *ud)
{
	return witch_server_register_endpoint(srv, name, wpy_handler, ud);
}

static char *
wpy_memdup(const char *buf, size_t len)
{
	char *p = malloc(len + 1);

	if (p != NULL) {
		memcpy(p, buf, len);
		p[len] = '\0';
	}
	return p;
}

static int
wpy_set_reply(struct wpy_call *call, const char *buf, size_t len)
{
	free(call->reply);
	call->reply = wpy_memdup(buf, len);
	call->reply_len = len;
	return call->reply == NULL ? WITCH_ENOMEM : 0;
}

static int
wpy_set_error(struct wpy_call *call, int code, const char *msg)
{
	free(call->errmsg);
	call->errmsg = wpy_memdup(msg, strlen(msg));
	call->code = code;
	return call->errmsg == NULL ? WITCH_ENOMEM : 0;
}

/* Parse request data text (NULL: no data); NULL and *rc set on failure. */
static json_t *
wpy_parse(const char *data, size_t len, witch_error_t *err, int *rc)
{
	json_error_t jerr;
	json_t *j;

	*rc = 0;
	if (data == NULL)
		return NULL;
	j = json_loadb(data, len, JSON_DECODE_ANY, &jerr);
	if (j == NULL) {
		*rc = WITCH_EPARSE;
		if (err != NULL) {
			err->code = WITCH_EPARSE;
			err->remote = 0;
			snprintf(err->text, sizeof(err->text),
			    "request data: %s", jerr.text);
		}
	}
	return j;
}

static int
wpy_client_call(witch_client_t *c, const char *endpoint, const char *data,
    size_t len, unsigned timeout_ms, char **out, size_t *outlen,
    witch_error_t *err)
{
	json_t *j, *result = NULL;
	int rc;

	*out = NULL;
	j = wpy_parse(data, len, err, &rc);
	if (rc != 0)
		return rc;
	rc = witch_client_call(c, endpoint, j, timeout_ms, &result, err);
	json_decref(j);
	if (rc != 0)
		return rc;
	*out = json_dumps(result, WPY_DUMP_FLAGS);
	json_decref(result);
	if (*out == NULL) {
		if (err != NULL) {
			err->code = WITCH_ENOMEM;
			err->remote = 0;
			snprintf(err->text, sizeof(err->text), "%s",
			    "cannot serialise the reply");
		}
		return WITCH_ENOMEM;
	}
	*outlen = strlen(*out);
	return 0;
}

/* Completion on the client's I/O thread: text first, then the GIL. */
static void
wpy_reply_cb(witch_client_t *c, int status, json_t *result,
    const witch_error_t *err, void *ud)
{
	char *text = NULL;

	(void)c;
	if (status == 0 && result != NULL)
		text = json_dumps(result, WPY_DUMP_FLAGS);
	wpy_reply_py(ud, status, text, text != NULL ? strlen(text) : 0, err);
	free(text);
}

static int
wpy_client_call_async(witch_client_t *c, const char *endpoint,
    const char *data, size_t len, unsigned timeout_ms, void *ud,
    uint64_t *id)
{
	json_t *j;
	int rc;

	j = wpy_parse(data, len, NULL, &rc);
	if (rc != 0)
		return rc;
	rc = witch_client_call_async(c, endpoint, j, timeout_ms, wpy_reply_cb,
	    ud, id);
	json_decref(j);
	return rc;
}

/* Server event on the client's driving thread: data as text first. */
static void
wpy_event_cb(witch_client_t *c, const char *event, json_t *data, void *ud)
{
	char *text;

	(void)c;
	text = json_dumps(data, WPY_DUMP_FLAGS);
	wpy_event_py(ud, event, text, text != NULL ? strlen(text) : 0);
	free(text);
}

static int
wpy_client_config_set_event_callback(witch_client_config_t *cfg, void *ud)
{
	return witch_client_config_set_event_callback(cfg, wpy_event_cb, ud);
}

/* Discovery event on the listener's thread, as JSON text. */
static void
wpy_discovery_cb(witch_listener_t *l, enum witch_discovery_event ev,
    const witch_discovered_t *d, void *ud)
{
	json_t *o, *protos;
	char *text;
	size_t i;

	(void)l;
	protos = json_array();
	for (i = 0; protos != NULL && i < d->nprotocols; i++)
		json_array_append_new(protos, json_string(d->protocols[i]));
	o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:o*, s:s, s:s, s:s, s:b,"
	    " s:I, s:I}",
	    "event", witch_discovery_event_name(ev),
	    "name", d->name, "server_id", d->server_id, "ip", d->addr,
	    "port", (int)d->port, "protocols", protos,
	    "project_id", d->project_id, "source_hash", d->source_hash,
	    "verified", witch_discovery_verify_name(d->verify),
	    "leaving", (int)d->leaving, "seq", (json_int_t)d->seq,
	    "age_ms", (json_int_t)d->age_ms);
	if (o == NULL)
		return;
	text = json_dumps(o, WPY_DUMP_FLAGS);
	json_decref(o);
	if (text != NULL)
		wpy_discovery_py(ud, (int)ev, text);
	free(text);
}

static int
wpy_listener_config_set_callback(witch_listener_config_t *cfg, void *ud)
{
	return witch_listener_config_set_callback(cfg, wpy_discovery_cb, ud);
}

static int
wpy_server_config_set_logger(witch_server_config_t *cfg, void *ud)
{
	return witch_server_config_set_logger(cfg, wpy_log_py, ud);
}

static int
wpy_snapshot(witch_listener_t *l, char **out)
{
	json_t *a = NULL;
	int rc;

	*out = NULL;
	if ((rc = witch_listener_snapshot(l, &a)) != 0)
		return rc;
	*out = json_dumps(a, WPY_DUMP_FLAGS);
	json_decref(a);
	return *out == NULL ? WITCH_ENOMEM : 0;
}

/* Peer message on the server's peer thread: text first, then the GIL. */
static void
wpy_peer_message_cb(witch_server_t *srv, const char *from_id,
    const char *from_name, json_t *message, void *ud)
{
	char *text;

	(void)srv;
	text = json_dumps(message, WPY_DUMP_FLAGS);
	if (text == NULL)
		return;
	wpy_peer_message_py(ud, from_id, from_name != NULL ? from_name : "",
	    text, strlen(text));
	free(text);
}

/*
 * Peer status change (or drops) on the peer thread, as the JSON text of
 * {"peer": {the keys of witch_server_peers()}, "old": status}.
 */
static void
wpy_peer_status_cb(witch_server_t *srv, const witch_peer_info_t *p,
    enum witch_peer_status old, void *ud)
{
	json_t *o;
	char *text;

	(void)srv;
	o = json_pack("{s:{s:s, s:s, s:s, s:i, s:s, s:o, s:o, s:I, s:I, s:I},"
	    " s:s}", "peer",
	    "name", p->name != NULL ? p->name : "",
	    "server_id", p->server_id != NULL ? p->server_id : "",
	    "address", p->addr != NULL ? p->addr : "", "port", (int)p->port,
	    "status", witch_peer_status_name(p->status),
	    "last_seen", p->last_seen_ms < 0 ? json_null() :
	    json_real((double)p->last_seen_ms / 1000.0),
	    "rtt_ms", p->rtt_us < 0 ? json_null() :
	    json_real((double)p->rtt_us / 1000.0),
	    "sent", (json_int_t)p->sent, "received", (json_int_t)p->received,
	    "dropped", (json_int_t)p->dropped,
	    "old", witch_peer_status_name(old));
	if (o == NULL)
		return;
	text = json_dumps(o, WPY_DUMP_FLAGS);
	json_decref(o);
	if (text != NULL)
		wpy_peer_status_py(ud, text);
	free(text);
}

static int
wpy_server_config_set_peer_callbacks(witch_server_config_t *cfg, void *ud)
{
	int rc;

	rc = witch_server_config_set_peer_message_handler(cfg,
	    wpy_peer_message_cb, ud);
	if (rc != 0)
		return rc;
	return witch_server_config_set_peer_status_callback(cfg,
	    wpy_peer_status_cb, ud);
}

static int
wpy_peer_broadcast(witch_server_t *srv, const char *data, size_t len)
{
	json_t *j;
	int rc;

	j = wpy_parse(data, len, NULL, &rc);
	if (rc != 0)
		return rc;
	rc = witch_server_broadcast_to_peers(srv, j);
	json_decref(j);
	return rc;
}

static int
wpy_peer_send(witch_server_t *srv, const char *peer, const char *data,
    size_t len)
{
	json_t *j;
	int rc;

	j = wpy_parse(data, len, NULL, &rc);
	if (rc != 0)
		return rc;
	rc = witch_server_send_to_peer(srv, peer, j);
	json_decref(j);
	return rc;
}

static int
wpy_peers(witch_server_t *srv, char **out)
{
	json_t *a = NULL;
	int rc;

	*out = NULL;
	if ((rc = witch_server_peers(srv, &a)) != 0)
		return rc;
	*out = json_dumps(a, WPY_DUMP_FLAGS);
	json_decref(a);
	return *out == NULL ? WITCH_ENOMEM : 0;
}
"""


def _split_env(name):
    value = os.environ.get(name, "")
    return [p for p in value.split(os.pathsep) if p]


def _pkg_config():
    """(include_dirs, library_dirs) from pkg-config libwitch, or None."""
    try:
        out = subprocess.run(["pkg-config", "--cflags", "--libs", "libwitch"],
                             check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    incs, libdirs = [], []
    for word in shlex.split(out.stdout):
        if word.startswith("-I"):
            incs.append(word[2:])
        elif word.startswith("-L"):
            libdirs.append(word[2:])
    return incs, libdirs


def make_builder():
    """The FFI builder; libwitch's location as described above."""
    incs = _split_env("WITCH_INCLUDE_DIRS")
    libdirs = _split_env("WITCH_LIBRARY_DIRS")
    if not incs and not libdirs:
        found = _pkg_config()
        if found is not None:
            incs, libdirs = found
    rpath = [d for d in libdirs
             if d not in ("/usr/lib", "/lib", "/usr/local/lib")
             and not d.startswith(("/usr/lib/", "/lib/"))]
    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    ffi.set_source("witch._witch_cffi", SOURCE,
                   include_dirs=incs, library_dirs=libdirs,
                   runtime_library_dirs=rpath,
                   libraries=["witch", "jansson"])
    return ffi


ffibuilder = make_builder()

if __name__ == "__main__":
    if len(sys.argv) == 2:
        ffibuilder.emit_c_code(sys.argv[1])
    else:
        ffibuilder.compile(tmpdir=os.path.dirname(os.path.abspath(__file__)),
                           verbose=True)
