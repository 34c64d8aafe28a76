/*
 * server/sourcehash.c: the source hash of protocol.md.
 *
 * XXH3-128 over the server's interface: the line "witch-wire <N>\n"
 * followed by one line "<protocol> <endpoint>\n" for every (protocol,
 * endpoint) pair the server serves, built-ins included, sorted bytewise.
 * The digest is printed big-endian (XXH128_canonical_t), lower-case hex.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include <witch/version.h>

#include "core/alloc.h"
#include "server/server_int.h"

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Hex of the canonical form of h. */
static void
hash_hex(XXH128_hash_t h, char out[WITCH__HASH_HEX + 1])
{
	static const char digits[] = "0123456789abcdef";
	XXH128_canonical_t c;
	size_t i;

	XXH128_canonicalFromHash(&c, h);
	for (i = 0; i < sizeof(c.digest); i++) {
		out[2 * i] = digits[c.digest[i] >> 4];
		out[2 * i + 1] = digits[c.digest[i] & 0xf];
	}
	out[WITCH__HASH_HEX] = '\0';
}

void
witch__source_hash(const struct witch_server *srv,
    char out[WITCH__HASH_HEX + 1])
{
	XXH3_state_t *st = NULL;
	char **lines = NULL;
	char head[32];
	size_t n = 0, i, p;
	const size_t linemax = WITCH__PROTO_NAME_MAX + WITCH__NAME_MAX + 3;

	lines = witch__calloc(srv->r.neps * srv->cfg.nprotocols + 1,
	    sizeof(*lines));
	if (lines == NULL || (st = XXH3_createState()) == NULL)
		goto fail;
	for (i = 0; i < srv->r.neps; i++) {
		for (p = 0; p < srv->cfg.nprotocols; p++) {
			if (!(srv->r.eps[i].proto_mask & (1u << p)))
				continue;
			if ((lines[n] = witch__malloc(linemax)) == NULL)
				goto fail;
			snprintf(lines[n], linemax, "%s %s\n",
			    srv->cfg.protocols[p], srv->r.eps[i].name);
			n++;
		}
	}
	qsort(lines, n, sizeof(*lines), cmp_str);
	XXH3_128bits_reset(st);
	snprintf(head, sizeof(head), "witch-wire %d\n", WITCH_WIRE_VERSION);
	XXH3_128bits_update(st, head, strlen(head));
	for (i = 0; i < n; i++)
		XXH3_128bits_update(st, lines[i], strlen(lines[i]));
	hash_hex(XXH3_128bits_digest(st), out);
	goto done;
fail:
	/* Out of memory: hash the header alone, still a valid digest. */
	snprintf(head, sizeof(head), "witch-wire %d\n", WITCH_WIRE_VERSION);
	hash_hex(XXH3_128bits(head, strlen(head)), out);
done:
	if (lines != NULL)
		for (i = 0; i < n; i++)
			witch__free(lines[i]);
	witch__free(lines);
	if (st != NULL)
		XXH3_freeState(st);
}
