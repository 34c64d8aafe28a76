/*
 * tests/fuzz/fuzz_config.c: the witchd.conf(5) parser (src/witchd/config.c)
 * on the input as a whole file.
 *
 * conf_load_buffer() must return an error count >= 0 (every error
 * reported as "NAME:LINE: ..." or "NAME: ..."); every value it kept must
 * format back to text that parses to the same value (numbers, flags,
 * modes, levels, sockets; durations print with %g and text is quoted, so
 * they are left out), and
 * the result must map onto a libwitch configuration or be refused with
 * a reason, without crashing or leaking.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <witch/witch.h>

#include "../../src/witchd/config.h"
#include "common.h"

static size_t nreports;

/* An error report: one line naming the input. */
static void
report(const char *msg)
{
	if (strncmp(msg, "fuzz.conf:", 10) != 0 || strchr(msg, '\n') != NULL)
		abort();
	nreports++;
}

/* A refusal by the library: where the value came from, and why. */
static void
refusal(const char *msg)
{
	if (msg[0] == '\0' || strchr(msg, '\n') != NULL)
		abort();
}

static void
check_round_trip(const struct conf *c)
{
	struct conf_val v;
	char buf[CONF_STR_MAX + 8], err[256];
	struct conf back;
	int i;

	for (i = 0; i < C_COUNT; i++) {
		switch (conf_opts[i].type) {
		case T_SECS:
		case T_STR:
		case T_PROTOS:
		case T_SEEDS:
			continue;
		default:
			break;
		}
		conf_format(c, i, buf, sizeof(buf));
		memset(&v, 0, sizeof(v));
		if (conf_parse_value(i, buf, &v, err, sizeof(err)) != 0)
			abort();
		back = *c;
		back.v[i] = v;
		if (conf_differs(c, &back, i))
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	witch_server_config_t *cfg = NULL;
	struct conf c;
	int errors;

	conf_defaults(&c);
	nreports = 0;
	errors = conf_load_buffer(&c, data, size, "fuzz.conf", report);
	if (errors < 0 || (size_t)errors != nreports)
		abort();
	check_round_trip(&c);
	if (conf_to_server(&c, &cfg, refusal) == 0) {
		if (cfg == NULL)
			abort();
		witch_server_config_free(cfg);
	}
	return 0;
}
