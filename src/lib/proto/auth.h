/*
 * proto/auth.h: the authentication exchange and discovery signatures,
 * as pure functions over bytes (no sockets: fuzzable).  HMAC-SHA256 from
 * OpenSSL's libcrypto.  See doc/internals/auth.md and witch-protocol(7).
 */
#ifndef WITCH__PROTO_AUTH_H
#define WITCH__PROTO_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/key.h"

#define WITCH__AUTH_NONCE 32		/* bytes of a nonce */
#define WITCH__AUTH_MAC 32		/* bytes of an HMAC-SHA256 */
#define WITCH__AUTH_HEX 64		/* either, as lower-case hex */
#define WITCH__AUTH_METHOD "hmac-sha256"

/* Who computes a proof: bound into it, so one is never the other's. */
enum witch__auth_role {
	WITCH__AUTH_CLIENT = 'C',
	WITCH__AUTH_SERVER = 'S'
};

/*
 * The proof of role: HMAC-SHA256 under k of
 *   "witch-auth" 0x00 role(1 byte) wire-version(decimal) 0x00
 *   protocol 0x00 server-nonce(32) client-nonce(32)
 * into out.  protocol: the one hello chose.  Any thread.
 */
void witch__auth_proof(const struct witch__key *k, enum witch__auth_role role,
    const char *protocol, const uint8_t ns[WITCH__AUTH_NONCE],
    const uint8_t nc[WITCH__AUTH_NONCE], uint8_t out[WITCH__AUTH_MAC]);

/* n bytes as 2n lower-case hex digits and a NUL in out. */
void witch__hex_encode(const uint8_t *b, size_t n, char *out);
/*
 * Exactly 2n hex digits (either case) in s (slen bytes) into out (n
 * bytes).  False: anything else (out may be partly written).
 */
bool witch__hex_decode(const char *s, size_t slen, uint8_t *out, size_t n);

/*
 * Server side of `auth`: data (len bytes, the request's data as JSON
 * text, or NULL) must be {"nonce": 64 hex, "proof": 64 hex}.  ns is the
 * nonce this connection's hello gave (NULL: none outstanding).  The
 * client nonce must differ from ns (a reflected nonce) and the proof be
 * the client's for (k, protocol, ns, nonce), compared in constant time.
 * Returns 0 with the server's proof as hex in proof_hex, or
 * WITCH_EINVALID_REQUEST (malformed) or WITCH_EUNAUTHORIZED, with a
 * message in msg (msglen bytes) that says why but never echoes secrets.
 */
int witch__auth_server_check(const struct witch__key *k, const char *protocol,
    const uint8_t *ns, const char *data, size_t len,
    char proof_hex[WITCH__AUTH_HEX + 1], char *msg, size_t msglen);

/*
 * Client side: the server's proof (hex text of len bytes) checked
 * against the one expected for (k, protocol, ns, nc) in constant time.
 */
bool witch__auth_client_check(const struct witch__key *k,
    const char *protocol, const uint8_t ns[WITCH__AUTH_NONCE],
    const uint8_t nc[WITCH__AUTH_NONCE], const char *proof, size_t len);

/* ---- signed discovery ------------------------------------------------- */

/* The member a signed announcement ends with. */
#define WITCH__SIG_MEMBER ",\"hmac\":\""
#define WITCH__SIG_TAIL_LEN (sizeof(WITCH__SIG_MEMBER) - 1 + \
	WITCH__AUTH_HEX + 2)		/* ,"hmac":"<64 hex>"} */

/*
 * Sign an announcement: text (len bytes) is a JSON object without its
 * closing brace; its HMAC-SHA256 under k (domain "witch-disc" 0x00
 * first) as hex into out.
 */
void witch__disc_sign(const struct witch__key *k, const char *text,
    size_t len, char out[WITCH__AUTH_HEX + 1]);

enum witch__sig_verdict {
	WITCH__SIG_OK = 0,
	WITCH__SIG_UNSIGNED,		/* no hmac member at the end */
	WITCH__SIG_BAD			/* an hmac that does not match */
};

/*
 * Check a datagram (len bytes): signed, it ends with
 * ,"hmac":"<64 hex>"} and the HMAC is over every byte before that comma.
 * Constant-time comparison.
 */
enum witch__sig_verdict witch__disc_verify(const struct witch__key *k,
    const char *buf, size_t len);

/* ---- failed attempts, per source address ------------------------------ */

#define WITCH__AUTH_LIMIT_SLOTS 64	/* sources remembered (LRU) */
#define WITCH__AUTH_LIMIT_BURST 5	/* failures before the limit */
#define WITCH__AUTH_LIMIT_MS 2000	/* one more allowed per this */

struct witch__auth_limit {
	struct {
		char		 addr[48];	/* "" free */
		uint64_t	 tat_ns;	/* theoretical arrival time */
		uint64_t	 used_ns;	/* LRU */
		uint64_t	 refused;	/* attempts refused */
	}		 e[WITCH__AUTH_LIMIT_SLOTS];
};

/*
 * May addr try to authenticate at now_ns?  False while it is over its
 * failure budget (GCRA: a burst of WITCH__AUTH_LIMIT_BURST, then one
 * per WITCH__AUTH_LIMIT_MS).  No allocation; one owner thread.
 */
bool witch__auth_limit_allow(struct witch__auth_limit *l, const char *addr,
    uint64_t now_ns);
/*
 * Count a failure of addr at now_ns.  Returns true when this failure
 * spent the budget (log it once).
 */
bool witch__auth_limit_fail(struct witch__auth_limit *l, const char *addr,
    uint64_t now_ns);

#endif
