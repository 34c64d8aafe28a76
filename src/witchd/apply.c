/*
 * witchd/apply.c: a witchd configuration (config.c, from flags and
 * witchd.conf(5)) mapped onto libwitch's server configuration object;
 * every value the library refuses is reported with where it came from.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <witch/witch.h>

#include "../common/secs.h"
#include "config.h"

/* Report a value the library refused; count it. */
static int
refused(const struct conf *c, enum conf_id id, const char *why,
    conf_err_fn errfn)
{
	char where[CONF_STR_MAX + 16];

	conf_last_bad = id;
	if (c->v[id].src == SRC_FLAG)
		conf_errf(errfn, "%s %s: %s", conf_where(c, id, where,
		    sizeof(where)), c->v[id].str, why);
	else
		conf_errf(errfn, "%s: %s = %s: %s", conf_where(c, id, where,
		    sizeof(where)), conf_opts[id].name, c->v[id].str, why);
	return 1;
}

static int
set_protocols(witch_server_config_t *cfg, const char *s)
{
	char buf[CONF_STR_MAX], *p, *tok;
	const char *list[16];
	size_t n = 0;

	strlcpy(buf, s, sizeof(buf));
	for (p = buf; (tok = strsep(&p, ",")) != NULL && n < 16;)
		list[n++] = tok;
	return witch_server_config_set_protocols(cfg, list, n);
}

/* Discovery: on/off, port, interval, advertised address.  Errors. */
static int
set_discovery(const struct conf *c, witch_server_config_t *cfg,
    conf_err_fn errfn)
{
	const struct conf_val *v = c->v;
	int errors = 0;

	if (witch_server_config_set_discovery(cfg,
	    v[C_DISCOVERY].num != 0) != 0)
		errors += refused(c, C_DISCOVERY, "invalid", errfn);
	if (witch_server_config_set_discovery_port(cfg,
	    (unsigned)v[C_DISCOVERY_PORT].num) != 0)
		errors += refused(c, C_DISCOVERY_PORT, "invalid port", errfn);
	if (witch_server_config_set_discovery_interval(cfg,
	    (unsigned)v[C_DISCOVERY_INTERVAL].num) != 0)
		errors += refused(c, C_DISCOVERY_INTERVAL, "expected seconds "
		    "from 0.1 to 3600", errfn);
	if (witch_server_config_set_advertise(cfg,
	    v[C_ADVERTISE].str[0] != '\0' ? v[C_ADVERTISE].str : NULL) != 0)
		errors += refused(c, C_ADVERTISE, "expected a numeric IPv4 "
		    "or IPv6 address", errfn);
	return errors;
}

/* The memory budgets of c into cfg; the number of values refused. */
static int
set_budgets(const struct conf *c, witch_server_config_t *cfg,
    conf_err_fn errfn)
{
	const struct conf_val *v = c->v;
	int errors = 0;

	if (witch_server_config_set_frame_timeout(cfg,
	    v[C_FRAME_TIMEOUT].num) != 0)
		errors += refused(c, C_FRAME_TIMEOUT, "invalid", errfn);
	if (witch_server_config_set_preauth_max_frame(cfg,
	    v[C_PREAUTH_MAX_FRAME].num) != 0)
		errors += refused(c, C_PREAUTH_MAX_FRAME, "invalid", errfn);
	if (witch_server_config_set_decode_budget(cfg,
	    v[C_DECODE_BUDGET].num) != 0)
		errors += refused(c, C_DECODE_BUDGET, "invalid", errfn);
	if (witch_server_config_set_frame_budget(cfg,
	    v[C_FRAME_BUDGET].num) != 0)
		errors += refused(c, C_FRAME_BUDGET, "invalid", errfn);
	if (witch_server_config_set_max_depth(cfg, v[C_MAX_DEPTH].num) != 0)
		errors += refused(c, C_MAX_DEPTH, "invalid", errfn);
	if (witch_server_config_set_max_clients_per_address(cfg,
	    v[C_MAX_CLIENTS_PER_ADDRESS].num) != 0)
		errors += refused(c, C_MAX_CLIENTS_PER_ADDRESS, "invalid",
		    errfn);
	return errors;
}

/* The key (read from its file, which must be private) and protected mode. */
static int
set_auth(const struct conf *c, witch_server_config_t *cfg, conf_err_fn errfn)
{
	const struct conf_val *v = c->v;
	unsigned char key[WITCH_KEY_MAX];
	char why[CONF_STR_MAX + 160];
	size_t len;
	int errors = 0;

	if (v[C_KEY_FILE].str[0] != '\0') {
		if (witch_key_load(v[C_KEY_FILE].str, key, sizeof(key), &len,
		    why, sizeof(why)) != 0 ||
		    witch_server_config_set_key(cfg, key, len) != 0)
			errors += refused(c, C_KEY_FILE, why, errfn);
		explicit_bzero(key, sizeof(key));
	}
	if (witch_server_config_set_unprotected(cfg,
	    v[C_PROTECTED_MODE].num == 0) != 0)
		errors += refused(c, C_PROTECTED_MODE, "invalid", errfn);
	return errors;
}

/* Peering: on/off, seeds, heartbeat.  Errors. */
static int
set_peering(const struct conf *c, witch_server_config_t *cfg,
    conf_err_fn errfn)
{
	const struct conf_val *v = c->v;
	char buf[CONF_STR_MAX], *p, *tok;
	int errors = 0;

	if (witch_server_config_set_peering(cfg, v[C_PEER].num != 0) != 0)
		errors += refused(c, C_PEER, "invalid", errfn);
	strlcpy(buf, v[C_PEER_SEED].str, sizeof(buf));
	for (p = buf; (tok = strsep(&p, ",")) != NULL;)
		if (*tok != '\0' &&
		    witch_server_config_add_peer_seed(cfg, tok) != 0) {
			errors += refused(c, C_PEER_SEED, "expected HOST:PORT "
			    "(port 1 to 65535; [ADDR]:PORT for IPv6)", errfn);
			break;
		}
	if (witch_server_config_set_peer_heartbeat(cfg,
	    (unsigned)v[C_PEER_HEARTBEAT].num) != 0)
		errors += refused(c, C_PEER_HEARTBEAT, "expected seconds from "
		    "0.05 to 60", errfn);
	return errors;
}

int
conf_to_server(const struct conf *c, witch_server_config_t **ret,
    conf_err_fn errfn)
{
	witch_server_config_t *cfg;
	const struct conf_val *v = c->v;
	int errors = 0;

	*ret = NULL;
	conf_last_bad = -1;
	if (witch_server_config_new(&cfg) != 0) {
		errfn("out of memory");
		return 1;
	}
	if (witch_server_config_set_port(cfg, v[C_PORT].num) != 0)
		errors += refused(c, C_PORT, "invalid port", errfn);
	if (witch_server_config_set_bind(cfg, v[C_BIND].str) != 0)
		errors += refused(c, C_BIND, "expected a numeric IPv4 or IPv6 "
		    "address", errfn);
	if (witch_server_config_set_name(cfg, v[C_NAME].str) != 0)
		errors += refused(c, C_NAME, "expected 1 to 63 bytes without "
		    "control characters", errfn);
	if (witch_server_config_set_project_id(cfg, v[C_PROJECT_ID].str) != 0)
		errors += refused(c, C_PROJECT_ID, "expected 0 to 63 bytes "
		    "without control characters", errfn);
	if (witch_server_config_set_workers(cfg, v[C_WORKERS].num) != 0)
		errors += refused(c, C_WORKERS, "invalid", errfn);
	if (witch_server_config_set_inline_builtins(cfg,
	    v[C_INLINE_BUILTINS].num != 0) != 0)
		errors += refused(c, C_INLINE_BUILTINS, "invalid", errfn);
	if (witch_server_config_set_max_clients(cfg,
	    v[C_MAX_CLIENTS].num) != 0)
		errors += refused(c, C_MAX_CLIENTS, "invalid", errfn);
	if (witch_server_config_set_max_frame(cfg, v[C_MAX_FRAME].num) != 0)
		errors += refused(c, C_MAX_FRAME, "invalid", errfn);
	if (witch_server_config_set_queue_depth(cfg,
	    v[C_QUEUE_DEPTH].num) != 0)
		errors += refused(c, C_QUEUE_DEPTH, "invalid", errfn);
	if (witch_server_config_set_idle_timeout(cfg,
	    v[C_IDLE_TIMEOUT].num) != 0)
		errors += refused(c, C_IDLE_TIMEOUT, "invalid", errfn);
	if (witch_server_config_set_handshake_timeout(cfg,
	    v[C_HANDSHAKE_TIMEOUT].num) != 0)
		errors += refused(c, C_HANDSHAKE_TIMEOUT, "invalid", errfn);
	if (witch_server_config_set_drain_timeout(cfg,
	    v[C_DRAIN_TIMEOUT].num) != 0)
		errors += refused(c, C_DRAIN_TIMEOUT, "invalid", errfn);
	if (witch_server_config_set_output_limits(cfg, v[C_OUTPUT_SOFT].num,
	    v[C_OUTPUT_HARD].num) != 0) {
		char why[128];

		snprintf(why, sizeof(why), "must not exceed output-hard "
		    "(%lld)", v[C_OUTPUT_HARD].num);
		errors += refused(c, C_OUTPUT_SOFT, why, errfn);
	}
	if (set_protocols(cfg, v[C_PROTOCOLS].str) != 0)
		errors += refused(c, C_PROTOCOLS, "expected 1 to 16 distinct "
		    "names of 1 to 15 bytes", errfn);
	if (witch_server_config_set_listen_tcp(cfg, v[C_TCP].num != 0) != 0)
		errors += refused(c, C_TCP, "invalid", errfn);
	errors += set_budgets(c, cfg, errfn);
	errors += set_discovery(c, cfg, errfn);
	errors += set_auth(c, cfg, errfn);
	errors += set_peering(c, cfg, errfn);
	if (errors != 0) {
		witch_server_config_free(cfg);
		return errors;
	}
	*ret = cfg;
	return 0;
}
