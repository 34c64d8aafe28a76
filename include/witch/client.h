/*
 * witch/client.h: the witch client.
 *
 * One client object speaks to one server over TCP or a unix stream socket,
 * with many requests in flight correlated by id.  It sends "hello" after
 * every (re)connect, reconnects automatically with capped exponential
 * backoff and full jitter, and never sends a request twice: requests in
 * flight when the link drops fail with WITCH_ECONNECTION.
 *
 * Threads.  The client is driven by witch_client_process(), which does the
 * socket I/O, runs timers and calls completion, state and event callbacks,
 * on the thread that calls it.  Three ways to drive it:
 *  - synchronous: witch_client_call() drives the client itself until its
 *    reply arrives (callbacks of other requests then run on that thread);
 *  - library thread: witch_client_start_thread() runs witch_client_process()
 *    on an I/O thread of the library; callbacks run there;
 *  - your event loop: watch witch_client_fd() for readability (it is an
 *    epoll/kqueue descriptor that stays the same across reconnects), and
 *    call witch_client_process(c, 0) when it is readable or when
 *    witch_client_timeout() milliseconds have passed.
 * All functions may be called from any thread (the object has a lock),
 * except witch_client_free(), which must not race with other calls, and
 * witch_client_process(), which one thread at a time may run.  Callbacks
 * (completion, state, event) may call any client function except
 * witch_client_free(); witch_client_call(), witch_client_connect() and
 * witch_client_process() return WITCH_ESTATE there.
 */
#ifndef WITCH_CLIENT_H
#define WITCH_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <witch/export.h>
#include <witch/error.h>

WITCH_BEGIN_DECLS

typedef struct witch_client witch_client_t;
typedef struct witch_client_config witch_client_config_t;

enum witch_client_state {
	WITCH_CLIENT_DISCONNECTED = 0,	/* not connected, not trying */
	WITCH_CLIENT_CONNECTING,	/* first connect (and hello) under way */
	WITCH_CLIENT_CONNECTED,		/* hello answered: requests flow */
	WITCH_CLIENT_RECONNECTING,	/* link lost; waiting or retrying */
	WITCH_CLIENT_CLOSED		/* given up or disconnected for good */
};

/* Defaults (documented in witch_client_new(3)). */
#define WITCH_CLIENT_DEFAULT_CONNECT_TIMEOUT_MS 5000
#define WITCH_CLIENT_DEFAULT_REQUEST_TIMEOUT_MS 5000
#define WITCH_CLIENT_DEFAULT_RECONNECT_DELAY_MS 100
#define WITCH_CLIENT_DEFAULT_RECONNECT_DELAY_MAX_MS 10000
#define WITCH_CLIENT_DEFAULT_STABILITY_MS 5000
#define WITCH_CLIENT_DEFAULT_MAX_RECONNECT_ATTEMPTS 0	/* forever */

/* Called on the driving thread after every state change. */
typedef void (*witch_client_state_fn)(witch_client_t *c,
    enum witch_client_state old_state, enum witch_client_state new_state,
    void *userdata);

/*
 * Completion of an asynchronous request, called exactly once per accepted
 * request (never if witch_client_call_async() failed), on the driving
 * thread.  status is 0 with result set (borrowed: valid during the call;
 * json_incref() to keep it), or a negative WITCH_E* value with err
 * explaining and result NULL.  err->code tells the kind of failure:
 *   WITCH_ECONNECTION  the link failed or was lost before the reply
 *                      (or the first connect failed: then its error);
 *   WITCH_ETIMEOUT     no reply within the request's timeout (or the
 *                      server answered "timeout": err->remote says so);
 *   WITCH_ECANCELLED   cancelled by witch_client_cancel() (or the server
 *                      answered "cancelled");
 *   WITCH_EPROTOCOL    the server broke the protocol (garbage, oversized
 *                      frame, reply without id...): the link is dropped;
 *   WITCH_EREMOTE      the server answered with an error: err->remote holds
 *                      its code (e.g. WITCH_EUNKNOWN_ENDPOINT) and err->text
 *                      its message;
 *   WITCH_EINCOMPATIBLE, WITCH_EUNSUPPORTED_PROTOCOL, WITCH_EUNAUTHORIZED
 *                      the handshake failed (both hashes in err->text).
 */
typedef void (*witch_reply_fn)(witch_client_t *c, int status,
    json_t *result, const witch_error_t *err, void *userdata);

/*
 * A server event: every {"event": NAME, "data": ...} frame the server
 * sends ("closing", the "monitor" lines after a "monitor" request, peer
 * events), passed to the callback set with
 * witch_client_config_set_event_callback().
 *  - Thread: the driving thread, like completions: the I/O thread, the
 *    thread in witch_client_process(), or the thread blocked in
 *    witch_client_call() or witch_client_connect() that drives the client.
 *    Never two at once for one client.
 *  - event is NAME and data the frame's "data" (JSON null when absent):
 *    both borrowed, valid during the call only; json_incref(data) to
 *    keep it (then json_decref it yourself, from any thread).
 *  - Order: events and reply callbacks run in the order their frames
 *    arrived (a synchronous call's result is handed to its waiter at that
 *    point); the state callbacks of a turn run before both.
 *  - "closing" is delivered and then handled as always: the link is
 *    dropped (requests in flight fail with WITCH_ECONNECTION, "server
 *    closing: REASON") and the reconnection rules apply.
 *  - A "monitor" subscription belongs to the link: after a reconnect,
 *    call "monitor" again (e.g. witch_client_call_async() from the state
 *    callback on WITCH_CLIENT_CONNECTED).
 *  - It may call witch_client_call_async(), witch_client_notify(),
 *    witch_client_cancel(), witch_client_disconnect(), witch_client_state()
 *    and the other non-blocking functions.  witch_client_call(),
 *    witch_client_connect() and witch_client_process() return WITCH_ESTATE
 *    there (they would wait for the very thread that runs the callback),
 *    and witch_client_free() must not be called from it (it would join or
 *    free the thread and object running the callback).  While it runs, the
 *    client does no I/O: a slow callback delays replies and timers.
 *  - No event callback runs once witch_client_free() has returned; events
 *    not yet delivered when it is called are dropped.  An event that
 *    cannot be queued for lack of memory is lost (the link stays up).
 */
typedef void (*witch_client_event_fn)(witch_client_t *c, const char *event,
    json_t *data, void *userdata);

/* ---- configuration ----------------------------------------------------- */

/* As the server's: defaults set, setters return 0 or WITCH_EINVAL. */
WITCH_EXTERN int witch_client_config_new(witch_client_config_t **ret);
WITCH_EXTERN void witch_client_config_free(witch_client_config_t *cfg);
/* Host name or numeric address (default "127.0.0.1"); copied. */
WITCH_EXTERN int witch_client_config_set_host(witch_client_config_t *cfg,
    const char *host);
/* TCP port (1..65535, default 8888). */
WITCH_EXTERN int witch_client_config_set_port(witch_client_config_t *cfg,
    unsigned port);
/* Unix socket path instead of host and port (NULL: back to TCP). */
WITCH_EXTERN int witch_client_config_set_unix_path(
    witch_client_config_t *cfg, const char *path);
/* Time allowed for connect + hello (ms, >= 1). */
WITCH_EXTERN int witch_client_config_set_connect_timeout(
    witch_client_config_t *cfg, unsigned ms);
/* Default request timeout (ms, >= 1) when a call passes timeout 0. */
WITCH_EXTERN int witch_client_config_set_request_timeout(
    witch_client_config_t *cfg, unsigned ms);
/* Reconnect automatically after the link is lost (default true). */
WITCH_EXTERN int witch_client_config_set_auto_reconnect(
    witch_client_config_t *cfg, bool on);
/* Give up (state CLOSED) after this many failed attempts; 0 = never. */
WITCH_EXTERN int witch_client_config_set_max_reconnect_attempts(
    witch_client_config_t *cfg, unsigned attempts);
/*
 * Backoff: attempt n (from 0) waits a uniformly random time in
 * [delay, max(delay, min(delay_max, delay * 2^n))]: full jitter above a
 * floor of delay.
 * The attempt count resets only after the link has stayed up for the
 * stability window, so a server that accepts and dies at once does not
 * cause a reconnect storm.
 */
WITCH_EXTERN int witch_client_config_set_reconnect_delay(
    witch_client_config_t *cfg, unsigned ms);
WITCH_EXTERN int witch_client_config_set_reconnect_delay_max(
    witch_client_config_t *cfg, unsigned ms);
WITCH_EXTERN int witch_client_config_set_stability_window(
    witch_client_config_t *cfg, unsigned ms);
/* Seed of the jitter generator (0: random, the default); for tests. */
WITCH_EXTERN int witch_client_config_set_jitter_seed(
    witch_client_config_t *cfg, uint64_t seed);
/* Source hash the server must have (32 hex digits; NULL: any). */
WITCH_EXTERN int witch_client_config_set_expected_source_hash(
    witch_client_config_t *cfg, const char *hex);
/* Name sent in hello (default "libwitch"). */
WITCH_EXTERN int witch_client_config_set_name(witch_client_config_t *cfg,
    const char *name);
/* Protocols offered in hello, preferred first (default "v1"). */
WITCH_EXTERN int witch_client_config_set_protocols(
    witch_client_config_t *cfg, const char *const *protocols, size_t count);
/* Largest reply frame accepted (default 64 MiB, the ceiling). */
WITCH_EXTERN int witch_client_config_set_max_frame(
    witch_client_config_t *cfg, size_t max_frame);
/* State-change callback (NULL: none). */
WITCH_EXTERN int witch_client_config_set_state_callback(
    witch_client_config_t *cfg, witch_client_state_fn fn, void *userdata);
/* Event callback (NULL: none, events are then ignored); see above. */
WITCH_EXTERN int witch_client_config_set_event_callback(
    witch_client_config_t *cfg, witch_client_event_fn fn, void *userdata);

/* ---- life cycle ------------------------------------------------------- */

/* Create a client from cfg (copied; NULL = defaults).  Not connected. */
WITCH_EXTERN int witch_client_new(witch_client_t **ret,
    const witch_client_config_t *cfg);
/*
 * Connect and complete hello, waiting up to the connect timeout (driving
 * the client on this thread, or waiting for the I/O thread).  Returns 0 or
 * the error of the last attempt (WITCH_ECONNECTION, WITCH_ETIMEOUT,
 * WITCH_EINCOMPATIBLE, ...).  Automatic reconnection applies only to a
 * link that was once up.
 */
WITCH_EXTERN int witch_client_connect(witch_client_t *c, witch_error_t *err);
/*
 * Close the link for good (state CLOSED): requests in flight complete with
 * WITCH_ECONNECTION; no reconnection.  witch_client_connect() may be
 * called again afterwards.
 */
WITCH_EXTERN void witch_client_disconnect(witch_client_t *c);
/* Disconnect, stop the I/O thread, free.  NULL is a no-op. */
WITCH_EXTERN void witch_client_free(witch_client_t *c);
/* Current state.  Any thread. */
WITCH_EXTERN enum witch_client_state witch_client_state(witch_client_t *c);
/*
 * The server's hello reply: a new reference the caller must json_decref()
 * (NULL unless connected).  A reference, not a borrowed pointer, so a
 * reconnect on the I/O thread cannot free it under the caller.
 */
WITCH_EXTERN json_t *witch_client_server_info(witch_client_t *c);

/* ---- requests ----------------------------------------------------------- */

/*
 * Synchronous call: send and wait up to timeout_ms (0: the default) for
 * the reply.  data is borrowed (NULL: no data).  Returns 0 and stores the
 * result in *result (a new reference the caller must json_decref), or a
 * negative WITCH_E* value as for witch_reply_fn, with err filled.  While
 * connecting or reconnecting, the request waits for the link up to its
 * timeout; when disconnected or closed it fails at once with
 * WITCH_ECONNECTION.
 */
WITCH_EXTERN int witch_client_call(witch_client_t *c, const char *endpoint,
    json_t *data, unsigned timeout_ms, json_t **result, witch_error_t *err);
/*
 * Asynchronous call: returns 0 and a request id in *id (may be NULL), and
 * cb runs exactly once later; or a negative value (cb never runs):
 * WITCH_EINVAL, WITCH_ENOMEM, WITCH_ETOO_LARGE (the request would exceed
 * the max_frame the server gave in hello), or WITCH_ECONNECTION when
 * disconnected or closed.
 */
WITCH_EXTERN int witch_client_call_async(witch_client_t *c,
    const char *endpoint, json_t *data, unsigned timeout_ms,
    witch_reply_fn cb, void *userdata, uint64_t *id);
/*
 * Cancel a request: its callback runs with WITCH_ECANCELLED (at once if it
 * was not sent yet, else the server is sent "cancel").  Returns 0 or
 * WITCH_EINVAL (no such request).
 */
WITCH_EXTERN int witch_client_cancel(witch_client_t *c, uint64_t id);
/* Send a oneway request (no reply).  0, or WITCH_ECONNECTION when down. */
WITCH_EXTERN int witch_client_notify(witch_client_t *c, const char *endpoint,
    json_t *data);

/* ---- driving ------------------------------------------------------------ */

/*
 * Start the library's I/O thread (idempotent).  0 or WITCH_ESYSTEM;
 * WITCH_ESTATE from a callback run by witch_client_free().
 */
WITCH_EXTERN int witch_client_start_thread(witch_client_t *c);
/* Descriptor to poll for readability (stable for the client's life). */
WITCH_EXTERN int witch_client_fd(witch_client_t *c);
/* Milliseconds until witch_client_process() must run again (-1: none). */
WITCH_EXTERN int witch_client_timeout(witch_client_t *c);
/*
 * Do pending I/O, timers and callbacks, waiting up to timeout_ms for
 * something to happen (0: don't wait).  Returns 0 or WITCH_ESTATE when
 * the I/O thread owns the client or another thread (or a callback on this
 * one) is already driving it.
 */
WITCH_EXTERN int witch_client_process(witch_client_t *c, int timeout_ms);

/* Replies whose id matched no request (ignored and counted). */
WITCH_EXTERN uint64_t witch_client_unknown_replies(witch_client_t *c);

WITCH_END_DECLS

#endif /* WITCH_CLIENT_H */
