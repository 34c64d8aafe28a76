/*
 * tests/fuzz/fuzz_frame.c: the frame decoder fed in chunks.
 *
 * Input: 3 bytes of max_frame (big-endian, plus one), 8 bytes of chunk
 * sizes (each plus one, used in turn), then the stream.  Each delivered
 * payload is parsed as a request and answered with the reply builders; a
 * request for endpoint "stop" makes the callback stop the feed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <witch/error.h>

#include "proto/envelope.h"
#include "common.h"

#define NCHUNK	8
#define PREFIX	(3 + NCHUNK)
#define STOP	(-1000)

struct fuzz_state {
	size_t	frames;
	size_t	bytes;
};

static int
on_frame(void *ud, const char *payload, size_t len)
{
	struct fuzz_state *st = ud;
	struct witch__request_env env;
	struct witch__buf out;
	char msg[200];
	json_t *j;
	int rc, rrc, stop = 0;
	size_t len0;

	if (len == 0)
		abort();
	st->frames++;
	st->bytes += len;
	witch__buf_init(&out, 0);
	rc = witch__request_parse(payload, len, &env, msg, sizeof(msg));
	if (rc == 0) {
		rrc = witch__reply_result(&out, env.id, env.data, len);
		if (rrc != 0 && rrc != WITCH_ETOO_LARGE)
			abort();
		json_decref(fuzz_check_frame(&out, 0, rrc));
		len0 = out.len;
		rrc = witch__reply_event(&out, env.endpoint, env.data);
		if ((j = fuzz_check_frame(&out, len0, rrc)) == NULL)
			abort();
		/* A valid endpoint name comes back unchanged. */
		if (strcmp(json_string_value(json_object_get(j, "event")),
		    env.endpoint) != 0)
			abort();
		json_decref(j);
		stop = strcmp(env.endpoint, "stop") == 0;
	} else {
		rrc = witch__reply_error(&out, env.id, rc, msg);
		if ((j = fuzz_check_frame(&out, 0, rrc)) == NULL)
			abort();
		json_decref(j);
	}
	witch__request_env_clear(&env);
	witch__buf_free(&out);
	return stop ? STOP : 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct witch__decoder d;
	struct fuzz_state st = { 0, 0 };
	size_t chunks[NCHUNK], off, n, i, before;
	uint32_t max_frame;
	int rc = 0, rc2;

	if (size < PREFIX)
		return 0;
	fuzz_seed_once();
	max_frame = ((uint32_t)data[0] << 16 | (uint32_t)data[1] << 8 |
	    data[2]) + 1;
	for (i = 0; i < NCHUNK; i++)
		chunks[i] = (size_t)data[3 + i] + 1;
	witch__decoder_init(&d, max_frame);
	for (off = PREFIX, i = 0; off < size; off += n, i++) {
		n = chunks[i % NCHUNK];
		if (n > size - off)
			n = size - off;
		rc = witch__decoder_feed(&d, data + off, n, on_frame, &st);
		if (rc != 0)
			break;
		/* A partial frame never holds more than max_frame. */
		if (witch__decoder_memory(&d) > max_frame)
			abort();
		if (!witch__decoder_partial(&d) &&
		    witch__decoder_memory(&d) != 0)
			abort();
	}
	if (rc != 0 && rc != WITCH_EINVALID_FRAME &&
	    rc != WITCH_EFRAME_TOO_LARGE && rc != WITCH_ENOMEM && rc != STOP)
		abort();
	/* Poisoned: the same error, nothing delivered. */
	if (rc != 0) {
		before = st.frames;
		rc2 = witch__decoder_feed(&d, data, size, on_frame, &st);
		if (rc2 != rc || st.frames != before)
			abort();
	}
	/* Every payload byte delivered fits the stream. */
	if (st.bytes + st.frames * WITCH__FRAME_HDR > size - PREFIX)
		abort();
	witch__decoder_clear(&d);
	return 0;
}
