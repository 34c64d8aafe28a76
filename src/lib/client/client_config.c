/*
 * client/client_config.c: the witch client configuration object and its
 * setters (include/witch/client.h).
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include <witch/client.h>
#include <witch/server.h>

#include "client/client_int.h"
#include "core/alloc.h"
#include "core/setter.h"

/* ---- configuration ---------------------------------------------------- */

/* Fill cfg with the documented defaults.  Any thread. */
void
witch__client_config_defaults(struct witch_client_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	strlcpy(cfg->host, "127.0.0.1", sizeof(cfg->host));
	cfg->port = WITCH_DEFAULT_PORT;
	cfg->connect_timeout = WITCH_CLIENT_DEFAULT_CONNECT_TIMEOUT_MS;
	cfg->request_timeout = WITCH_CLIENT_DEFAULT_REQUEST_TIMEOUT_MS;
	cfg->auto_reconnect = true;
	cfg->max_attempts = WITCH_CLIENT_DEFAULT_MAX_RECONNECT_ATTEMPTS;
	cfg->delay = WITCH_CLIENT_DEFAULT_RECONNECT_DELAY_MS;
	cfg->delay_max = WITCH_CLIENT_DEFAULT_RECONNECT_DELAY_MAX_MS;
	cfg->stability = WITCH_CLIENT_DEFAULT_STABILITY_MS;
	strlcpy(cfg->name, "libwitch", sizeof(cfg->name));
	strlcpy(cfg->protocols[0], "v1", sizeof(cfg->protocols[0]));
	cfg->nprotocols = 1;
	cfg->max_frame = WITCH_MAX_FRAME_CEILING;
}

/* Create a configuration holding the defaults.  Any thread. */
int
witch_client_config_new(witch_client_config_t **ret)
{
	struct witch_client_config *cfg;

	if (ret == NULL)
		return WITCH_EINVAL;
	if ((cfg = witch__malloc(sizeof(*cfg))) == NULL)
		return WITCH_ENOMEM;
	witch__client_config_defaults(cfg);
	*ret = cfg;
	return 0;
}

/* Free a configuration; NULL is a no-op. */
void
witch_client_config_free(witch_client_config_t *cfg)
{
	witch__free(cfg);
}

/*
 * The settable fields, one row each (core/setter.h): where each lives and
 * what it accepts.  The setters below are one call into this table.
 */
enum {
	F_HOST, F_PORT, F_UNIX_PATH, F_CONNECT_TIMEOUT, F_REQUEST_TIMEOUT,
	F_AUTO_RECONNECT, F_MAX_ATTEMPTS, F_DELAY, F_DELAY_MAX, F_STABILITY,
	F_SEED, F_NAME, F_MAX_FRAME
};

#define CNUM(kind, member, lo, hi) \
	WITCH__FIELD_NUM(struct witch_client_config, kind, member, lo, hi)
#define CSTR(member, null_clears) \
	WITCH__FIELD_STR(struct witch_client_config, member, \
	    witch__text_nonempty, null_clears)

static const struct witch__field fields[] = {
	[F_HOST] = CSTR(host, false),
	[F_PORT] = CNUM(WITCH__FIELD_UNSIGNED, port, 1, 65535),
	[F_UNIX_PATH] = CSTR(unix_path, true),
	[F_CONNECT_TIMEOUT] = CNUM(WITCH__FIELD_UNSIGNED, connect_timeout, 1,
	    INT32_MAX),
	[F_REQUEST_TIMEOUT] = CNUM(WITCH__FIELD_UNSIGNED, request_timeout, 1,
	    INT32_MAX),
	[F_AUTO_RECONNECT] = WITCH__FIELD_FLAG(struct witch_client_config,
	    auto_reconnect),
	[F_MAX_ATTEMPTS] = CNUM(WITCH__FIELD_UNSIGNED, max_attempts, 0,
	    UINT_MAX),
	[F_DELAY] = CNUM(WITCH__FIELD_UNSIGNED, delay, 1, UINT_MAX),
	[F_DELAY_MAX] = CNUM(WITCH__FIELD_UNSIGNED, delay_max, 1, UINT_MAX),
	[F_STABILITY] = CNUM(WITCH__FIELD_UNSIGNED, stability, 0, UINT_MAX),
	[F_SEED] = CNUM(WITCH__FIELD_U64, seed, 0, UINT64_MAX),
	[F_NAME] = CSTR(name, false),
	[F_MAX_FRAME] = CNUM(WITCH__FIELD_SIZE, max_frame, 1,
	    WITCH_MAX_FRAME_CEILING),
};

/* Setters: one thread at a time per configuration; 0 or WITCH_EINVAL. */
int
witch_client_config_set_host(witch_client_config_t *cfg, const char *host)
{
	return witch__set_text(cfg, &fields[F_HOST], host);
}

/* See witch_client_config_set_host(). */
int
witch_client_config_set_port(witch_client_config_t *cfg, unsigned port)
{
	return witch__set_num(cfg, &fields[F_PORT], port);
}

/* See witch_client_config_set_host(); NULL clears. */
int
witch_client_config_set_unix_path(witch_client_config_t *cfg,
    const char *path)
{
	return witch__set_text(cfg, &fields[F_UNIX_PATH], path);
}

/* See witch_client_config_set_host(). */
int
witch_client_config_set_connect_timeout(witch_client_config_t *cfg,
    unsigned ms)
{
	return witch__set_num(cfg, &fields[F_CONNECT_TIMEOUT], ms);
}

/* See witch_client_config_set_host(). */
int
witch_client_config_set_request_timeout(witch_client_config_t *cfg,
    unsigned ms)
{
	return witch__set_num(cfg, &fields[F_REQUEST_TIMEOUT], ms);
}

/* See witch_client_config_set_host(). */
int
witch_client_config_set_auto_reconnect(witch_client_config_t *cfg, bool on)
{
	return witch__set_bool(cfg, &fields[F_AUTO_RECONNECT], on);
}

/* See witch_client_config_set_host(). */
int
witch_client_config_set_max_reconnect_attempts(witch_client_config_t *cfg,
    unsigned attempts)
{
	return witch__set_num(cfg, &fields[F_MAX_ATTEMPTS], attempts);
}

/* See witch_client_config_set_host(); ms >= 1. */
int
witch_client_config_set_reconnect_delay(witch_client_config_t *cfg,
    unsigned ms)
{
	return witch__set_num(cfg, &fields[F_DELAY], ms);
}

/* See witch_client_config_set_host(); ms >= 1. */
int
witch_client_config_set_reconnect_delay_max(witch_client_config_t *cfg,
    unsigned ms)
{
	return witch__set_num(cfg, &fields[F_DELAY_MAX], ms);
}

/* See witch_client_config_set_host(). */
int
witch_client_config_set_stability_window(witch_client_config_t *cfg,
    unsigned ms)
{
	return witch__set_num(cfg, &fields[F_STABILITY], ms);
}

/* See witch_client_config_set_host(). */
int
witch_client_config_set_jitter_seed(witch_client_config_t *cfg,
    uint64_t seed)
{
	return witch__set_num(cfg, &fields[F_SEED], seed);
}

/* See witch_client_config_set_host(); stored in lower case. */
int
witch_client_config_set_expected_source_hash(witch_client_config_t *cfg,
    const char *hex)
{
	size_t i;
	char h[33];

	if (cfg == NULL)
		return WITCH_EINVAL;
	if (hex == NULL) {
		cfg->hash[0] = '\0';
		return 0;
	}
	if (strlen(hex) != 32)
		return WITCH_EINVAL;
	for (i = 0; i < 32; i++) {
		if (hex[i] >= '0' && hex[i] <= '9')
			h[i] = hex[i];
		else if (hex[i] >= 'a' && hex[i] <= 'f')
			h[i] = hex[i];
		else if (hex[i] >= 'A' && hex[i] <= 'F')
			h[i] = (char)(hex[i] - 'A' + 'a');
		else
			return WITCH_EINVAL;
	}
	h[32] = '\0';
	memcpy(cfg->hash, h, sizeof(h));
	return 0;
}

/* See witch_client_config_set_host(). */
int
witch_client_config_set_name(witch_client_config_t *cfg, const char *name)
{
	return witch__set_text(cfg, &fields[F_NAME], name);
}

/* See witch_client_config_set_host(): 1..16 names of 1..15 bytes. */
int
witch_client_config_set_protocols(witch_client_config_t *cfg,
    const char *const *protocols, size_t count)
{
	char tmp[NPROTO_MAX][PROTO_LEN];
	size_t i;

	if (cfg == NULL || protocols == NULL || count == 0 ||
	    count > NPROTO_MAX)
		return WITCH_EINVAL;
	for (i = 0; i < count; i++)
		if (protocols[i] == NULL || protocols[i][0] == '\0' ||
		    strlcpy(tmp[i], protocols[i], PROTO_LEN) >= PROTO_LEN)
			return WITCH_EINVAL;
	memcpy(cfg->protocols, tmp, sizeof(tmp[0]) * count);
	cfg->nprotocols = count;
	return 0;
}

/* See witch_client_config_set_host(): 1..WITCH_MAX_FRAME_CEILING. */
int
witch_client_config_set_max_frame(witch_client_config_t *cfg,
    size_t max_frame)
{
	return witch__set_num(cfg, &fields[F_MAX_FRAME], max_frame);
}

/* See witch_client_config_set_host(). */
int
witch_client_config_set_state_callback(witch_client_config_t *cfg,
    witch_client_state_fn fn, void *userdata)
{
	if (cfg == NULL)
		return WITCH_EINVAL;
	cfg->state_fn = fn;
	cfg->state_ud = userdata;
	return 0;
}

/* See witch_client_config_set_host(). */
int
witch_client_config_set_event_callback(witch_client_config_t *cfg,
    witch_client_event_fn fn, void *userdata)
{
	if (cfg == NULL)
		return WITCH_EINVAL;
	cfg->event_fn = fn;
	cfg->event_ud = userdata;
	return 0;
}
