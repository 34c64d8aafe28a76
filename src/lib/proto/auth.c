/*
 * proto/auth.c: HMAC-SHA256 proofs of the authentication exchange,
 * discovery signatures and the failed-attempt limiter.  Pure functions
 * over bytes (the fuzz targets call them as they are).  The MAC is
 * OpenSSL libcrypto's HMAC(); comparisons are CRYPTO_memcmp().
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <witch/error.h>
#include <witch/version.h>

#include "proto/auth.h"
#include "proto/scan.h"

static const char hexdig[] = "0123456789abcdef";

void
witch__hex_encode(const uint8_t *b, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hexdig[b[i] >> 4];
		out[2 * i + 1] = hexdig[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool
witch__hex_decode(const char *s, size_t slen, uint8_t *out, size_t n)
{
	size_t i;
	int hi, lo;

	if (slen != 2 * n)
		return false;
	for (i = 0; i < n; i++) {
		if ((hi = hexval(s[2 * i])) < 0 ||
		    (lo = hexval(s[2 * i + 1])) < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

/* HMAC-SHA256 under k of the concatenation of n parts. */
static void
mac_parts(const struct witch__key *k, const void *const *p,
    const size_t *plen, size_t n, uint8_t out[WITCH__AUTH_MAC])
{
	unsigned char buf[256 + 2 * WITCH__AUTH_NONCE];
	unsigned int olen = WITCH__AUTH_MAC;
	size_t i, len = 0;

	for (i = 0; i < n; i++) {
		if (plen[i] > sizeof(buf) - len) {
			memset(out, 0, WITCH__AUTH_MAC);
			return;		/* callers keep parts small */
		}
		memcpy(buf + len, p[i], plen[i]);
		len += plen[i];
	}
	if (HMAC(EVP_sha256(), k->b, (int)k->len, buf, len, out, &olen) ==
	    NULL)
		memset(out, 0, WITCH__AUTH_MAC);
	explicit_bzero(buf, sizeof(buf));
}

void
witch__auth_proof(const struct witch__key *k, enum witch__auth_role role,
    const char *protocol, const uint8_t ns[WITCH__AUTH_NONCE],
    const uint8_t nc[WITCH__AUTH_NONCE], uint8_t out[WITCH__AUTH_MAC])
{
	char head[64];
	int hl;
	size_t pl = strnlen(protocol, 64);
	const void *p[4];
	size_t plen[4];

	/* "witch-auth" NUL role wire-version NUL: domain, role, version. */
	hl = snprintf(head, sizeof(head), "witch-auth%c%c%d%c", '\0',
	    (char)role, WITCH_WIRE_VERSION, '\0');
	p[0] = head;
	plen[0] = (size_t)hl;
	p[1] = protocol;
	plen[1] = pl + 1;		/* with its NUL */
	p[2] = ns;
	plen[2] = WITCH__AUTH_NONCE;
	p[3] = nc;
	plen[3] = WITCH__AUTH_NONCE;
	mac_parts(k, p, plen, 4, out);
}

static int
fail(char *msg, size_t msglen, int code, const char *text)
{
	if (msg != NULL && msglen > 0)
		strlcpy(msg, text, msglen);
	return code;
}

int
witch__auth_server_check(const struct witch__key *k, const char *protocol,
    const uint8_t *ns, const char *data, size_t len,
    char proof_hex[WITCH__AUTH_HEX + 1], char *msg, size_t msglen)
{
	struct witch__jspan nonce, proof;
	struct witch__jmember m[] = { { "nonce", 5, &nonce },
	    { "proof", 5, &proof } };
	enum witch__jtype top;
	uint8_t nc[WITCH__AUTH_NONCE], got[WITCH__AUTH_MAC];
	uint8_t want[WITCH__AUTH_MAC];
	bool kesc;
	int ok;

	proof_hex[0] = '\0';
	if (data == NULL || witch__json_scan(data, len, &top, m, 2, &kesc) !=
	    0 || top != WITCH__J_OBJECT)
		return fail(msg, msglen, WITCH_EINVALID_REQUEST,
		    "auth: data must be {\"nonce\": hex, \"proof\": hex}");
	if (nonce.type != WITCH__J_STRING || proof.type != WITCH__J_STRING ||
	    nonce.escaped || proof.escaped ||
	    !witch__hex_decode(nonce.p + 1, nonce.len - 2, nc, sizeof(nc)) ||
	    !witch__hex_decode(proof.p + 1, proof.len - 2, got, sizeof(got)))
		return fail(msg, msglen, WITCH_EINVALID_REQUEST,
		    "auth: nonce and proof must be 64 hex digits each");
	if (!witch__key_on(k))
		return fail(msg, msglen, WITCH_EUNAUTHORIZED,
		    "auth: this server has no key");
	if (ns == NULL)
		return fail(msg, msglen, WITCH_EUNAUTHORIZED,
		    "auth: no challenge outstanding; send hello first");
	if (CRYPTO_memcmp(nc, ns, WITCH__AUTH_NONCE) == 0)
		return fail(msg, msglen, WITCH_EUNAUTHORIZED,
		    "auth: the client nonce is the server's");
	witch__auth_proof(k, WITCH__AUTH_CLIENT, protocol, ns, nc, want);
	ok = CRYPTO_memcmp(want, got, WITCH__AUTH_MAC) == 0;
	explicit_bzero(want, sizeof(want));
	if (!ok)
		return fail(msg, msglen, WITCH_EUNAUTHORIZED,
		    "auth: wrong proof (a different key?)");
	witch__auth_proof(k, WITCH__AUTH_SERVER, protocol, ns, nc, want);
	witch__hex_encode(want, sizeof(want), proof_hex);
	return 0;
}

bool
witch__auth_client_check(const struct witch__key *k,
    const char *protocol, const uint8_t ns[WITCH__AUTH_NONCE],
    const uint8_t nc[WITCH__AUTH_NONCE], const char *proof, size_t len)
{
	uint8_t got[WITCH__AUTH_MAC], want[WITCH__AUTH_MAC];
	bool ok;

	if (proof == NULL || !witch__hex_decode(proof, len, got, sizeof(got)))
		return false;
	witch__auth_proof(k, WITCH__AUTH_SERVER, protocol, ns, nc, want);
	ok = CRYPTO_memcmp(want, got, WITCH__AUTH_MAC) == 0;
	explicit_bzero(want, sizeof(want));
	return ok;
}

/* ---- signed discovery --------------------------------------------- */

static void
disc_mac(const struct witch__key *k, const char *text, size_t len,
    uint8_t out[WITCH__AUTH_MAC])
{
	static const char domain[] = "witch-disc";
	unsigned char buf[sizeof(domain) + 1200];
	unsigned int olen = WITCH__AUTH_MAC;

	/* One-shot HMAC() (HMAC_CTX is deprecated in OpenSSL 3): one buffer. */
	if (len > 1200) {
		memset(out, 0, WITCH__AUTH_MAC);
		return;
	}
	memcpy(buf, domain, sizeof(domain));	/* with its NUL */
	memcpy(buf + sizeof(domain), text, len);
	if (HMAC(EVP_sha256(), k->b, (int)k->len, buf, sizeof(domain) + len,
	    out, &olen) == NULL)
		memset(out, 0, WITCH__AUTH_MAC);
}

void
witch__disc_sign(const struct witch__key *k, const char *text, size_t len,
    char out[WITCH__AUTH_HEX + 1])
{
	uint8_t mac[WITCH__AUTH_MAC];

	disc_mac(k, text, len, mac);
	witch__hex_encode(mac, sizeof(mac), out);
}

enum witch__sig_verdict
witch__disc_verify(const struct witch__key *k, const char *buf, size_t len)
{
	const size_t ml = sizeof(WITCH__SIG_MEMBER) - 1;
	uint8_t got[WITCH__AUTH_MAC], want[WITCH__AUTH_MAC];
	const char *t;
	size_t body;

	if (len < WITCH__SIG_TAIL_LEN + 1)
		return WITCH__SIG_UNSIGNED;
	body = len - WITCH__SIG_TAIL_LEN;
	t = buf + body;
	if (memcmp(t, WITCH__SIG_MEMBER, ml) != 0 ||
	    buf[len - 2] != '"' || buf[len - 1] != '}')
		return WITCH__SIG_UNSIGNED;
	if (!witch__hex_decode(t + ml, WITCH__AUTH_HEX, got, sizeof(got)))
		return WITCH__SIG_BAD;
	disc_mac(k, buf, body, want);
	return CRYPTO_memcmp(got, want, sizeof(got)) == 0 ? WITCH__SIG_OK :
	    WITCH__SIG_BAD;
}

/* ---- failed attempts ---------------------------------------------- */

#define T_NS ((uint64_t)WITCH__AUTH_LIMIT_MS * 1000000u)
#define TAU_NS ((uint64_t)(WITCH__AUTH_LIMIT_BURST - 1) * T_NS)

/* The slot of addr, or NULL; create: take a free or the oldest one. */
static int
slot(struct witch__auth_limit *l, const char *addr, bool create,
    uint64_t now_ns)
{
	size_t i, old = 0;

	for (i = 0; i < WITCH__AUTH_LIMIT_SLOTS; i++) {
		if (l->e[i].addr[0] != '\0' &&
		    strcmp(l->e[i].addr, addr) == 0) {
			l->e[i].used_ns = now_ns;
			return (int)i;
		}
		if (l->e[i].used_ns < l->e[old].used_ns)
			old = i;
	}
	if (!create)
		return -1;
	memset(&l->e[old], 0, sizeof(l->e[old]));
	strlcpy(l->e[old].addr, addr, sizeof(l->e[old].addr));
	l->e[old].used_ns = now_ns;
	return (int)old;
}

bool
witch__auth_limit_allow(struct witch__auth_limit *l, const char *addr,
    uint64_t now_ns)
{
	int i = slot(l, addr, false, now_ns);

	if (i < 0 || l->e[i].tat_ns <= now_ns + TAU_NS)
		return true;
	l->e[i].refused++;
	return false;
}

bool
witch__auth_limit_fail(struct witch__auth_limit *l, const char *addr,
    uint64_t now_ns)
{
	int i = slot(l, addr, true, now_ns);
	bool was_ok;

	if (l->e[i].tat_ns < now_ns)
		l->e[i].tat_ns = now_ns;
	was_ok = l->e[i].tat_ns <= now_ns + TAU_NS;
	l->e[i].tat_ns += T_NS;
	return was_ok && l->e[i].tat_ns > now_ns + TAU_NS;
}
