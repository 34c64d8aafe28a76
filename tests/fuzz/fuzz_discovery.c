/*
 * tests/fuzz/fuzz_discovery.c: the discovery datagram codec and registry.
 *
 * witch__disc_parse() on the whole input must return 0 or WITCH_EPROTOCOL
 * with a message; an announcement it accepts must encode, and the encoded
 * datagram must parse back to the same announcement (the codec is its own
 * inverse on what it accepts).  The announcement is then applied to a
 * registry (found, refreshed, leaving) and listed as JSON, and expired.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <witch/discovery.h>
#include <witch/error.h>

#include "discovery/discovery_int.h"
#include "common.h"

static void
same_msg(const struct witch__disc_msg *a, const struct witch__disc_msg *b)
{
	size_t i;

	if (strcmp(a->name, b->name) != 0 ||
	    strcmp(a->server_id, b->server_id) != 0 || a->port != b->port ||
	    a->nprotocols != b->nprotocols ||
	    strcmp(a->project_id, b->project_id) != 0 ||
	    strcmp(a->source_hash, b->source_hash) != 0 ||
	    strcmp(a->advertise, b->advertise) != 0 ||
	    a->leaving != b->leaving || a->seq != b->seq)
		abort();
	for (i = 0; i < a->nprotocols; i++)
		if (strcmp(a->protocols[i], b->protocols[i]) != 0)
			abort();
}

static void
check_registry(const struct witch__disc_msg *m)
{
	struct witch__disc_registry reg;
	struct witch__disc_event ev[4];
	struct witch__disc_msg up = *m;
	json_t *j;
	int e;

	witch__disc_reg_init(&reg, 6000, 0);
	up.leaving = 0;
	if (witch__disc_reg_update(&reg, &up, "192.0.2.1", 1000, ev) !=
	    WITCH_DISCOVERY_FOUND)
		abort();
	if ((j = witch__disc_entry_json(&ev[0].e, 1000)) == NULL)
		abort();
	json_decref(j);
	/* The same announcement again is a refresh: no event. */
	if (witch__disc_reg_update(&reg, &up, "192.0.2.1", 2000, ev) != 0)
		abort();
	if (m->leaving) {
		e = witch__disc_reg_update(&reg, m, "192.0.2.1", 3000, ev);
		if (e != WITCH_DISCOVERY_LOST && e != 0)
			abort();
	}
	(void)witch__disc_reg_expire(&reg, 100000, ev, 4);
	if (witch__disc_reg_find(&reg, m->server_id, "192.0.2.1") != NULL)
		abort();
	witch__disc_reg_free(&reg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct witch__disc_msg m, back;
	char err[256], out[WITCH_DISCOVERY_MAX_DATAGRAM + 1];
	size_t len;
	int rc;

	fuzz_seed_once();
	rc = witch__disc_parse(data, size, &m, err, sizeof(err));
	if (rc != 0) {
		if (rc != WITCH_EPROTOCOL || err[0] == '\0')
			abort();
		return 0;
	}
	rc = witch__disc_encode(&m, out, sizeof(out), &len);
	if (rc == WITCH_ETOO_LARGE)
		return 0;	/* fields escaped longer than the input */
	if (rc != 0 || len == 0 || len > WITCH_DISCOVERY_MAX_DATAGRAM)
		abort();
	if (witch__disc_parse(out, len, &back, err, sizeof(err)) != 0)
		abort();
	same_msg(&m, &back);
	check_registry(&m);
	return 0;
}
