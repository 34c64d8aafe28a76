/*
 * tests/fuzz/fuzz_auth.c: the authentication exchange's checks.
 *
 * The input is split at its first 0x00 byte: the part before is the
 * client's `auth` data for witch__auth_server_check(), the part after the
 * server's proof for witch__auth_client_check() (no 0x00: the whole input
 * is both).  Key, protocol and server nonce are fixed.  A verdict is 0
 * with a 64-digit lower-case proof, or WITCH_EINVALID_REQUEST or
 * WITCH_EUNAUTHORIZED with a message; success only when the data names a
 * client nonce other than the server's and carries that nonce's client
 * proof; the server proof returned is the server's for that nonce and is
 * the only one the client check takes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <witch/error.h>

#include "proto/auth.h"
#include "common.h"

#define FUZZ_PROTO "fuzz.v1"

static const uint8_t fuzz_ns[WITCH__AUTH_NONCE] = {
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
	17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32
};
/* The client nonce the seed corpus uses: 0x40.. */
static const uint8_t fuzz_nc[WITCH__AUTH_NONCE] = {
	64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79,
	80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95
};

static const struct witch__key *
fuzz_key(void)
{
	static struct witch__key k;
	static const char s[] = "fuzz-auth-test-key-0123456789abcdef";

	if (k.len == 0 && witch__key_set(&k, s, sizeof(s) - 1) != 0)
		abort();
	return &k;
}

/* The client nonce named by data, if it holds one as 64 hex digits. */
static int
data_nonce(const char *data, size_t len, uint8_t nc[WITCH__AUTH_NONCE],
    uint8_t proof[WITCH__AUTH_MAC])
{
	json_t *j, *n, *p;
	int ok = 0;

	j = json_loadb(data, len, JSON_ALLOW_NUL, NULL);
	if (j == NULL)
		return 0;
	n = json_object_get(j, "nonce");
	p = json_object_get(j, "proof");
	if (json_is_string(n) && json_is_string(p) &&
	    witch__hex_decode(json_string_value(n), json_string_length(n), nc,
	    WITCH__AUTH_NONCE) &&
	    witch__hex_decode(json_string_value(p), json_string_length(p),
	    proof, WITCH__AUTH_MAC))
		ok = 1;
	json_decref(j);
	return ok;
}

static void
check_server(const char *data, size_t len)
{
	const struct witch__key *k = fuzz_key();
	uint8_t nc[WITCH__AUTH_NONCE], proof[WITCH__AUTH_MAC];
	uint8_t want[WITCH__AUTH_MAC];
	char hex[WITCH__AUTH_HEX + 1], whex[WITCH__AUTH_HEX + 1], msg[256];
	int rc;

	memset(hex, 'x', sizeof(hex));
	msg[0] = '\0';
	rc = witch__auth_server_check(k, FUZZ_PROTO, fuzz_ns, data, len, hex,
	    msg, sizeof(msg));
	if (rc != 0) {
		if ((rc != WITCH_EINVALID_REQUEST &&
		    rc != WITCH_EUNAUTHORIZED) || msg[0] == '\0' ||
		    strlen(msg) >= sizeof(msg))
			abort();
		/* No outstanding nonce: never success either. */
		if (witch__auth_server_check(k, FUZZ_PROTO, NULL, data, len,
		    hex, msg, sizeof(msg)) == 0)
			abort();
		return;
	}
	if (strlen(hex) != WITCH__AUTH_HEX || strspn(hex,
	    "0123456789abcdef") != WITCH__AUTH_HEX)
		abort();
	/*
	 * Success only for the right proof of a fresh client nonce (read
	 * back with jansson; escaped keys, which the scanner and jansson
	 * may see differently, are left to the checks above).
	 */
	if (memchr(data, '\\', len) != NULL)
		return;
	if (!data_nonce(data, len, nc, proof) ||
	    memcmp(nc, fuzz_ns, WITCH__AUTH_NONCE) == 0)
		abort();
	witch__auth_proof(k, WITCH__AUTH_CLIENT, FUZZ_PROTO, fuzz_ns, nc,
	    want);
	if (memcmp(want, proof, WITCH__AUTH_MAC) != 0)
		abort();
	/* The reply is the server's proof, and the client takes it. */
	witch__auth_proof(k, WITCH__AUTH_SERVER, FUZZ_PROTO, fuzz_ns, nc,
	    want);
	witch__hex_encode(want, WITCH__AUTH_MAC, whex);
	if (strcmp(hex, whex) != 0 || memcmp(want, proof,
	    WITCH__AUTH_MAC) == 0)
		abort();
	if (!witch__auth_client_check(k, FUZZ_PROTO, fuzz_ns, nc, hex,
	    WITCH__AUTH_HEX))
		abort();
	/* Without an outstanding nonce the same data fails. */
	if (witch__auth_server_check(k, FUZZ_PROTO, NULL, data, len, hex,
	    msg, sizeof(msg)) == 0)
		abort();
}

static void
check_client(const char *proof, size_t len)
{
	const struct witch__key *k = fuzz_key();
	uint8_t want[WITCH__AUTH_MAC], got[WITCH__AUTH_MAC];
	bool ok;

	ok = witch__auth_client_check(k, FUZZ_PROTO, fuzz_ns, fuzz_nc, proof,
	    len);
	witch__auth_proof(k, WITCH__AUTH_SERVER, FUZZ_PROTO, fuzz_ns, fuzz_nc,
	    want);
	/* Taken exactly when it is the server's proof as 64 hex digits. */
	if (ok != (len == WITCH__AUTH_HEX &&
	    witch__hex_decode(proof, len, got, WITCH__AUTH_MAC) &&
	    memcmp(got, want, WITCH__AUTH_MAC) == 0))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	const uint8_t *z;
	size_t n;

	fuzz_seed_once();
	z = memchr(data, 0, size);
	n = z != NULL ? (size_t)(z - data) : size;
	check_server(s, n);
	if (z != NULL)
		check_client(s + n + 1, size - n - 1);
	else
		check_client(s, size);
	return 0;
}
