/*
 * tests/fuzz/common.h: checks shared by the fuzz targets.
 *
 * Invariants are enforced with abort(), which libFuzzer and the replay
 * driver both report as a crash.
 */
#ifndef WITCH_FUZZ_COMMON_H
#define WITCH_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <jansson.h>

#include "core/buf.h"
#include "proto/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * A reply builder returned rc after being called on a buffer of len0
 * bytes.  On failure the buffer must be unchanged; on success it must hold
 * exactly one more frame whose payload is one strict JSON object, which is
 * returned (caller decrefs), else NULL.
 */
static inline json_t *
fuzz_check_frame(const struct witch__buf *out, size_t len0, int rc)
{
	const unsigned char *h;
	uint32_t len;
	json_t *j;

	if (rc != 0) {
		if (out->len != len0 || rc > 0)
			abort();
		return NULL;
	}
	if (out->len < len0 + WITCH__FRAME_HDR)
		abort();
	h = out->data + len0;
	len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
	    (uint32_t)h[2] << 8 | h[3];
	if (len == 0 || len != out->len - len0 - WITCH__FRAME_HDR)
		abort();
	j = json_loadb((const char *)h + WITCH__FRAME_HDR, len, JSON_ALLOW_NUL,
	    NULL);
	if (j == NULL || !json_is_object(j))
		abort();
	return j;
}

static inline void
fuzz_seed_once(void)
{
	static int done;

	if (!done) {
		json_object_seed(1);
		done = 1;
	}
}

#endif
