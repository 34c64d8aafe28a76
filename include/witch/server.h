/*
 * witch/server.h: the witch server.
 *
 * A server owns one reactor thread (all sockets, framing, parsing) and a
 * fixed pool of worker threads that run endpoint handlers.  A handler
 * runs on the reactor thread only when its endpoint was registered with
 * WITCH_ENDPOINT_INLINE (and the built-ins ping and echo, unless
 * witch_server_config_set_inline_builtins() says otherwise).
 *
 * Life cycle: witch_server_config_new(), setters, witch_server_new(),
 * witch_server_register_endpoint() (only before start), witch_server_start(),
 * witch_server_stop(), witch_server_free().
 */
#ifndef WITCH_SERVER_H
#define WITCH_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <jansson.h>
#include <witch/export.h>
#include <witch/error.h>

WITCH_BEGIN_DECLS

typedef struct witch_server witch_server_t;
typedef struct witch_server_config witch_server_config_t;
typedef struct witch_request witch_request_t;

/* Log levels passed to a logger; lower is more severe (syslog numbering). */
enum witch_log_level {
	WITCH_LOG_ERR = 3,
	WITCH_LOG_WARNING = 4,
	WITCH_LOG_NOTICE = 5,
	WITCH_LOG_INFO = 6,
	WITCH_LOG_DEBUG = 7
};

/*
 * Logger: called from any libwitch thread, possibly concurrently; msg is a
 * NUL-terminated line without a newline, valid only during the call.
 */
typedef void (*witch_log_fn)(int level, const char *msg, void *userdata);

/* Defaults, also documented in libwitch(3) and witchd(8). */
#define WITCH_DEFAULT_PORT 8888
#define WITCH_DEFAULT_BIND "127.0.0.1"
#define WITCH_DEFAULT_MAX_CLIENTS 10000
#define WITCH_DEFAULT_MAX_FRAME (1u << 20)
#define WITCH_MAX_FRAME_CEILING (64u << 20)
#define WITCH_DEFAULT_HANDSHAKE_TIMEOUT_MS 10000
#define WITCH_DEFAULT_IDLE_TIMEOUT_MS 0		/* 0: never */
#define WITCH_DEFAULT_QUEUE_DEPTH 4096
#define WITCH_DEFAULT_OUTPUT_SOFT (1u << 20)
#define WITCH_DEFAULT_OUTPUT_HARD (16u << 20)
#define WITCH_DEFAULT_DRAIN_TIMEOUT_MS 5000

/* ---- configuration: an opaque object with typed setters ---------------- */

/*
 * Create a configuration holding every default.  Returns 0 and stores it in
 * *ret, or WITCH_ENOMEM.  Setters return 0 or WITCH_EINVAL for values out of
 * range (the configuration is then unchanged).  Not thread-safe: one thread
 * at a time per object.
 */
WITCH_EXTERN int witch_server_config_new(witch_server_config_t **ret);
/* Free a configuration; NULL is a no-op. */
WITCH_EXTERN void witch_server_config_free(witch_server_config_t *cfg);

/* TCP port; 0 picks a free port (see witch_server_port()). */
WITCH_EXTERN int witch_server_config_set_port(witch_server_config_t *cfg,
    unsigned port);
/* Numeric IPv4 or IPv6 address to bind ("0.0.0.0", "::1"...); copied. */
WITCH_EXTERN int witch_server_config_set_bind(witch_server_config_t *cfg,
    const char *addr);
/* Server name shown by info/hello (1..63 bytes); copied. */
WITCH_EXTERN int witch_server_config_set_name(witch_server_config_t *cfg,
    const char *name);
/* Project identifier shown by info/hello (0..63 bytes; "" for none). */
WITCH_EXTERN int witch_server_config_set_project_id(
    witch_server_config_t *cfg, const char *project_id);
/* Connections served at once (1..1000000); one more is told server_full. */
WITCH_EXTERN int witch_server_config_set_max_clients(
    witch_server_config_t *cfg, unsigned max_clients);
/*
 * Protocols spoken, most preferred first (1..16 names of 1..15 bytes);
 * copied.  Default: "v1".
 */
WITCH_EXTERN int witch_server_config_set_protocols(witch_server_config_t *cfg,
    const char *const *protocols, size_t count);
/*
 * Answer the built-ins ping and echo on the reactor thread (true, the
 * default), as Redis answers PING: no hand-off to a worker, no wakeup.
 * false runs them on the worker pool like any handler (what `make bench`
 * uses to measure the pool's hand-off).  Before witch_server_new() only.
 */
WITCH_EXTERN int witch_server_config_set_inline_builtins(
    witch_server_config_t *cfg, bool on);
/* Worker threads (0 = automatic: one fewer than the CPUs, at least 1). */
WITCH_EXTERN int witch_server_config_set_workers(witch_server_config_t *cfg,
    unsigned workers);
/* Requests waiting for a worker (1..1000000); past it: overloaded. */
WITCH_EXTERN int witch_server_config_set_queue_depth(
    witch_server_config_t *cfg, unsigned depth);
/* Largest accepted frame payload (1..WITCH_MAX_FRAME_CEILING bytes). */
WITCH_EXTERN int witch_server_config_set_max_frame(witch_server_config_t *cfg,
    size_t max_frame);
/* Close connections silent for this long (ms; 0 = never). */
WITCH_EXTERN int witch_server_config_set_idle_timeout(
    witch_server_config_t *cfg, unsigned ms);
/* Close connections whose first frame is not complete by then (0 = never). */
WITCH_EXTERN int witch_server_config_set_handshake_timeout(
    witch_server_config_t *cfg, unsigned ms);
/*
 * Per-connection output limits in bytes.  Above soft, the server stops
 * reading from that client until its output drains; above hard, the client
 * is disconnected (logged and counted).  soft <= hard, hard >= 4096.
 */
WITCH_EXTERN int witch_server_config_set_output_limits(
    witch_server_config_t *cfg, size_t soft, size_t hard);
/*
 * Source hash (32 lower-case hex digits) to announce instead of the one
 * computed from the endpoint table; NULL restores the computed one.
 */
WITCH_EXTERN int witch_server_config_set_source_hash(
    witch_server_config_t *cfg, const char *hex);
/* How long witch_server_stop() lets in-flight requests finish (ms, at
 * most one day). */
WITCH_EXTERN int witch_server_config_set_drain_timeout(
    witch_server_config_t *cfg, unsigned ms);
/* Listen on bind:port over TCP (default true). */
WITCH_EXTERN int witch_server_config_set_listen_tcp(
    witch_server_config_t *cfg, bool on);
/*
 * Also listen on a unix stream socket at path (at most 107 bytes; NULL:
 * none), created with permissions mode (e.g. 0660).  A stale socket file
 * is replaced; a path where another server answers is WITCH_EADDRINUSE at
 * start.  Clients on it are identified by their credentials (uid, pid).
 */
WITCH_EXTERN int witch_server_config_set_unix_path(
    witch_server_config_t *cfg, const char *path, unsigned mode);
/*
 * Announce this server on the LAN with UDP discovery (default off in the
 * library; witchd turns it on): see witch_announcer_new(3) for where it
 * announces.  Port 1..65535 (default 8889), interval 100..3600000 ms
 * (default 2000), advertise: a numeric address listeners should use
 * instead of the datagram's source (hosts behind NAT; NULL: none).
 * Discovery never stops the server from starting: failures are logged.
 */
WITCH_EXTERN int witch_server_config_set_discovery(
    witch_server_config_t *cfg, bool on);
WITCH_EXTERN int witch_server_config_set_discovery_port(
    witch_server_config_t *cfg, unsigned port);
WITCH_EXTERN int witch_server_config_set_discovery_interval(
    witch_server_config_t *cfg, unsigned ms);
WITCH_EXTERN int witch_server_config_set_advertise(
    witch_server_config_t *cfg, const char *addr);
/*
 * Diagnostic: announce by unicast to this numeric address (at the
 * discovery port) instead of broadcasting on the interfaces; NULL: back
 * to the interfaces.  For a network that drops broadcasts and for
 * loopback (no broadcast address); not needed in normal operation.
 */
WITCH_EXTERN int witch_server_config_set_discovery_target(
    witch_server_config_t *cfg, const char *addr);
/* Logger for this server (NULL: libwitch stays silent). */
WITCH_EXTERN int witch_server_config_set_logger(witch_server_config_t *cfg,
    witch_log_fn fn, void *userdata);

/* ---- server ------------------------------------------------------------ */

/*
 * Create a server from cfg (copied: cfg may be freed afterwards; NULL means
 * all defaults).  Nothing is bound or started yet.  Returns 0 or WITCH_ENOMEM.
 */
WITCH_EXTERN int witch_server_new(witch_server_t **ret,
    const witch_server_config_t *cfg);

/*
 * Endpoint handler.  Runs on a worker thread (on the reactor thread for
 * WITCH_ENDPOINT_INLINE endpoints).  It reads the request with
 * witch_request_data() and friends, then either
 *  - returns 0 after witch_request_reply() (or without it: result null), or
 *  - returns witch_request_error(req, code, fmt, ...) (or any negative
 *    WITCH_E* value: the client gets that code; WITCH_EHANDLER if none fits).
 * The request object is valid only during the call.
 */
typedef int (*witch_handler_fn)(witch_request_t *req, void *userdata);

/*
 * Register an endpoint for every protocol of the server.  name is copied
 * (1..63 bytes of letters, digits and "_.-:/").  Only before witch_server_start(); built-in names are
 * reserved.  Returns 0, WITCH_EEXISTS, WITCH_EINVAL or WITCH_ESTATE.
 */
WITCH_EXTERN int witch_server_register_endpoint(witch_server_t *srv,
    const char *name, witch_handler_fn handler, void *userdata);
/*
 * As witch_server_register_endpoint(), but served only on connections that
 * negotiated one of the count protocols given (copied).
 */
WITCH_EXTERN int witch_server_register_endpoint_for(witch_server_t *srv,
    const char *name, const char *const *protocols, size_t count,
    witch_handler_fn handler, void *userdata);

/* Flags of witch_server_register_endpoint_ex(). */
enum witch_endpoint_flags {
	/*
	 * Run the handler on the reactor thread, at once, as the request is
	 * read: no queue, no hand-off, no wakeup (the reply leaves in the
	 * same write as its neighbours).  For handlers that take
	 * microseconds and never block: while one runs, no other client is
	 * served.  Deadlines and cancel do not apply (it cannot wait);
	 * witch_request_cancelled() is false.  The handler must not call
	 * witch_server_stop() or witch_server_free() (WITCH_ESTATE / no-op,
	 * as from any handler).
	 */
	WITCH_ENDPOINT_INLINE = 1u << 0
};

/*
 * The general form: protocols NULL (count 0) serves every protocol of the
 * server, as witch_server_register_endpoint(); flags is a bitwise or of
 * enum witch_endpoint_flags.  Unknown flag bits: WITCH_EINVAL.
 */
WITCH_EXTERN int witch_server_register_endpoint_ex(witch_server_t *srv,
    const char *name, const char *const *protocols, size_t count,
    witch_handler_fn handler, void *userdata, unsigned flags);

/*
 * Serve an already listening stream socket too (socket activation: e.g. a
 * descriptor from systemd's LISTEN_FDS).  The server owns fd from now on,
 * on every path (closed on failure).  TCP or unix; before start only; at
 * most 8.  Returns 0, WITCH_EINVAL (not a listening stream socket),
 * WITCH_ESTATE or WITCH_ETOO_LARGE.
 */
WITCH_EXTERN int witch_server_adopt_listener(witch_server_t *srv, int fd);

/*
 * Bind, listen and start the reactor and workers.  Returns 0, or
 * WITCH_EADDRINUSE, WITCH_ESYSTEM, WITCH_ESTATE (already started); err (may
 * be NULL) gets the reason.  Call from the thread that owns srv.
 */
WITCH_EXTERN int witch_server_start(witch_server_t *srv, witch_error_t *err);
/* The bound TCP port (useful with port 0), or 0 before start. */
WITCH_EXTERN unsigned witch_server_port(const witch_server_t *srv);
/*
 * Apply to a running (or new) server the settings of cfg that can change
 * live: max_clients, idle and handshake timeouts, output limits.  Others
 * in cfg are ignored (they need a restart).  Connections already open
 * keep going; the new limits apply from the next check.  Any thread.
 * Returns 0 or WITCH_EINVAL.
 */
WITCH_EXTERN int witch_server_reconfigure(witch_server_t *srv,
    const witch_server_config_t *cfg);
/* Clients connected now (a snapshot).  Any thread. */
WITCH_EXTERN unsigned witch_server_clients(const witch_server_t *srv);
/* Server id (32 hex digits, random per server object). */
WITCH_EXTERN const char *witch_server_id(const witch_server_t *srv);
/* Source hash in force (32 hex digits); valid after start. */
WITCH_EXTERN const char *witch_server_source_hash(const witch_server_t *srv);

/*
 * Send the event frame {"event": event, "data": data} to the connection
 * whose id is client_id (witch_request_client_id(); data borrowed, NULL:
 * JSON null).  Any thread, any time while the server runs; never blocks.
 * The frame goes through the reactor, behind the frames already owed to
 * that connection; frames sent by one thread arrive in the order sent.
 * Returns 0 when queued (a connection that is gone or closing by the
 * time the reactor takes it never receives it), WITCH_EINVAL (bad
 * argument, event not 1..63 bytes), WITCH_ESTATE (not running),
 * WITCH_ENOMEM, WITCH_ETOO_LARGE or WITCH_EOVERLOADED (65536 events
 * waiting for the reactor).
 */
WITCH_EXTERN int witch_server_send_event(witch_server_t *srv,
    uint64_t client_id, const char *event, json_t *data);

/*
 * Stop: close the listener, answer new requests shutting_down, let
 * requests already queued or running finish for up to drain_ms (a negative
 * value uses the configured drain timeout), then answer what is still
 * queued shutting_down, flag running handlers cancelled, send every client
 * {"event":"closing","data":{"reason":"shutdown"}}, flush, close and join
 * all threads (this waits for running handlers to return).  Idempotent.
 * From a handler it returns WITCH_ESTATE and does nothing (it would wait
 * for itself).
 */
WITCH_EXTERN int witch_server_stop(witch_server_t *srv, int drain_ms);
/* Stop if running, then free; NULL is a no-op; from a handler, nothing. */
WITCH_EXTERN void witch_server_free(witch_server_t *srv);

/*
 * ---- inside a handler (only during the call: on a worker thread, or on
 * the reactor thread for WITCH_ENDPOINT_INLINE endpoints) ---------------
 */

/* The request's "data" (borrowed; JSON null when absent).  Never NULL. */
WITCH_EXTERN json_t *witch_request_data(const witch_request_t *req);
/* The endpoint name. */
WITCH_EXTERN const char *witch_request_endpoint(const witch_request_t *req);
/* Server-unique id of the calling connection (> 0). */
WITCH_EXTERN uint64_t witch_request_client_id(const witch_request_t *req);
/*
 * The calling connection's address as the clients built-in shows it:
 * "ADDR:PORT" over TCP, "unix:uid=U,pid=P" on the unix socket.  Valid
 * during the call.
 */
WITCH_EXTERN const char *witch_request_remote_addr(
    const witch_request_t *req);
/* Protocol negotiated on the connection, e.g. "v1". */
WITCH_EXTERN const char *witch_request_protocol(const witch_request_t *req);
/*
 * Milliseconds left before the caller's deadline_ms expires: -1 when the
 * request has no deadline, 0 when it has passed.
 */
WITCH_EXTERN int64_t witch_request_remaining_ms(const witch_request_t *req);
/* True once the request was cancelled (cancel endpoint, client gone, stop). */
WITCH_EXTERN bool witch_request_cancelled(const witch_request_t *req);
/* The server (for witch_server_id() and the like). */
WITCH_EXTERN witch_server_t *witch_request_server(const witch_request_t *req);
/*
 * Set the result (steals the reference, even on failure; NULL means JSON
 * null).  Returns 0.  A later call replaces the earlier result.
 */
WITCH_EXTERN int witch_request_reply(witch_request_t *req, json_t *result);
/*
 * Set the result from JSON text the handler already holds (len bytes, not
 * NUL-terminated necessarily): it is checked to be one JSON value, as the
 * server checks requests, and copied; the caller keeps json_text.
 * Returns 0, WITCH_EINVAL (NULL argument), WITCH_EPARSE (not one JSON
 * value: the reply is left as it was), WITCH_ETOO_LARGE (over the 64 MiB
 * frame ceiling) or WITCH_ENOMEM.  A later call, or witch_request_reply(),
 * replaces it.
 */
WITCH_EXTERN int witch_request_reply_raw(witch_request_t *req,
    const char *json_text, size_t len);
/*
 * Record an error reply; returns code (so a handler can
 * "return witch_request_error(req, WITCH_EINVAL, "bad %s", x);").
 * code must be a negative WITCH_E* value; others become WITCH_EHANDLER.
 */
WITCH_EXTERN int witch_request_error(witch_request_t *req, int code,
    const char *fmt, ...) WITCH_PRINTF(3, 4);

WITCH_END_DECLS

#endif /* WITCH_SERVER_H */
