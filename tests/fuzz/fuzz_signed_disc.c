/*
 * tests/fuzz/fuzz_signed_disc.c: signed discovery datagrams.
 *
 * witch__disc_check() with a fixed key and clock on the whole input: the
 * verdict is one of the enum's with a message unless OK; an accepted
 * datagram verifies under the key (never unsigned or badly signed bytes),
 * is within the time window, does not verify under another key, and
 * signed again by witch__disc_encode_signed() is accepted again as the
 * same announcement.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <witch/discovery.h>
#include <witch/error.h>

#include "discovery/discovery_int.h"
#include "proto/auth.h"
#include "common.h"

#define FUZZ_NOW_MS 1796400000000ULL	/* the seeds' "time" is this */

static const struct witch__key *
fuzz_key(int other)
{
	static struct witch__key k[2];
	static const char s[2][40] = { "fuzz-disc-test-key-0123456789abcdef",
	    "fuzz-disc-other-key-0123456789abcdef" };

	if (k[other].len == 0 && witch__key_set(&k[other], s[other],
	    strlen(s[other])) != 0)
		abort();
	return &k[other];
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct witch__key *k = fuzz_key(0);
	struct witch__disc_msg m, back;
	char err[256], out[WITCH_DISCOVERY_MAX_DATAGRAM + 1];
	enum witch__disc_verdict v;
	size_t len;
	int rc;

	fuzz_seed_once();
	err[0] = '\0';
	v = witch__disc_check(k, data, size, FUZZ_NOW_MS, &m, err,
	    sizeof(err));
	if (v != WITCH__DISC_OK) {
		if ((v != WITCH__DISC_MALFORMED && v != WITCH__DISC_UNSIGNED &&
		    v != WITCH__DISC_BADSIG && v != WITCH__DISC_STALE) ||
		    err[0] == '\0')
			abort();
		return 0;
	}
	if (size > WITCH_DISCOVERY_MAX_DATAGRAM ||
	    witch__disc_verify(k, (const char *)data, size) != WITCH__SIG_OK ||
	    witch__disc_verify(fuzz_key(1), (const char *)data, size) !=
	    WITCH__SIG_BAD)
		abort();
	if (m.time_ms == 0 || m.time_ms + WITCH__DISC_WINDOW_MS < FUZZ_NOW_MS ||
	    m.time_ms > FUZZ_NOW_MS + WITCH__DISC_WINDOW_MS)
		abort();
	rc = witch__disc_encode_signed(&m, k, out, sizeof(out), &len);
	if (rc == WITCH_ETOO_LARGE)
		return 0;	/* fields escaped longer than the input */
	if (rc != 0 || len == 0 || len > WITCH_DISCOVERY_MAX_DATAGRAM)
		abort();
	if (witch__disc_check(k, out, len, FUZZ_NOW_MS, &back, err,
	    sizeof(err)) != WITCH__DISC_OK ||
	    strcmp(m.server_id, back.server_id) != 0 ||
	    strcmp(m.name, back.name) != 0 || m.port != back.port ||
	    m.seq != back.seq || m.time_ms != back.time_ms ||
	    m.leaving != back.leaving)
		abort();
	/* Under another key the same bytes are refused. */
	if (witch__disc_check(fuzz_key(1), out, len, FUZZ_NOW_MS, &back, err,
	    sizeof(err)) != WITCH__DISC_BADSIG)
		abort();
	return 0;
}
