/*
 * test_frames: the framing layer of protocol.md over a real socket.
 *
 * A request stream split at every byte offset, written byte by byte and
 * pipelined 1,000 deep; valid and invalid frames mixed in one write;
 * max_frame exactly and one past it; length 0 and oversized lengths sent
 * with no body (the error must come without the body being awaited); and
 * replies owed before a bad frame delivered before its error frame.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "integ/harness.h"

#define BIG_DATA	70000		/* bytes of the ~70 KB digest request */
#define BIG_EDGE	200		/* every offset this near its ends */
#define BIG_STRIDE	97		/* ...and every 97th in between */
#define MARKER_ID	999999		/* ping sent ahead of each split */
#define NPIPE		1000		/* pipelined requests */
#define SMALL_MAX	1024		/* max_frame of the small server */

/* ---- growable byte buffer ----------------------------------------------- */

struct wbuf {
	unsigned char	*p;
	size_t		 len, cap;
};

static void
wb_put(struct wbuf *b, const void *p, size_t n)
{
	size_t ncap;

	if (b->len + n > b->cap) {
		ncap = b->cap ? b->cap : 256;
		while (ncap < b->len + n)
			ncap *= 2;
		b->p = realloc(b->p, ncap);
		assert_non_null(b->p);
		b->cap = ncap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

/* Append a frame header announcing len bytes (no body). */
static void
wb_header(struct wbuf *b, uint32_t len)
{
	unsigned char h[4];

	h[0] = len >> 24;
	h[1] = len >> 16;
	h[2] = len >> 8;
	h[3] = len;
	wb_put(b, h, 4);
}

/* Append one frame holding n payload bytes. */
static void
wb_frame(struct wbuf *b, const void *payload, size_t n)
{
	wb_header(b, (uint32_t)n);
	wb_put(b, payload, n);
}

static void
wb_frame_str(struct wbuf *b, const char *json)
{
	wb_frame(b, json, strlen(json));
}

static void
wb_free(struct wbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* ---- reply checks -------------------------------------------------------- */

/* Receive one reply; fail the test if nothing (or not JSON) came. */
static json_t *
must_recv(int fd)
{
	json_t *r = th_recv(fd, 0);

	assert_non_null(r);
	return r;
}

/* A ping with this id gets its pong, and it is the very next reply. */
static void
assert_ping(int fd, json_int_t id)
{
	json_t *r;

	assert_int_equal(th_sendf(fd, "{\"id\":%lld,\"endpoint\":\"ping\"}",
	    (long long)id), 0);
	r = must_recv(fd);
	assert_int_equal(th_id(r), id);
	assert_true(json_is_true(json_object_get(json_object_get(r, "result"),
	    "pong")));
	json_decref(r);
}

/* The next reply is an error with this code and a null id. */
static void
assert_error_null(int fd, const char *code)
{
	json_t *r = must_recv(fd);

	assert_non_null(th_err_code(r));
	assert_string_equal(th_err_code(r), code);
	assert_true(json_is_null(json_object_get(r, "id")));
	assert_true(json_is_string(json_object_get(json_object_get(r,
	    "error"), "message")));
	json_decref(r);
}

/* Nothing readable on fd for ms milliseconds (no frame, no EOF). */
static void
assert_quiet(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	assert_int_equal(poll(&pfd, 1, ms), 0);
}

/* ---- an expected request stream ------------------------------------------ */

/*
 * One request of a stream and what its reply must be.  id < 0 means the
 * reply carries id null (the request has none or is not valid).
 */
struct req {
	struct wbuf	 frame;		/* header + payload */
	json_int_t	 id;
	const char	*code;		/* expected error slug, or NULL */
	json_t		*result;	/* expected result; NULL: a pong */
	int		 seen;
};

struct stream {
	struct req	*reqs;
	size_t		 n;
	struct wbuf	 bytes;		/* every frame, in order */
	size_t		*end;		/* end offset of frame i in bytes */
};

static void
st_add(struct stream *st, const void *payload, size_t len, json_int_t id,
    const char *code, json_t *result)
{
	struct req *r;

	st->reqs = realloc(st->reqs, (st->n + 1) * sizeof(*st->reqs));
	st->end = realloc(st->end, (st->n + 1) * sizeof(*st->end));
	assert_non_null(st->reqs);
	assert_non_null(st->end);
	r = &st->reqs[st->n];
	memset(r, 0, sizeof(*r));
	wb_frame(&r->frame, payload, len);
	r->id = id;
	r->code = code;
	r->result = result;
	wb_put(&st->bytes, r->frame.p, r->frame.len);
	st->end[st->n] = st->bytes.len;
	st->n++;
}

/* An echo request with id and data (the stream takes the reference). */
static void
st_add_echo(struct stream *st, json_int_t id, json_t *data)
{
	json_t *req = json_pack("{s:I, s:s, s:O}", "id", (json_int_t)id,
	    "endpoint", "echo", "data", data);
	char *s;

	assert_non_null(req);
	s = json_dumps(req, JSON_COMPACT);
	assert_non_null(s);
	st_add(st, s, strlen(s), id, NULL, json_pack("{s:o}", "echo", data));
	free(s);
	json_decref(req);
}

/* FNV-1a of n bytes, as 16 hex digits into out[17]. */
static void
fnv_hex(const char *p, size_t n, char out[17])
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ULL;
	}
	snprintf(out, 17, "%016llx", (unsigned long long)h);
}

/*
 * A "digest" request for a big string: the reply carries its length and
 * hash, so the ~70 KB payload is checked without being sent back.
 */
static void
st_add_digest(struct stream *st, json_int_t id, const char *data)
{
	json_t *req = json_pack("{s:I, s:s, s:s}", "id", (json_int_t)id,
	    "endpoint", "digest", "data", data);
	char *s, hex[17];

	assert_non_null(req);
	s = json_dumps(req, JSON_COMPACT);
	assert_non_null(s);
	fnv_hex(data, strlen(data), hex);
	st_add(st, s, strlen(s), id, NULL, json_pack("{s:I, s:s}", "len",
	    (json_int_t)strlen(data), "fnv", hex));
	free(s);
	json_decref(req);
}

static void
st_free(struct stream *st)
{
	size_t i;

	for (i = 0; i < st->n; i++) {
		wb_free(&st->reqs[i].frame);
		json_decref(st->reqs[i].result);
	}
	free(st->reqs);
	free(st->end);
	wb_free(&st->bytes);
	memset(st, 0, sizeof(*st));
}

/*
 * The stream of the split tests: a minimal ping, a 1-byte payload (valid
 * JSON, not an object), a small echo with non-ASCII text, a ~70 KB
 * digest request and a nested ~500-byte echo.
 */
static void
st_build(struct stream *st, bool big)
{
	json_t *obj;
	char *s;
	int i;

	memset(st, 0, sizeof(*st));
	st_add(st, "{\"id\":1,\"endpoint\":\"ping\"}", 26, 1, NULL, NULL);
	st_add(st, "7", 1, -1, "invalid_request", NULL);
	st_add_echo(st, 2, json_string("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f"
	    "\x94\x91"));
	if (big) {
		s = malloc(BIG_DATA + 1);
		assert_non_null(s);
		for (i = 0; i < BIG_DATA; i++)
			s[i] = 'a' + i % 26;
		s[BIG_DATA] = '\0';
		st_add_digest(st, 3, s);
		free(s);
	}
	obj = json_object();
	for (i = 0; i < 16; i++) {
		char k[16];

		snprintf(k, sizeof(k), "k%02d", i);
		json_object_set_new(obj, k, json_pack("[i, s, {s:b}]", i,
		    "value", "x", i % 2));
	}
	st_add_echo(st, 4, obj);
}

/* Check one reply against the stream; mark its request seen. */
static void
st_match(struct stream *st, json_t *r)
{
	json_t *id = json_object_get(r, "id");
	struct req *q = NULL;
	size_t i;

	assert_non_null(id);
	for (i = 0; i < st->n; i++) {
		if ((st->reqs[i].id < 0 && json_is_null(id)) ||
		    (st->reqs[i].id >= 0 && json_is_integer(id) &&
		    json_integer_value(id) == st->reqs[i].id)) {
			q = &st->reqs[i];
			break;
		}
	}
	assert_non_null(q);
	assert_int_equal(q->seen, 0);
	q->seen++;
	if (q->code != NULL) {
		assert_non_null(th_err_code(r));
		assert_string_equal(th_err_code(r), q->code);
	} else if (q->result != NULL) {
		assert_null(th_err_code(r));
		assert_true(json_equal(json_object_get(r, "result"),
		    q->result));
	} else {
		assert_null(th_err_code(r));
		assert_true(json_is_true(json_object_get(json_object_get(r,
		    "result"), "pong")));
	}
}

/*
 * Receive replies until the requests [from, to) of st and, when marker,
 * the marker ping are all answered, each exactly once.
 */
static void
st_expect(int fd, struct stream *st, size_t from, size_t to, bool marker)
{
	size_t want = to - from + (marker ? 1 : 0), got;
	bool marker_seen = false;
	json_t *r;

	for (got = 0; got < want; got++) {
		r = must_recv(fd);
		if (marker && th_id(r) == MARKER_ID) {
			assert_false(marker_seen);
			assert_null(th_err_code(r));
			marker_seen = true;
		} else
			st_match(st, r);
		json_decref(r);
	}
	for (; from < to; from++)
		assert_int_equal(st->reqs[from].seen, 1);
}

static void
st_reset(struct stream *st)
{
	size_t i;

	for (i = 0; i < st->n; i++)
		st->reqs[i].seen = 0;
}

/* ---- fixture ------------------------------------------------------------- */

/* A handler the test holds until it opens the gate. */
struct gate {
	pthread_mutex_t	 mtx;
	pthread_cond_t	 cv;
	bool		 open;
	int		 entered;
};

static struct gate gate = {
	PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0
};

static void
deadline_in(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static int
h_block(witch_request_t *req, void *ud)
{
	struct gate *g = ud;
	struct timespec ts;
	int rc = 0;

	deadline_in(&ts, TH_TIMEOUT_MS);
	pthread_mutex_lock(&g->mtx);
	g->entered++;
	pthread_cond_broadcast(&g->cv);
	while (!g->open && rc == 0)
		rc = pthread_cond_timedwait(&g->cv, &g->mtx, &ts);
	pthread_mutex_unlock(&g->mtx);
	if (rc != 0)
		return witch_request_error(req, WITCH_ETIMEOUT,
		    "the test never opened the gate");
	return witch_request_reply(req, json_string("released"));
}

static void
gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->mtx);
	g->open = true;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mtx);
}

/* Wait (bounded) until n handlers entered the gate; false on timeout. */
static bool
gate_wait_entered(struct gate *g, int n)
{
	struct timespec ts;
	int rc = 0;

	deadline_in(&ts, TH_TIMEOUT_MS);
	pthread_mutex_lock(&g->mtx);
	while (g->entered < n && rc == 0)
		rc = pthread_cond_timedwait(&g->cv, &g->mtx, &ts);
	rc = g->entered >= n;
	pthread_mutex_unlock(&g->mtx);
	return rc;
}

/* {"len": bytes of the data string, "fnv": its FNV-1a hash}. */
static int
h_digest(witch_request_t *req, void *ud)
{
	json_t *d = witch_request_data(req);
	char hex[17];

	if (!json_is_string(d))
		return witch_request_error(req, WITCH_EINVAL,
		    "digest wants a string");
	fnv_hex(json_string_value(d), json_string_length(d), hex);
	return witch_request_reply(req, json_pack("{s:I, s:s}", "len",
	    (json_int_t)json_string_length(d), "fnv", hex));
}

static void
reg_block(witch_server_t *srv, void *arg)
{
	assert_int_equal(witch_server_register_endpoint(srv, "block",
	    h_block, &gate), 0);
	assert_int_equal(witch_server_register_endpoint(srv, "digest",
	    h_digest, NULL), 0);
}

struct fixture {
	witch_server_t	*srv;
	int		 fd;
};

static struct fixture fx;

/* A server with max_frame (0: default), two workers and "block". */
static int
setup_with(void **state, size_t max_frame)
{
	witch_server_config_t *cfg = th_config();

	if (max_frame != 0)
		assert_int_equal(witch_server_config_set_max_frame(cfg,
		    max_frame), 0);
	assert_int_equal(witch_server_config_set_workers(cfg, 2), 0);
	pthread_mutex_lock(&gate.mtx);
	gate.open = false;
	gate.entered = 0;
	pthread_mutex_unlock(&gate.mtx);
	fx.srv = th_server_start(cfg, reg_block, NULL);
	witch_server_config_free(cfg);
	fx.fd = th_connect(witch_server_port(fx.srv));
	*state = &fx;
	return 0;
}

static int
setup(void **state)
{
	return setup_with(state, 0);
}

static int
setup_small(void **state)
{
	return setup_with(state, SMALL_MAX);
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	gate_open(&gate);
	if (f->fd >= 0)
		close(f->fd);
	witch_server_free(f->srv);
	return 0;
}

/* After the server closed one connection, it still serves a new one. */
static void
assert_server_serves(struct fixture *f)
{
	int fd = th_connect(witch_server_port(f->srv));

	assert_ping(fd, 77);
	close(fd);
}

/* ---- split, byte by byte, pipelined ------------------------------------- */

/* Should the split at offset k be tried?  Every offset but in big frames. */
static bool
want_offset(const struct stream *st, size_t k)
{
	size_t i, start;

	for (i = 0; i < st->n; i++) {
		start = i == 0 ? 0 : st->end[i - 1];
		if (k < start || k >= st->end[i])
			continue;
		if (st->reqs[i].frame.len < 10000)
			return true;
		return k - start < BIG_EDGE || st->end[i] - k <= BIG_EDGE ||
		    (k - start) % BIG_STRIDE == 0;
	}
	return false;
}

/*
 * For each offset k: write a marker ping and bytes [0,k) in one write,
 * await the marker's reply and those of the frames complete before k (so
 * the server has read up to k before the rest exists), then write [k,n)
 * and await the remaining replies.
 */
static void
test_split_every_offset(void **state)
{
	struct fixture *f = *state;
	struct stream st;
	struct wbuf part = { 0 };
	size_t k, ncomplete, tried = 0;

	st_build(&st, true);
	assert_int_equal(st.n, 5);
	for (k = 1; k < st.bytes.len; k++) {
		if (!want_offset(&st, k))
			continue;
		st_reset(&st);
		part.len = 0;
		wb_frame_str(&part, "{\"id\":999999,\"endpoint\":\"ping\"}");
		wb_put(&part, st.bytes.p, k);
		assert_int_equal(th_send_raw(f->fd, part.p, part.len), 0);
		for (ncomplete = 0; ncomplete < st.n &&
		    st.end[ncomplete] <= k; ncomplete++)
			;
		st_expect(f->fd, &st, 0, ncomplete, true);
		assert_int_equal(th_send_raw(f->fd, st.bytes.p + k,
		    st.bytes.len - k), 0);
		st_expect(f->fd, &st, ncomplete, st.n, false);
		tried++;
	}
	/* Every offset of the small frames, sampled in the big one. */
	assert_true(tried > st.end[2] + 2 * BIG_EDGE + BIG_DATA / BIG_STRIDE);
	assert_ping(f->fd, 5);
	wb_free(&part);
	st_free(&st);
}

/* The stream (without its 70 KB frame) written one byte per write. */
static void
test_byte_by_byte(void **state)
{
	struct fixture *f = *state;
	struct stream st;
	size_t i;

	st_build(&st, false);
	for (i = 0; i < st.bytes.len; i++)
		assert_int_equal(th_send_raw(f->fd, st.bytes.p + i, 1), 0);
	st_expect(f->fd, &st, 0, st.n, false);
	assert_ping(f->fd, 5);
	st_free(&st);
}

/* 1,000 requests in one write: 1,000 replies, each id exactly once. */
static void
test_pipeline_1000(void **state)
{
	struct fixture *f = *state;
	struct wbuf b = { 0 };
	char p[128];
	int seen[NPIPE] = { 0 };
	json_int_t id;
	json_t *r, *e;
	int i, n;

	for (i = 0; i < NPIPE; i++) {
		n = snprintf(p, sizeof(p), "{\"id\":%d,\"endpoint\":\"echo\","
		    "\"data\":[%d,\"x%d\"]}", i, i * 3, i);
		wb_frame(&b, p, (size_t)n);
	}
	assert_int_equal(th_send_raw(f->fd, b.p, b.len), 0);
	for (i = 0; i < NPIPE; i++) {
		r = must_recv(f->fd);
		assert_null(th_err_code(r));
		id = th_id(r);
		assert_true(id >= 0 && id < NPIPE);
		assert_int_equal(seen[id], 0);
		seen[id]++;
		snprintf(p, sizeof(p), "x%d", (int)id);
		e = json_object_get(json_object_get(r, "result"), "echo");
		assert_int_equal(json_integer_value(json_array_get(e, 0)),
		    id * 3);
		assert_string_equal(json_string_value(json_array_get(e, 1)),
		    p);
		json_decref(r);
	}
	for (i = 0; i < NPIPE; i++)
		assert_int_equal(seen[i], 1);
	/* No extra reply is pending: the next one is the ping's. */
	assert_ping(f->fd, NPIPE);
	wb_free(&b);
}

/* What one frame of the mixed pipeline must get back. */
struct mixed {
	const char	*payload;
	const char	*id;		/* expected id, compact JSON */
	const char	*code;		/* expected slug; NULL: a result */
	int		 seen;
};

/* Valid and invalid frames in one write: each answered as it should be. */
static void
test_pipeline_mixed(void **state)
{
	struct fixture *f = *state;
	struct mixed m[] = {
		{ "{\"id\":1,\"endpoint\":\"ping\"}", "1", NULL, 0 },
		{ "{bad", "null", "parse_error", 0 },
		{ "{\"id\":2,\"endpoint\":\"echo\",\"data\":2}", "2", NULL, 0 },
		{ "[1,2,3]", "null", "invalid_request", 0 },
		{ "{\"id\":3}", "3", "invalid_request", 0 },
		{ "{\"id\":4,\"endpoint\":\"nope\"}", "4", "unknown_endpoint",
		    0 },
		{ "{\"id\":5,\"endpoint\":\"echo\",\"oneway\":true}", NULL,
		    NULL, 0 },
		{ "{\"id\":6,\"endpoint\":\"echo\",\"data\":6} x", "null",
		    "parse_error", 0 },
		{ "{\"id\":\"s7\",\"endpoint\":\"ping\"}", "\"s7\"", NULL, 0 },
		{ "{\"id\":8,\"endpoint\":\"echo\",\"deadline_ms\":-1}", "8",
		    "invalid_request", 0 },
		{ "{\"id\":9,\"endpoint\":\"echo\",\"data\":9}", "9", NULL, 0 },
	};
	size_t nm = sizeof(m) / sizeof(m[0]), i, want = 0, got;
	struct wbuf b = { 0 };
	const char *code;
	char *ids;
	json_t *r;

	for (i = 0; i < nm; i++) {
		wb_frame_str(&b, m[i].payload);
		if (m[i].id != NULL)
			want++;
	}
	assert_int_equal(th_send_raw(f->fd, b.p, b.len), 0);
	for (got = 0; got < want; got++) {
		r = must_recv(f->fd);
		ids = json_dumps(json_object_get(r, "id"), JSON_COMPACT |
		    JSON_ENCODE_ANY);
		assert_non_null(ids);
		code = th_err_code(r);
		/* Match on id and code (two error replies have id null). */
		for (i = 0; i < nm; i++) {
			if (m[i].id == NULL || m[i].seen ||
			    strcmp(m[i].id, ids) != 0)
				continue;
			if ((m[i].code == NULL) != (code == NULL) ||
			    (code != NULL && strcmp(m[i].code, code) != 0))
				continue;
			break;
		}
		if (i == nm)
			fail_msg("unexpected reply id %s code %s", ids,
			    code ? code : "(result)");
		m[i].seen++;
		if (code == NULL && strcmp(ids, "2") == 0)
			assert_int_equal(json_integer_value(json_object_get(
			    json_object_get(r, "result"), "echo")), 2);
		free(ids);
		json_decref(r);
	}
	for (i = 0; i < nm; i++)
		assert_int_equal(m[i].seen, m[i].id != NULL ? 1 : 0);
	/* The oneway echo sent nothing: the next reply is the ping's. */
	assert_ping(f->fd, 10);
	wb_free(&b);
}

/* ---- max_frame and bad lengths ------------------------------------------- */

/* An echo request of exactly len payload bytes (data: a string of a's). */
static char *
sized_echo(size_t len, size_t *datalen)
{
	static const char pre[] = "{\"id\":1,\"endpoint\":\"echo\",\"data\":\"";
	size_t fixed = sizeof(pre) - 1 + 2;
	char *s;

	assert_true(len > fixed);
	s = malloc(len + 1);
	assert_non_null(s);
	memcpy(s, pre, sizeof(pre) - 1);
	memset(s + sizeof(pre) - 1, 'a', len - fixed);
	memcpy(s + len - 2, "\"}", 3);
	*datalen = len - fixed;
	return s;
}

static void
test_max_frame_exact(void **state)
{
	struct fixture *f = *state;
	size_t dlen;
	char *s = sized_echo(SMALL_MAX, &dlen);
	json_t *r;

	assert_int_equal(strlen(s), SMALL_MAX);
	assert_int_equal(th_send(f->fd, s), 0);
	r = must_recv(f->fd);
	assert_int_equal(th_id(r), 1);
	assert_null(th_err_code(r));
	assert_int_equal(json_string_length(json_object_get(json_object_get(
	    r, "result"), "echo")), dlen);
	json_decref(r);
	assert_ping(f->fd, 2);
	free(s);
}

static void
test_max_frame_plus_one(void **state)
{
	struct fixture *f = *state;
	size_t dlen;
	char *s = sized_echo(SMALL_MAX + 1, &dlen);

	assert_int_equal(th_send(f->fd, s), 0);
	assert_error_null(f->fd, "frame_too_large");
	assert_int_equal(th_wait_eof(f->fd, TH_TIMEOUT_MS), 1);
	assert_server_serves(f);
	free(s);
}

/* The prefix alone (max_frame + 1, no body): rejected at once. */
static void
test_max_frame_plus_one_no_body(void **state)
{
	struct fixture *f = *state;
	struct wbuf b = { 0 };

	wb_header(&b, SMALL_MAX + 1);
	assert_int_equal(th_send_raw(f->fd, b.p, b.len), 0);
	assert_error_null(f->fd, "frame_too_large");
	assert_int_equal(th_wait_eof(f->fd, TH_TIMEOUT_MS), 1);
	assert_server_serves(f);
	wb_free(&b);
}

/* Length 0, and nothing after it: invalid_frame without waiting. */
static void
test_length_zero(void **state)
{
	struct fixture *f = *state;
	static const unsigned char zero[4];

	assert_int_equal(th_send_raw(f->fd, zero, sizeof(zero)), 0);
	assert_error_null(f->fd, "invalid_frame");
	assert_int_equal(th_wait_eof(f->fd, TH_TIMEOUT_MS), 1);
	assert_server_serves(f);
}

/* A valid request, then length 0 in the same write. */
static void
test_length_zero_after_request(void **state)
{
	struct fixture *f = *state;
	struct wbuf b = { 0 };
	json_t *r;

	wb_frame_str(&b, "{\"id\":1,\"endpoint\":\"echo\",\"data\":\"e\"}");
	wb_header(&b, 0);
	assert_int_equal(th_send_raw(f->fd, b.p, b.len), 0);
	r = must_recv(f->fd);
	assert_int_equal(th_id(r), 1);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    r, "result"), "echo")), "e");
	json_decref(r);
	assert_error_null(f->fd, "invalid_frame");
	assert_int_equal(th_wait_eof(f->fd, TH_TIMEOUT_MS), 1);
	wb_free(&b);
}

/* 0xffffffff (beyond even the 64 MiB ceiling) and no body. */
static void
test_length_huge_no_body(void **state)
{
	struct fixture *f = *state;
	static const unsigned char h[4] = { 0xff, 0xff, 0xff, 0xff };

	assert_int_equal(th_send_raw(f->fd, h, sizeof(h)), 0);
	assert_error_null(f->fd, "frame_too_large");
	assert_int_equal(th_wait_eof(f->fd, TH_TIMEOUT_MS), 1);
	assert_server_serves(f);
}

/* A huge length whose prefix arrives one byte per write. */
static void
test_length_huge_split_prefix(void **state)
{
	struct fixture *f = *state;
	static const unsigned char h[4] = { 0x04, 0x00, 0x00, 0x01 };
	size_t i;

	for (i = 0; i < sizeof(h); i++)
		assert_int_equal(th_send_raw(f->fd, h + i, 1), 0);
	assert_error_null(f->fd, "frame_too_large");
	assert_int_equal(th_wait_eof(f->fd, TH_TIMEOUT_MS), 1);
}

/*
 * A request held in its handler, a ping, then a bad prefix, in one write.
 * The ping's reply proves the server has read the bad prefix (the same
 * read delivered all three).  Nothing more may come until the test lets
 * the held handler go; then its reply, then the error frame, then EOF.
 */
static void
owed_then_bad(struct fixture *f, uint32_t badlen, const char *code)
{
	struct wbuf b = { 0 };
	json_t *r;

	wb_frame_str(&b, "{\"id\":1,\"endpoint\":\"block\"}");
	wb_frame_str(&b, "{\"id\":2,\"endpoint\":\"ping\"}");
	wb_header(&b, badlen);
	assert_int_equal(th_send_raw(f->fd, b.p, b.len), 0);
	assert_true(gate_wait_entered(&gate, 1));
	r = must_recv(f->fd);
	assert_int_equal(th_id(r), 2);
	assert_null(th_err_code(r));
	json_decref(r);
	/* Held: neither the reply nor the error frame nor EOF yet. */
	assert_quiet(f->fd, 100);
	gate_open(&gate);
	r = must_recv(f->fd);
	assert_int_equal(th_id(r), 1);
	assert_string_equal(json_string_value(json_object_get(r, "result")),
	    "released");
	json_decref(r);
	assert_error_null(f->fd, code);
	assert_int_equal(th_wait_eof(f->fd, TH_TIMEOUT_MS), 1);
	assert_server_serves(f);
	wb_free(&b);
}

static void
test_owed_reply_before_invalid_frame(void **state)
{
	owed_then_bad(*state, 0, "invalid_frame");
}

static void
test_owed_reply_before_frame_too_large(void **state)
{
	owed_then_bad(*state, SMALL_MAX + 1, "frame_too_large");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_split_every_offset,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_byte_by_byte, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_pipeline_1000, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_pipeline_mixed, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_max_frame_exact,
		    setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_max_frame_plus_one,
		    setup_small, teardown),
		cmocka_unit_test_setup_teardown(
		    test_max_frame_plus_one_no_body, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_length_zero, setup_small,
		    teardown),
		cmocka_unit_test_setup_teardown(test_length_zero_after_request,
		    setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_length_huge_no_body,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_length_huge_split_prefix,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_owed_reply_before_invalid_frame, setup_small,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_owed_reply_before_frame_too_large, setup_small,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
