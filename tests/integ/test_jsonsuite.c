/*
 * test_jsonsuite: every file of JSONTestSuite's test_parsing directory
 * ($WITCH_TESTDATA/JSONTestSuite/test_parsing) sent to a real server.
 *
 *  - Bare, as a frame payload: each file gets exactly one reply (y_ files
 *    are valid JSON but never a request: invalid_request; n_ and i_ files
 *    parse_error or invalid_request), and a ping sent behind every file
 *    proves the stream is still in sync.  An empty file is a frame of
 *    length 0 and a file over max_frame is too large: both are answered
 *    with their error frame and EOF, and the test reconnects.
 *  - Wrapped as the data of an echo request: every y_ file that jansson
 *    reads comes back equal to what jansson reads locally; n_ and i_ files
 *    still get exactly one reply each.
 *
 * Skipped when the corpus is absent.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/stat.h>

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "integ/harness.h"

/* Small enough that the corpus' 250 KB file is too large. */
#define SUITE_MAX_FRAME	(128u << 10)
#define LOCAL_FLAGS	(JSON_DECODE_ANY | JSON_ALLOW_NUL)

struct corpus_file {
	char		 name[NAME_MAX + 1];
	unsigned char	*data;
	size_t		 len;
};

struct fixture {
	witch_server_t		*srv;
	int			 fd;
	struct corpus_file	*files;
	size_t			 nfiles;
};

static struct fixture fx;

/* ---- corpus -------------------------------------------------------------- */

static bool
is_corpus_name(const char *n)
{
	size_t l = strlen(n);

	return (n[0] == 'y' || n[0] == 'n' || n[0] == 'i') && n[1] == '_' &&
	    l > 5 && strcmp(n + l - 5, ".json") == 0;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(((const struct corpus_file *)a)->name,
	    ((const struct corpus_file *)b)->name);
}

static unsigned char *
slurp(const char *path, size_t *len)
{
	struct stat st;
	unsigned char *p;
	ssize_t r;
	size_t off = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	p = malloc((size_t)st.st_size + 1);
	assert_non_null(p);
	while (off < (size_t)st.st_size) {
		r = read(fd, p + off, (size_t)st.st_size - off);
		assert_true(r > 0);
		off += (size_t)r;
	}
	close(fd);
	*len = off;
	return p;
}

/* Load every y_/n_/i_ file, sorted by name.  false if there is no corpus. */
static bool
corpus_load(struct fixture *f)
{
	const char *td = th_testdata();
	char dir[PATH_MAX], path[PATH_MAX + NAME_MAX + 2];
	struct dirent *de;
	size_t cap = 0;
	DIR *d;

	if (td == NULL)
		return false;
	snprintf(dir, sizeof(dir), "%s/JSONTestSuite/test_parsing", td);
	if ((d = opendir(dir)) == NULL)
		return false;
	while ((de = readdir(d)) != NULL) {
		if (!is_corpus_name(de->d_name))
			continue;
		if (f->nfiles == cap) {
			cap = cap ? cap * 2 : 512;
			f->files = realloc(f->files, cap * sizeof(*f->files));
			assert_non_null(f->files);
		}
		snprintf(f->files[f->nfiles].name, sizeof(f->files[0].name),
		    "%s", de->d_name);
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		f->files[f->nfiles].data = slurp(path,
		    &f->files[f->nfiles].len);
		f->nfiles++;
	}
	closedir(d);
	qsort(f->files, f->nfiles, sizeof(*f->files), by_name);
	return f->nfiles > 0;
}

/* ---- fixture ------------------------------------------------------------- */

static int
setup(void **state)
{
	witch_server_config_t *cfg;

	memset(&fx, 0, sizeof(fx));
	fx.fd = -1;
	*state = &fx;
	if (!corpus_load(&fx))
		return 0;	/* each test skips */
	cfg = th_config();
	assert_int_equal(witch_server_config_set_max_frame(cfg,
	    SUITE_MAX_FRAME), 0);
	fx.srv = th_server_start(cfg, NULL, NULL);
	witch_server_config_free(cfg);
	fx.fd = th_connect(witch_server_port(fx.srv));
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	size_t i;

	if (f->fd >= 0)
		close(f->fd);
	witch_server_free(f->srv);
	for (i = 0; i < f->nfiles; i++)
		free(f->files[i].data);
	free(f->files);
	memset(f, 0, sizeof(*f));
	return 0;
}

/* ---- wire helpers -------------------------------------------------------- */

struct wbuf {
	unsigned char	*p;
	size_t		 len, cap;
};

static void
wb_put(struct wbuf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		while (b->len + n > b->cap)
			b->cap = b->cap ? b->cap * 2 : 1024;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void
wb_header(struct wbuf *b, size_t n)
{
	unsigned char h[4];

	h[0] = (unsigned char)(n >> 24);
	h[1] = (unsigned char)(n >> 16);
	h[2] = (unsigned char)(n >> 8);
	h[3] = (unsigned char)n;
	wb_put(b, h, 4);
}

static int
read_n(int fd, unsigned char *p, size_t n)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ssize_t r;

	while (n > 0) {
		if (poll(&pfd, 1, TH_TIMEOUT_MS) <= 0)
			return -1;
		if ((r = read(fd, p, n)) <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/*
 * Receive one reply (JSON_ALLOW_NUL: echoed data may hold \u0000).  Fails
 * the test, naming the file, if none comes or it is not JSON.
 */
static json_t *
recv_reply(int fd, const char *file)
{
	unsigned char h[4], *b;
	json_error_t jerr;
	size_t n;
	json_t *j;

	if (read_n(fd, h, 4) != 0)
		fail_msg("%s: no reply", file);
	n = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
	if (n == 0 || n > (64u << 20))
		fail_msg("%s: reply length %zu", file, n);
	b = malloc(n);
	assert_non_null(b);
	if (read_n(fd, b, n) != 0)
		fail_msg("%s: truncated reply", file);
	j = json_loadb((const char *)b, n, JSON_ALLOW_NUL, &jerr);
	free(b);
	if (j == NULL)
		fail_msg("%s: reply is not JSON: %s", file, jerr.text);
	return j;
}

static bool
is_sync(const json_t *r, size_t i)
{
	char want[32];

	snprintf(want, sizeof(want), "sync-%zu", i);
	return json_is_string(json_object_get(r, "id")) &&
	    strcmp(json_string_value(json_object_get(r, "id")), want) == 0;
}

/*
 * Send payload (n bytes) and a ping with id "sync-<i>" in one write; the
 * ping must be answered, and exactly one other reply must come: it is
 * returned.  The ping's reply comes after it or before it (any order),
 * but nothing else may arrive.
 */
static json_t *
roundtrip(int fd, const void *payload, size_t n, size_t i, const char *file)
{
	struct wbuf b = { 0 };
	json_t *r, *other = NULL;
	bool synced = false;
	char ping[64];
	int k;

	wb_header(&b, n);
	wb_put(&b, payload, n);
	k = snprintf(ping, sizeof(ping),
	    "{\"id\":\"sync-%zu\",\"endpoint\":\"ping\"}", i);
	wb_header(&b, (size_t)k);
	wb_put(&b, ping, (size_t)k);
	assert_int_equal(th_send_raw(fd, b.p, b.len), 0);
	free(b.p);
	for (k = 0; k < 2; k++) {
		r = recv_reply(fd, file);
		if (!synced && is_sync(r, i)) {
			if (!json_is_true(json_object_get(json_object_get(r,
			    "result"), "pong")))
				fail_msg("%s: the sync ping failed", file);
			synced = true;
			json_decref(r);
			continue;
		}
		if (other != NULL)
			fail_msg("%s: two replies for one frame", file);
		other = r;
	}
	assert_true(synced);
	assert_non_null(other);
	return other;
}

/* Send a frame that must close the connection: error frame, EOF. */
static void
expect_fatal(struct fixture *f, const struct corpus_file *cf,
    const char *code)
{
	struct wbuf b = { 0 };
	json_t *r;

	wb_header(&b, cf->len);
	wb_put(&b, cf->data, cf->len);
	/* The server may stop reading once it has the prefix. */
	(void)th_send_raw(f->fd, b.p, b.len);
	free(b.p);
	r = recv_reply(f->fd, cf->name);
	if (th_err_code(r) == NULL || strcmp(th_err_code(r), code) != 0)
		fail_msg("%s: expected %s, got %s", cf->name, code,
		    th_err_code(r) ? th_err_code(r) : "a result");
	assert_true(json_is_null(json_object_get(r, "id")));
	json_decref(r);
	assert_int_equal(th_wait_eof(f->fd, TH_TIMEOUT_MS), 1);
	close(f->fd);
	f->fd = th_connect(witch_server_port(f->srv));
}

/* ---- expectations -------------------------------------------------------- */

/*
 * What the server must answer for this payload, from jansson's local
 * reading with the server's flags: not readable → parse_error (a key
 * holding \u0000 is readable JSON jansson cannot represent:
 * invalid_request); readable → invalid_request (no corpus file is a
 * request).  *id gets the id the reply must carry (JSON null unless the
 * file is an object with a usable id).  Strict JSON (framing.md): a raw
 * NUL byte is never readable, although jansson 2.14 reads one right
 * after a number as the end of input (n_multidigit_number_then_00).
 */
static const char *
predict(const struct corpus_file *cf, json_t **id)
{
	json_error_t jerr;
	json_t *v, *fid;

	*id = json_null();
	if (memchr(cf->data, '\0', cf->len) != NULL)
		return "parse_error";
	v = json_loadb((const char *)cf->data, cf->len, LOCAL_FLAGS, &jerr);
	if (v == NULL)
		return json_error_code(&jerr) == json_error_null_byte_in_key ?
		    "invalid_request" : "parse_error";
	fid = json_object_get(v, "id");
	if (json_is_integer(fid) || json_is_string(fid)) {
		json_decref(*id);
		*id = json_incref(fid);
	}
	json_decref(v);
	return "invalid_request";
}

/* ---- tests --------------------------------------------------------------- */

static void
test_corpus_bare(void **state)
{
	struct fixture *f = *state;
	size_t i, replies = 0, fatal = 0, jansson_rejects_y = 0;
	const char *want, *code;
	json_t *r, *id;

	if (f->nfiles == 0)
		skip();
	for (i = 0; i < f->nfiles; i++) {
		const struct corpus_file *cf = &f->files[i];

		if (cf->len == 0) {
			expect_fatal(f, cf, "invalid_frame");
			fatal++;
			continue;
		}
		if (cf->len > SUITE_MAX_FRAME) {
			expect_fatal(f, cf, "frame_too_large");
			fatal++;
			continue;
		}
		want = predict(cf, &id);
		r = roundtrip(f->fd, cf->data, cf->len, i, cf->name);
		replies++;
		code = th_err_code(r);
		if (code == NULL)
			fail_msg("%s: got a result", cf->name);
		/* The corpus class first, then the exact prediction. */
		switch (cf->name[0]) {
		case 'y':
			if (strcmp(want, "parse_error") == 0) {
				/* jansson's own limit (e.g. huge numbers). */
				jansson_rejects_y++;
				print_message("note: %s: jansson cannot read "
				    "it\n", cf->name);
			} else if (strcmp(code, "invalid_request") != 0)
				fail_msg("%s: %s, want invalid_request",
				    cf->name, code);
			break;
		default:
			if (strcmp(code, "parse_error") != 0 &&
			    strcmp(code, "invalid_request") != 0)
				fail_msg("%s: %s", cf->name, code);
			break;
		}
		if (strcmp(code, want) != 0)
			fail_msg("%s: %s, want %s", cf->name, code, want);
		if (!json_equal(json_object_get(r, "id"), id))
			fail_msg("%s: reply id differs", cf->name);
		if (!json_is_string(json_object_get(json_object_get(r,
		    "error"), "message")))
			fail_msg("%s: no error message", cf->name);
		json_decref(id);
		json_decref(r);
	}
	/* Every file was answered exactly once: one reply or one close. */
	assert_int_equal(replies + fatal, f->nfiles);
	assert_true(fatal >= 2);	/* the empty file and the 250 KB one */
	assert_true(jansson_rejects_y < 5);
	print_message("%zu files: %zu replies, %zu fatal frames, %zu y_ "
	    "files jansson cannot read\n", f->nfiles, replies, fatal,
	    jansson_rejects_y);
}

/* {"id":i,"endpoint":"echo","data":<file>} as a new buffer. */
static unsigned char *
wrap(const struct corpus_file *cf, size_t i, size_t *len)
{
	struct wbuf b = { 0 };
	char pre[64];
	int k;

	k = snprintf(pre, sizeof(pre), "{\"id\":%zu,\"endpoint\":\"echo\","
	    "\"data\":", i);
	wb_put(&b, pre, (size_t)k);
	wb_put(&b, cf->data, cf->len);
	wb_put(&b, "}", 1);
	*len = b.len;
	return b.p;
}

/* Every y_ file jansson reads, as echo data, comes back equal. */
static void
test_corpus_y_echoed(void **state)
{
	struct fixture *f = *state;
	size_t i, n, echoed = 0, skipped = 0;
	unsigned char *p;
	json_t *local, *r;

	if (f->nfiles == 0)
		skip();
	for (i = 0; i < f->nfiles; i++) {
		const struct corpus_file *cf = &f->files[i];

		if (cf->name[0] != 'y')
			continue;
		local = json_loadb((const char *)cf->data, cf->len,
		    LOCAL_FLAGS, NULL);
		if (local == NULL) {
			skipped++;
			continue;
		}
		p = wrap(cf, i, &n);
		r = roundtrip(f->fd, p, n, i, cf->name);
		free(p);
		if (th_err_code(r) != NULL)
			fail_msg("%s: %s", cf->name, th_err_code(r));
		if (th_id(r) != (json_int_t)i)
			fail_msg("%s: wrong id", cf->name);
		if (!json_equal(json_object_get(json_object_get(r, "result"),
		    "echo"), local))
			fail_msg("%s: echo differs from the local parse",
			    cf->name);
		echoed++;
		json_decref(local);
		json_decref(r);
	}
	assert_true(echoed > 80);
	print_message("%zu y_ files echoed, %zu skipped (jansson cannot "
	    "read them)\n", echoed, skipped);
}

/*
 * n_ and i_ files as echo data: exactly one reply each (the sync ping
 * checks there is no second one), an echo when jansson reads the whole
 * wrapped request, else a parse_error or invalid_request.
 */
static void
test_corpus_n_i_wrapped(void **state)
{
	struct fixture *f = *state;
	size_t i, n, results = 0, errors = 0;
	json_error_t jerr;
	const char *code;
	unsigned char *p;
	json_t *local, *r;
	bool readable;

	if (f->nfiles == 0)
		skip();
	for (i = 0; i < f->nfiles; i++) {
		const struct corpus_file *cf = &f->files[i];

		if (cf->name[0] == 'y' || cf->len + 64 > SUITE_MAX_FRAME)
			continue;
		p = wrap(cf, i, &n);
		local = json_loadb((const char *)p, n, LOCAL_FLAGS, &jerr);
		readable = local != NULL ||
		    json_error_code(&jerr) == json_error_null_byte_in_key;
		/* Strict JSON: a raw NUL is never readable (see predict). */
		if (memchr(p, '\0', n) != NULL) {
			readable = false;
			json_decref(local);
			local = NULL;
		}
		r = roundtrip(f->fd, p, n, i, cf->name);
		free(p);
		code = th_err_code(r);
		if (code == NULL) {
			/* Only when the wrapped text is a valid request. */
			if (local == NULL || th_id(r) != (json_int_t)i ||
			    !json_equal(json_object_get(json_object_get(r,
			    "result"), "echo"), json_object_get(local,
			    "data")))
				fail_msg("%s: unexpected result", cf->name);
			results++;
		} else {
			if (strcmp(code, "parse_error") != 0 &&
			    strcmp(code, "invalid_request") != 0)
				fail_msg("%s: %s", cf->name, code);
			if (readable == (strcmp(code, "parse_error") == 0))
				fail_msg("%s: %s disagrees with jansson",
				    cf->name, code);
			errors++;
		}
		json_decref(local);
		json_decref(r);
	}
	assert_true(errors > 150);
	print_message("%zu wrapped n_/i_ files: %zu echoed, %zu errors\n",
	    results + errors, results, errors);
}

/* True when the corpus directory is there. */
static bool
corpus_present(void)
{
	const char *td = th_testdata();
	char dir[PATH_MAX];
	DIR *d;

	if (td == NULL)
		return false;
	snprintf(dir, sizeof(dir), "%s/JSONTestSuite/test_parsing", td);
	if ((d = opendir(dir)) == NULL)
		return false;
	closedir(d);
	return true;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_corpus_bare, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_corpus_y_echoed, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_corpus_n_i_wrapped, setup,
		    teardown),
	};
	int rc;

	/* Without the corpus, say where it was looked for. */
	if (!corpus_present()) {
		if (getenv("WITCH_TESTDATA") == NULL)
			printf("test_jsonsuite: skipped: WITCH_TESTDATA is not "
			    "set (make check sets it to ../shared/testdata)\n");
		else
			printf("test_jsonsuite: skipped: no JSONTestSuite "
			    "corpus at %s/JSONTestSuite/test_parsing\n",
			    getenv("WITCH_TESTDATA"));
		fflush(stdout);
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	/* Without the corpus, tell the test driver we skipped (77). */
	return rc == 0 && !corpus_present() ? 77 : rc;
}
