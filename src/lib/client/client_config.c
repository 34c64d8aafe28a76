/*
 * client/client_config.c: the witch client configuration object and its
 * setters (include/witch/client.h).
 */
#include <string.h>

#include <witch/client.h>
#include <witch/server.h>

#include "client/client_int.h"
#include "core/alloc.h"

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
	if (cfg != NULL)
		witch__key_clear(&cfg->key);
	witch__free(cfg);
}

/* The project's key: authenticate to the server (NULL: none). */
int
witch_client_config_set_key(witch_client_config_t *cfg, const void *key,
    size_t len)
{
	if (cfg == NULL)
		return WITCH_EINVAL;
	return witch__key_set(&cfg->key, key, len);
}

/* Copy a string of 1..size-1 bytes into dst.  0 or WITCH_EINVAL. */
static int
set_str(char *dst, size_t size, const char *s)
{
	size_t n;

	if (s == NULL || (n = strlen(s)) == 0 || n >= size)
		return WITCH_EINVAL;
	memcpy(dst, s, n + 1);
	return 0;
}

/* Setters: one thread at a time per configuration; 0 or WITCH_EINVAL. */
int
witch_client_config_set_host(witch_client_config_t *cfg, const char *host)
{
	return cfg == NULL ? WITCH_EINVAL :
	    set_str(cfg->host, sizeof(cfg->host), host);
}

/* See witch_client_config_set_host(). */
int
witch_client_config_set_port(witch_client_config_t *cfg, unsigned port)
{
	if (cfg == NULL || port == 0 || port > 65535)
		return WITCH_EINVAL;
	cfg->port = port;
	return 0;
}

/* See witch_client_config_set_host(). */
int
witch_client_config_set_unix_path(witch_client_config_t *cfg,
    const char *path)
{
	if (cfg == NULL)
		return WITCH_EINVAL;
	if (path == NULL) {
		cfg->unix_path[0] = '\0';
		return 0;
	}
	return set_str(cfg->unix_path, sizeof(cfg->unix_path), path);
}

/* See witch_client_config_set_host(). */
int
witch_client_config_set_connect_timeout(witch_client_config_t *cfg,
    unsigned ms)
{
	if (cfg == NULL || ms == 0 || ms > INT32_MAX)
		return WITCH_EINVAL;
	cfg->connect_timeout = ms;
	return 0;
}

/* See witch_client_config_set_host(). */
int
witch_client_config_set_request_timeout(witch_client_config_t *cfg,
    unsigned ms)
{
	if (cfg == NULL || ms == 0 || ms > INT32_MAX)
		return WITCH_EINVAL;
	cfg->request_timeout = ms;
	return 0;
}

/* See witch_client_config_set_host(). */
int
witch_client_config_set_auto_reconnect(witch_client_config_t *cfg, bool on)
{
	if (cfg == NULL)
		return WITCH_EINVAL;
	cfg->auto_reconnect = on;
	return 0;
}

/* See witch_client_config_set_host(). */
int
witch_client_config_set_max_reconnect_attempts(witch_client_config_t *cfg,
    unsigned attempts)
{
	if (cfg == NULL)
		return WITCH_EINVAL;
	cfg->max_attempts = attempts;
	return 0;
}

/* See witch_client_config_set_host(); ms >= 1. */
int
witch_client_config_set_reconnect_delay(witch_client_config_t *cfg,
    unsigned ms)
{
	if (cfg == NULL || ms == 0)
		return WITCH_EINVAL;
	cfg->delay = ms;
	return 0;
}

/* See witch_client_config_set_host(); ms >= 1. */
int
witch_client_config_set_reconnect_delay_max(witch_client_config_t *cfg,
    unsigned ms)
{
	if (cfg == NULL || ms == 0)
		return WITCH_EINVAL;
	cfg->delay_max = ms;
	return 0;
}

/* See witch_client_config_set_host(). */
int
witch_client_config_set_stability_window(witch_client_config_t *cfg,
    unsigned ms)
{
	if (cfg == NULL)
		return WITCH_EINVAL;
	cfg->stability = ms;
	return 0;
}

/* See witch_client_config_set_host(). */
int
witch_client_config_set_jitter_seed(witch_client_config_t *cfg,
    uint64_t seed)
{
	if (cfg == NULL)
		return WITCH_EINVAL;
	cfg->seed = seed;
	return 0;
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
	return cfg == NULL ? WITCH_EINVAL :
	    set_str(cfg->name, sizeof(cfg->name), name);
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
		if (set_str(tmp[i], PROTO_LEN, protocols[i]) != 0)
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
	if (cfg == NULL || max_frame == 0 ||
	    max_frame > WITCH_MAX_FRAME_CEILING)
		return WITCH_EINVAL;
	cfg->max_frame = max_frame;
	return 0;
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
