/*
 * tests/unit/test_frame.c: the incremental frame decoder (proto/frame.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <witch/error.h>
#include <witch/server.h>

#include "core/alloc.h"
#include "proto/frame.h"

#define MAXREC	1100

/* What the callback saw. */
struct rec {
	size_t		 count;
	size_t		 lens[MAXREC];
	unsigned char	*copies[MAXREC];
	const char	*ptrs[MAXREC];
	int		 stop_at;	/* return -99 on this call (1-based) */
};

static int
rec_cb(void *ud, const char *payload, size_t len)
{
	struct rec *r = ud;

	assert_true(r->count < MAXREC);
	assert_true(len > 0);
	r->lens[r->count] = len;
	r->ptrs[r->count] = payload;
	/* Plain malloc: witch__alloc_fail_after() counts only the decoder. */
	r->copies[r->count] = malloc(len);
	assert_non_null(r->copies[r->count]);
	memcpy(r->copies[r->count], payload, len);
	r->count++;
	if (r->stop_at != 0 && (size_t)r->stop_at == r->count)
		return -99;
	return 0;
}

static void
rec_free(struct rec *r)
{
	size_t i;

	for (i = 0; i < r->count; i++)
		free(r->copies[i]);
	memset(r, 0, sizeof(*r));
}

/* Appends one frame to s at *off; returns the new offset. */
static size_t
add_frame(unsigned char *s, size_t off, const unsigned char *p, uint32_t len)
{
	witch__frame_put_header(s + off, len);
	memcpy(s + off + WITCH__FRAME_HDR, p, len);
	return off + WITCH__FRAME_HDR + len;
}

/* A stream of 5 frames: 1 byte, small, 3000 bytes, 2 bytes, 255 bytes. */
#define NFRAMES	5
static const uint32_t frame_lens[NFRAMES] = { 1, 17, 3000, 2, 255 };
static unsigned char payloads[NFRAMES][3000];
static unsigned char stream[NFRAMES * WITCH__FRAME_HDR + 1 + 17 + 3000 +
    2 + 255];

static size_t
make_stream(void)
{
	size_t off = 0, i, j;

	for (i = 0; i < NFRAMES; i++) {
		for (j = 0; j < frame_lens[i]; j++)
			payloads[i][j] = (unsigned char)(i * 31 + j * 7);
		off = add_frame(stream, off, payloads[i], frame_lens[i]);
	}
	assert_int_equal(off, sizeof(stream));
	return off;
}

static void
check_stream(struct rec *r)
{
	size_t i;

	assert_int_equal(r->count, NFRAMES);
	for (i = 0; i < NFRAMES; i++) {
		assert_int_equal(r->lens[i], frame_lens[i]);
		assert_memory_equal(r->copies[i], payloads[i], frame_lens[i]);
	}
}

static void
test_header_roundtrip(void **state)
{
	static const uint32_t vals[] = { 1, 0x7f, 0x80, 0x100, 0x01020304,
	    0xfffffffe, 0xffffffff };
	unsigned char h[WITCH__FRAME_HDR];
	unsigned char buf[WITCH__FRAME_HDR + 1];
	struct witch__decoder d;
	struct rec r = { 0 };
	size_t i;

	witch__frame_put_header(h, 0x01020304);
	assert_int_equal(h[0], 1);
	assert_int_equal(h[1], 2);
	assert_int_equal(h[2], 3);
	assert_int_equal(h[3], 4);
	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		witch__frame_put_header(h, vals[i]);
		assert_int_equal((uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
		    (uint32_t)h[2] << 8 | h[3], vals[i]);
	}
	/* The decoder reads what put_header wrote. */
	witch__decoder_init(&d, 16);
	witch__frame_put_header(buf, 1);
	buf[4] = 'x';
	assert_int_equal(witch__decoder_feed(&d, buf, sizeof(buf), rec_cb,
	    &r), 0);
	assert_int_equal(r.count, 1);
	assert_int_equal(r.lens[0], 1);
	assert_int_equal(r.copies[0][0], 'x');
	witch__decoder_clear(&d);
	rec_free(&r);
}

static void
test_whole_stream_no_copy(void **state)
{
	struct witch__decoder d;
	struct rec r = { 0 };
	size_t n = make_stream(), i, off = 0;

	witch__decoder_init(&d, 4096);
	/* No allocation may happen: fail the next one to prove it. */
	witch__alloc_fail_after(1);
	assert_int_equal(witch__decoder_feed(&d, stream, n, rec_cb, &r), 0);
	witch__alloc_fail_after(0);
	assert_false(witch__decoder_partial(&d));
	assert_int_equal(witch__decoder_memory(&d), 0);
	check_stream(&r);
	/* Delivered straight from the fed bytes. */
	for (i = 0; i < NFRAMES; i++) {
		off += WITCH__FRAME_HDR;
		assert_ptr_equal(r.ptrs[i], (const char *)stream + off);
		off += frame_lens[i];
	}
	witch__decoder_clear(&d);
	rec_free(&r);
}

static void
test_split_every_offset(void **state)
{
	struct witch__decoder d;
	struct rec r = { 0 };
	size_t n = make_stream(), cut;

	for (cut = 0; cut <= n; cut++) {
		witch__decoder_init(&d, 3000);
		assert_int_equal(witch__decoder_feed(&d, stream, cut, rec_cb,
		    &r), 0);
		assert_int_equal(witch__decoder_feed(&d, stream + cut, n - cut,
		    rec_cb, &r), 0);
		assert_false(witch__decoder_partial(&d));
		check_stream(&r);
		witch__decoder_clear(&d);
		rec_free(&r);
	}
}

static void
test_three_way_splits(void **state)
{
	struct witch__decoder d;
	struct rec r = { 0 };
	size_t n = make_stream(), a, b;

	/* Every pair of cuts around the frame boundaries of the small ones. */
	for (a = 0; a < 40; a++) {
		for (b = a; b <= n; b += (b < 60 || b > n - 300) ? 1 : 97) {
			witch__decoder_init(&d, 3000);
			assert_int_equal(witch__decoder_feed(&d, stream, a,
			    rec_cb, &r), 0);
			assert_int_equal(witch__decoder_feed(&d, stream + a,
			    b - a, rec_cb, &r), 0);
			assert_int_equal(witch__decoder_feed(&d, stream + b,
			    n - b, rec_cb, &r), 0);
			check_stream(&r);
			witch__decoder_clear(&d);
			rec_free(&r);
		}
	}
}

static void
test_byte_by_byte(void **state)
{
	struct witch__decoder d;
	struct rec r = { 0 };
	size_t n = make_stream(), i, off = 0, f = 0;

	witch__decoder_init(&d, 3000);
	for (i = 0; i < n; i++) {
		assert_int_equal(witch__decoder_feed(&d, stream + i, 1, rec_cb,
		    &r), 0);
		/* partial() is true exactly between frame boundaries. */
		if (f < NFRAMES && i + 1 == off + WITCH__FRAME_HDR +
		    frame_lens[f]) {
			off = i + 1;
			f++;
			assert_false(witch__decoder_partial(&d));
			assert_int_equal(r.count, f);
		} else
			assert_true(witch__decoder_partial(&d));
		/* Once the header is complete, the body is held at size. */
		if (i + 1 >= off + WITCH__FRAME_HDR && f < NFRAMES &&
		    i + 1 > off)
			assert_int_equal(witch__decoder_memory(&d),
			    frame_lens[f]);
	}
	check_stream(&r);
	witch__decoder_clear(&d);
	rec_free(&r);
}

static void
test_pipelined_1000(void **state)
{
	static unsigned char big[1000 * (WITCH__FRAME_HDR + 20)];
	unsigned char p[20];
	struct witch__decoder d;
	struct rec r = { 0 };
	size_t off = 0, i;

	for (i = 0; i < 1000; i++) {
		memset(p, 0, sizeof(p));
		(void)snprintf((char *)p, sizeof(p), "frame %zu", i);
		off = add_frame(big, off, p, (uint32_t)(1 + i % 20));
	}
	witch__decoder_init(&d, 20);
	assert_int_equal(witch__decoder_feed(&d, big, off, rec_cb, &r), 0);
	assert_int_equal(r.count, 1000);
	for (i = 0; i < 1000; i++) {
		char want[20];

		memset(want, 0, sizeof(want));
		(void)snprintf(want, sizeof(want), "frame %zu", i);
		assert_int_equal(r.lens[i], 1 + i % 20);
		assert_memory_equal(r.copies[i], want, 1 + i % 20);
	}
	assert_false(witch__decoder_partial(&d));
	witch__decoder_clear(&d);
	rec_free(&r);
}

/* Two good frames, then a bad prefix with no body, then a good frame. */
static void
bad_prefix(uint32_t badlen, int want)
{
	unsigned char s[64], tail[16];
	struct witch__decoder d;
	struct rec r = { 0 };
	size_t off = 0, cut;

	off = add_frame(s, off, (const unsigned char *)"a", 1);
	off = add_frame(s, off, (const unsigned char *)"bc", 2);
	witch__frame_put_header(s + off, badlen);
	off += WITCH__FRAME_HDR;
	/* The whole thing in one feed: rejected without waiting for a body. */
	witch__decoder_init(&d, 100);
	witch__alloc_fail_after(1);	/* and without allocating */
	assert_int_equal(witch__decoder_feed(&d, s, off, rec_cb, &r), want);
	witch__alloc_fail_after(0);
	assert_int_equal(r.count, 2);
	assert_memory_equal(r.copies[0], "a", 1);
	assert_memory_equal(r.copies[1], "bc", 2);
	assert_int_equal(witch__decoder_memory(&d), 0);
	/* Poisoned: a good frame is not delivered, same error again. */
	(void)add_frame(tail, 0, (const unsigned char *)"z", 1);
	assert_int_equal(witch__decoder_feed(&d, tail, 5, rec_cb, &r), want);
	assert_int_equal(witch__decoder_feed(&d, tail, 0, rec_cb, &r), want);
	assert_int_equal(r.count, 2);
	witch__decoder_clear(&d);
	rec_free(&r);

	/* The prefix split anywhere: the error comes with its last byte. */
	for (cut = off - WITCH__FRAME_HDR + 1; cut < off; cut++) {
		witch__decoder_init(&d, 100);
		assert_int_equal(witch__decoder_feed(&d, s, cut, rec_cb, &r),
		    0);
		assert_int_equal(r.count, 2);
		assert_true(witch__decoder_partial(&d));
		assert_int_equal(witch__decoder_feed(&d, s + cut, off - cut,
		    rec_cb, &r), want);
		assert_int_equal(r.count, 2);
		witch__decoder_clear(&d);
		rec_free(&r);
	}
}

static void
test_zero_length(void **state)
{
	bad_prefix(0, WITCH_EINVALID_FRAME);
}

static void
test_oversized_length(void **state)
{
	bad_prefix(101, WITCH_EFRAME_TOO_LARGE);
	bad_prefix(0xffffffffu, WITCH_EFRAME_TOO_LARGE);
	bad_prefix(WITCH_MAX_FRAME_CEILING + 1, WITCH_EFRAME_TOO_LARGE);
}

static void
test_max_frame_boundary(void **state)
{
	static unsigned char s[2 * (WITCH__FRAME_HDR + 1001)];
	static unsigned char p[1001];
	struct witch__decoder d;
	struct rec r = { 0 };
	size_t off;

	memset(p, 'm', sizeof(p));
	off = add_frame(s, 0, p, 1000);
	witch__decoder_init(&d, 1000);
	assert_int_equal(witch__decoder_feed(&d, s, off, rec_cb, &r), 0);
	assert_int_equal(r.count, 1);
	assert_int_equal(r.lens[0], 1000);
	/* Split, so the body goes through the stored path too. */
	assert_int_equal(witch__decoder_feed(&d, s, 10, rec_cb, &r), 0);
	assert_int_equal(witch__decoder_memory(&d), 1000);
	assert_int_equal(witch__decoder_feed(&d, s + 10, off - 10, rec_cb,
	    &r), 0);
	assert_int_equal(r.count, 2);
	assert_memory_equal(r.copies[1], p, 1000);
	/* max_frame + 1 is refused from the prefix alone. */
	off = add_frame(s, 0, p, 1001);
	assert_int_equal(witch__decoder_feed(&d, s, WITCH__FRAME_HDR, rec_cb,
	    &r), WITCH_EFRAME_TOO_LARGE);
	assert_int_equal(r.count, 2);
	witch__decoder_clear(&d);
	rec_free(&r);

	/* max_frame of 1: a 1-byte frame passes, 2 does not. */
	witch__decoder_init(&d, 1);
	off = add_frame(s, 0, (const unsigned char *)"q", 1);
	assert_int_equal(witch__decoder_feed(&d, s, off, rec_cb, &r), 0);
	assert_int_equal(r.count, 1);
	off = add_frame(s, 0, (const unsigned char *)"qq", 2);
	assert_int_equal(witch__decoder_feed(&d, s, off, rec_cb, &r),
	    WITCH_EFRAME_TOO_LARGE);
	assert_int_equal(r.count, 1);
	witch__decoder_clear(&d);
	rec_free(&r);
}

static void
test_callback_stops(void **state)
{
	struct witch__decoder d;
	struct rec r = { 0 };
	size_t n = make_stream();

	/* Stop on the 2nd frame: the rest of the feed is discarded. */
	witch__decoder_init(&d, 3000);
	r.stop_at = 2;
	assert_int_equal(witch__decoder_feed(&d, stream, n, rec_cb, &r), -99);
	assert_int_equal(r.count, 2);
	assert_int_equal(witch__decoder_feed(&d, stream, n, rec_cb, &r), -99);
	assert_int_equal(r.count, 2);
	assert_false(witch__decoder_partial(&d));
	witch__decoder_clear(&d);
	rec_free(&r);

	/* Stop on a frame delivered from the stored partial body. */
	witch__decoder_init(&d, 3000);
	r.stop_at = 3;
	assert_int_equal(witch__decoder_feed(&d, stream, 40, rec_cb, &r), 0);
	assert_int_equal(r.count, 2);
	assert_int_equal(witch__decoder_memory(&d), 3000);
	assert_int_equal(witch__decoder_feed(&d, stream + 40, n - 40, rec_cb,
	    &r), -99);
	assert_int_equal(r.count, 3);
	assert_int_equal(r.lens[2], 3000);
	assert_int_equal(witch__decoder_memory(&d), 0);
	witch__decoder_clear(&d);
	rec_free(&r);
}

static void
test_enomem(void **state)
{
	struct witch__decoder d;
	struct rec r = { 0 };
	size_t n = make_stream();

	/*
	 * Frames 0 and 1 (ending at byte 26) and half the prefix of frame 2:
	 * nothing allocated yet.  Completing the prefix allocates its body,
	 * and that allocation fails.
	 */
	witch__decoder_init(&d, 3000);
	assert_int_equal(witch__decoder_feed(&d, stream, 28, rec_cb, &r), 0);
	assert_int_equal(r.count, 2);
	assert_true(witch__decoder_partial(&d));
	assert_int_equal(witch__decoder_memory(&d), 0);
	witch__alloc_fail_after(1);
	assert_int_equal(witch__decoder_feed(&d, stream + 28, 12, rec_cb, &r),
	    WITCH_ENOMEM);
	witch__alloc_fail_after(0);
	assert_int_equal(r.count, 2);
	assert_int_equal(witch__decoder_memory(&d), 0);
	assert_false(witch__decoder_partial(&d));
	/* Poisoned. */
	assert_int_equal(witch__decoder_feed(&d, stream + 40, n - 40, rec_cb,
	    &r), WITCH_ENOMEM);
	assert_int_equal(r.count, 2);
	witch__decoder_clear(&d);
	/* Re-initialised, it works again. */
	rec_free(&r);
	witch__decoder_init(&d, 3000);
	assert_int_equal(witch__decoder_feed(&d, stream, n, rec_cb, &r), 0);
	check_stream(&r);
	witch__decoder_clear(&d);
	rec_free(&r);
}

static void
test_clear_partial(void **state)
{
	struct witch__decoder d;
	struct rec r = { 0 };
	size_t n = make_stream();

	witch__decoder_init(&d, 3000);
	assert_false(witch__decoder_partial(&d));
	assert_int_equal(witch__decoder_feed(&d, stream, 2, rec_cb, &r), 0);
	assert_true(witch__decoder_partial(&d));
	assert_int_equal(witch__decoder_memory(&d), 0);
	/* 8 bytes into the 3rd frame's body: the whole body is allocated. */
	assert_int_equal(witch__decoder_feed(&d, stream + 2, 38 - 2, rec_cb,
	    &r), 0);
	assert_int_equal(r.count, 2);
	assert_true(witch__decoder_partial(&d));
	assert_int_equal(witch__decoder_memory(&d), 3000);
	witch__decoder_clear(&d);	/* frees it; ASan checks the leak */
	assert_false(witch__decoder_partial(&d));
	assert_int_equal(witch__decoder_memory(&d), 0);
	assert_int_equal(witch__decoder_feed(&d, stream, n, rec_cb, &r), 0);
	assert_int_equal(r.count, 2 + NFRAMES);
	witch__decoder_clear(&d);
	rec_free(&r);
	(void)n;
}

static void
test_init_clamps(void **state)
{
	struct witch__decoder d;

	witch__decoder_init(&d, 0);
	assert_int_equal(d.max_frame, 1);
	witch__decoder_init(&d, 0xffffffffu);
	assert_int_equal(d.max_frame, WITCH_MAX_FRAME_CEILING);
	assert_int_equal(witch__decoder_feed(&d, NULL, 0, rec_cb, NULL), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_roundtrip),
		cmocka_unit_test(test_whole_stream_no_copy),
		cmocka_unit_test(test_split_every_offset),
		cmocka_unit_test(test_three_way_splits),
		cmocka_unit_test(test_byte_by_byte),
		cmocka_unit_test(test_pipelined_1000),
		cmocka_unit_test(test_zero_length),
		cmocka_unit_test(test_oversized_length),
		cmocka_unit_test(test_max_frame_boundary),
		cmocka_unit_test(test_callback_stops),
		cmocka_unit_test(test_enomem),
		cmocka_unit_test(test_clear_partial),
		cmocka_unit_test(test_init_clamps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
