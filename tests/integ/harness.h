/*
 * tests/integ/harness.h: helpers for integration tests over real sockets.
 *
 * A test starts a libwitch server in-process on 127.0.0.1 port 0 (or
 * spawns witchd), then talks to it with plain blocking sockets and hand-
 * made frames, so that the bytes on the wire are exactly what the test
 * says.  Every receive has a timeout: a hung server fails the test instead
 * of hanging it.
 */
#ifndef WITCH_TESTS_HARNESS_H
#define WITCH_TESTS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>
#include <witch/witch.h>

/* Default receive timeout of th_recv() and friends (ms). */
#define TH_TIMEOUT_MS 10000

/*
 * Start a server on 127.0.0.1, port 0.  cfg may be NULL (defaults; its
 * bind and port are overridden either way).  reg, if not NULL, registers
 * endpoints before start.  Aborts the test on failure.
 */
witch_server_t *th_server_start(witch_server_config_t *cfg,
    void (*reg)(witch_server_t *srv, void *arg), void *arg);
/* A fresh default config (caller frees or passes to th_server_start). */
witch_server_config_t *th_config(void);

/* Connect to 127.0.0.1:port (blocking).  Aborts the test on failure. */
int th_connect(unsigned port);
/*
 * Connect to 127.0.0.1:port with TCP_NODELAY; -1 on failure, never
 * aborts (for client threads, where cmocka's assertions must not run).
 */
int th_dial(unsigned port);
/* xorshift64*: the next number of the sequence in *state (not 0). */
uint64_t th_rand(uint64_t *state);
/* A number below n from th_rand. */
unsigned th_randn(uint64_t *state, unsigned n);
/*
 * Keep the first failure of a client thread: format into buf (len
 * bytes) unless it already holds a message.
 */
void th_fail_first(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Write all n bytes (MSG_NOSIGNAL).  0, or -1 on error. */
int th_send_raw(int fd, const void *p, size_t n);
/* Send one frame with payload json (strlen bytes). */
int th_send(int fd, const char *json);
/*
 * Send an echo request of exactly n payload bytes (n >= 64): its data a
 * string of 'y'.  0, or -1 on error.
 */
int th_send_echo(int fd, json_int_t id, size_t n);
/* printf-style th_send(). */
int th_sendf(int fd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Encode a frame header + payload into out (4 + n bytes). */
void th_frame(unsigned char *out, const void *payload, uint32_t n);

/*
 * Receive one frame and parse it as JSON.  NULL on EOF, error, timeout
 * (timeout_ms; <= 0 means TH_TIMEOUT_MS) or a payload that is not JSON.
 */
json_t *th_recv(int fd, int timeout_ms);
/* Receive until EOF; returns 1 on EOF (or reset) within timeout_ms, 0 if
 * the connection stayed open that long, with the frames read discarded. */
int th_wait_eof(int fd, int timeout_ms);

/* Receive a reply and return its error code slug ("" when a result),
 * in a static buffer; NULL when nothing came. */
const char *th_recv_code(int fd, json_t **reply);

/* Reply helpers: the reply's "error.code" or NULL; its id as integer. */
const char *th_err_code(const json_t *reply);
json_int_t th_id(const json_t *reply);

/* Directory of the test data corpus (WITCH_TESTDATA) or NULL. */
const char *th_testdata(void);


/* Shared helpers (they fail the current cmocka test on error). */
/* CLOCK_MONOTONIC in milliseconds. */
uint64_t th_now_ms(void);
/* Sleep ms milliseconds (bounded waits only). */
void th_sleep_ms(unsigned ms);
/* th_recv() that fails the test when nothing comes. */
json_t *th_recv_ok(int fd, int timeout_ms);
/* The next reply has this id and error code (NULL: a result). */
void th_expect_reply(int fd, json_int_t id, const char *code);
/*
 * The next n replies are results for ids first .. first + n - 1, each
 * once, in any order (protocol.md: pipelined replies may come back in
 * any order; output-queue.md: a worker's direct write may overtake a
 * reply still queued, even with one worker).
 */
void th_expect_results(int fd, json_int_t first, unsigned n);
/* A ping on fd is answered (id 4242). */
void th_ping_ok(int fd);
/* Send the request text on fd; its reply, which must carry id. */
json_t *th_ask(int fd, const char *req, json_int_t id);
/* An integer field of the status built-in (id 9999). */
json_int_t th_status_get(int fd, const char *key);
/* Poll status until key == want, for at most timeout_ms. */
bool th_status_await(int fd, const char *key, json_int_t want,
    unsigned timeout_ms);

/*
 * Processes (daemon tests).  A child's stdout and stderr go to the files
 * "stdout" and "stderr" in dir (stderr is created before the fork, so its
 * inode is known); the systemd variables NOTIFY_SOCKET, LISTEN_FDS,
 * LISTEN_PID, JOURNAL_STREAM and WATCHDOG_USEC are cleared, then env
 * ("K=V", NULL-terminated; may be NULL) is added.  argv is NULL-terminated.
 */
pid_t th_spawn(const char *dir, const char *prog, char *const argv[],
    char *const env[]);
/*
 * Exit status of pid within timeout_ms; otherwise kill it and fail the
 * test, quoting dir/stderr.
 */
int th_wait_exit(pid_t pid, unsigned timeout_ms, const char *dir);
/* Contents of file (static 64 KiB buffer, NUL-terminated; "" if none). */
const char *th_slurp(const char *file);

/*
 * The gate: handlers that wait until the test opens it, so "queued",
 * "running" and "done" are states a test awaits, never guesses with a
 * sleep.  One gate per test process.
 */
#define TH_GATE_MAX_MS 10000	/* a gated handler never blocks longer */

enum th_gate_count {
	TH_GATE_STARTED,	/* "block" handlers entered */
	TH_GATE_DONE,		/* ...returned */
	TH_GATE_SAW_CANCEL,	/* ...having seen witch_request_cancelled() */
	TH_GATE_NOCANCEL,	/* ...without it */
	TH_GATE_COUNTED,	/* runs of "count" */
	TH_GATE_NCOUNTS
};

/* Close the gate and zero every count. */
void th_gate_reset(void);
/* Open the gate: waiting handlers return. */
void th_gate_open(void);
/* Wait until count >= n; false after timeout_ms. */
bool th_gate_await(enum th_gate_count count, unsigned n,
    unsigned timeout_ms);
/* The count now. */
unsigned th_gate_get(enum th_gate_count count);
/*
 * Handler "block": waits for the gate, or until cancelled (polled every
 * 5 ms; at most TH_GATE_MAX_MS), then replies {"cancelled": bool}.
 */
int th_h_block(witch_request_t *req, void *ud);
/* Handler "count": counts its runs, replies true. */
int th_h_count(witch_request_t *req, void *ud);

#endif
