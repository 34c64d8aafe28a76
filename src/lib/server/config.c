/*
 * server/config.c: the server configuration object and its typed setters.
 *
 * An opaque object keeps the ABI stable as options are added: a new option
 * is a new setter, never a changed struct.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <witch/server.h>

#include "core/alloc.h"
#include "server/server_int.h"
#include "net/sock.h"

/* Fill cfg with every default. */
static void
config_defaults(struct witch_server_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->tcp = true;
	cfg->unix_mode = 0660;
	cfg->port = WITCH_DEFAULT_PORT;
	strlcpy(cfg->bind, WITCH_DEFAULT_BIND, sizeof(cfg->bind));
	strlcpy(cfg->name, "witch", sizeof(cfg->name));
	cfg->max_clients = WITCH_DEFAULT_MAX_CLIENTS;
	strlcpy(cfg->protocols[0], "v1", sizeof(cfg->protocols[0]));
	cfg->nprotocols = 1;
	cfg->workers = 0;
	cfg->inline_builtins = true;
	cfg->queue_depth = WITCH_DEFAULT_QUEUE_DEPTH;
	cfg->max_frame = WITCH_DEFAULT_MAX_FRAME;
	cfg->idle_ms = WITCH_DEFAULT_IDLE_TIMEOUT_MS;
	cfg->handshake_ms = WITCH_DEFAULT_HANDSHAKE_TIMEOUT_MS;
	cfg->out_soft = WITCH_DEFAULT_OUTPUT_SOFT;
	cfg->out_hard = WITCH_DEFAULT_OUTPUT_HARD;
	cfg->drain_ms = WITCH_DEFAULT_DRAIN_TIMEOUT_MS;
	cfg->discovery = false;
	cfg->disc_port = WITCH_DISCOVERY_DEFAULT_PORT;
	cfg->disc_interval_ms = WITCH_DISCOVERY_DEFAULT_INTERVAL_MS;
}

/* Fill cfg with every default; used by witch_server_new(NULL). */
void
witch__config_defaults(struct witch_server_config *cfg)
{
	config_defaults(cfg);
}

int
witch_server_config_new(witch_server_config_t **ret)
{
	struct witch_server_config *cfg;

	if (ret == NULL)
		return WITCH_EINVAL;
	if ((cfg = witch__malloc(sizeof(*cfg))) == NULL)
		return WITCH_ENOMEM;
	config_defaults(cfg);
	*ret = cfg;
	return 0;
}

void
witch_server_config_free(witch_server_config_t *cfg)
{
	witch__free(cfg);
}

int
witch_server_config_set_port(witch_server_config_t *cfg, unsigned port)
{
	if (cfg == NULL || port > 65535)
		return WITCH_EINVAL;
	cfg->port = port;
	return 0;
}

int
witch_server_config_set_bind(witch_server_config_t *cfg, const char *addr)
{
	if (cfg == NULL || addr == NULL || strlen(addr) >= sizeof(cfg->bind) ||
	    !witch__addr_is_numeric(addr))
		return WITCH_EINVAL;
	strlcpy(cfg->bind, addr, sizeof(cfg->bind));
	return 0;
}

/* A printable name of 1..max bytes (empty allowed if allow_empty). */
static int
valid_name(const char *s, size_t max, int allow_empty)
{
	size_t n;

	if (s == NULL)
		return 0;
	n = strlen(s);
	if (n > max || (n == 0 && !allow_empty))
		return 0;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

int
witch_server_config_set_name(witch_server_config_t *cfg, const char *name)
{
	if (cfg == NULL || !valid_name(name, WITCH__NAME_MAX, 0))
		return WITCH_EINVAL;
	strlcpy(cfg->name, name, sizeof(cfg->name));
	return 0;
}

int
witch_server_config_set_project_id(witch_server_config_t *cfg,
    const char *project_id)
{
	if (cfg == NULL || !valid_name(project_id, WITCH__NAME_MAX, 1))
		return WITCH_EINVAL;
	strlcpy(cfg->project_id, project_id, sizeof(cfg->project_id));
	return 0;
}

int
witch_server_config_set_max_clients(witch_server_config_t *cfg,
    unsigned max_clients)
{
	if (cfg == NULL || max_clients < 1 || max_clients > 1000000)
		return WITCH_EINVAL;
	cfg->max_clients = max_clients;
	return 0;
}

int
witch_server_config_set_protocols(witch_server_config_t *cfg,
    const char *const *protocols, size_t count)
{
	size_t i, j;

	if (cfg == NULL || protocols == NULL || count < 1 ||
	    count > WITCH__PROTO_MAX)
		return WITCH_EINVAL;
	for (i = 0; i < count; i++) {
		if (!valid_name(protocols[i], WITCH__PROTO_NAME_MAX, 0))
			return WITCH_EINVAL;
		for (j = 0; j < i; j++)
			if (strcmp(protocols[i], protocols[j]) == 0)
				return WITCH_EINVAL;
	}
	for (i = 0; i < count; i++)
		strlcpy(cfg->protocols[i], protocols[i],
		    sizeof(cfg->protocols[i]));
	cfg->nprotocols = count;
	return 0;
}

int
witch_server_config_set_inline_builtins(witch_server_config_t *cfg, bool on)
{
	if (cfg == NULL)
		return WITCH_EINVAL;
	cfg->inline_builtins = on;
	return 0;
}

int
witch_server_config_set_workers(witch_server_config_t *cfg, unsigned workers)
{
	if (cfg == NULL || workers > 1024)
		return WITCH_EINVAL;
	cfg->workers = workers;
	return 0;
}

int
witch_server_config_set_queue_depth(witch_server_config_t *cfg,
    unsigned depth)
{
	if (cfg == NULL || depth < 1 || depth > 1000000)
		return WITCH_EINVAL;
	cfg->queue_depth = depth;
	return 0;
}

int
witch_server_config_set_max_frame(witch_server_config_t *cfg,
    size_t max_frame)
{
	if (cfg == NULL || max_frame < 1 || max_frame > WITCH_MAX_FRAME_CEILING)
		return WITCH_EINVAL;
	cfg->max_frame = max_frame;
	return 0;
}

int
witch_server_config_set_idle_timeout(witch_server_config_t *cfg, unsigned ms)
{
	if (cfg == NULL)
		return WITCH_EINVAL;
	cfg->idle_ms = ms;
	return 0;
}

int
witch_server_config_set_handshake_timeout(witch_server_config_t *cfg,
    unsigned ms)
{
	if (cfg == NULL)
		return WITCH_EINVAL;
	cfg->handshake_ms = ms;
	return 0;
}

int
witch_server_config_set_output_limits(witch_server_config_t *cfg,
    size_t soft, size_t hard)
{
	if (cfg == NULL || hard < 4096 || soft > hard || soft < 1)
		return WITCH_EINVAL;
	cfg->out_soft = soft;
	cfg->out_hard = hard;
	return 0;
}

int
witch_server_config_set_source_hash(witch_server_config_t *cfg,
    const char *hex)
{
	size_t i;

	if (cfg == NULL)
		return WITCH_EINVAL;
	if (hex == NULL) {
		cfg->has_source_hash = false;
		cfg->source_hash[0] = '\0';
		return 0;
	}
	if (strlen(hex) != WITCH__HASH_HEX)
		return WITCH_EINVAL;
	for (i = 0; i < WITCH__HASH_HEX; i++)
		if (!isxdigit((unsigned char)hex[i]) ||
		    isupper((unsigned char)hex[i]))
			return WITCH_EINVAL;
	strlcpy(cfg->source_hash, hex, sizeof(cfg->source_hash));
	cfg->has_source_hash = true;
	return 0;
}

int
witch_server_config_set_drain_timeout(witch_server_config_t *cfg,
    unsigned ms)
{
	if (cfg == NULL || ms > 86400000u)
		return WITCH_EINVAL;
	cfg->drain_ms = ms;
	return 0;
}

int
witch_server_config_set_logger(witch_server_config_t *cfg, witch_log_fn fn,
    void *userdata)
{
	if (cfg == NULL)
		return WITCH_EINVAL;
	cfg->log_fn = fn;
	cfg->log_ud = userdata;
	return 0;
}

int
witch_server_config_set_listen_tcp(witch_server_config_t *cfg, bool on)
{
	if (cfg == NULL)
		return WITCH_EINVAL;
	cfg->tcp = on;
	return 0;
}

int
witch_server_config_set_unix_path(witch_server_config_t *cfg,
    const char *path, unsigned mode)
{
	if (cfg == NULL || mode > 0777)
		return WITCH_EINVAL;
	if (path == NULL) {
		cfg->unix_path[0] = '\0';
		return 0;
	}
	if (path[0] == '\0' || strlen(path) > WITCH__UNIX_PATH_MAX)
		return WITCH_EINVAL;
	strlcpy(cfg->unix_path, path, sizeof(cfg->unix_path));
	cfg->unix_mode = mode;
	return 0;
}

int
witch_server_config_set_discovery(witch_server_config_t *cfg, bool on)
{
	if (cfg == NULL)
		return WITCH_EINVAL;
	cfg->discovery = on;
	return 0;
}

int
witch_server_config_set_discovery_port(witch_server_config_t *cfg,
    unsigned port)
{
	if (cfg == NULL || port < 1 || port > 65535)
		return WITCH_EINVAL;
	cfg->disc_port = port;
	return 0;
}

int
witch_server_config_set_discovery_interval(witch_server_config_t *cfg,
    unsigned ms)
{
	if (cfg == NULL || ms < WITCH_DISCOVERY_INTERVAL_MIN_MS ||
	    ms > WITCH_DISCOVERY_INTERVAL_MAX_MS)
		return WITCH_EINVAL;
	cfg->disc_interval_ms = ms;
	return 0;
}

int
witch_server_config_set_advertise(witch_server_config_t *cfg,
    const char *addr)
{
	if (cfg == NULL)
		return WITCH_EINVAL;
	if (addr == NULL) {
		cfg->advertise[0] = '\0';
		return 0;
	}
	if (strlen(addr) >= sizeof(cfg->advertise) ||
	    !witch__addr_is_numeric(addr))
		return WITCH_EINVAL;
	strlcpy(cfg->advertise, addr, sizeof(cfg->advertise));
	return 0;
}

int
witch_server_config_set_discovery_target(witch_server_config_t *cfg,
    const char *addr)
{
	if (cfg == NULL || (addr != NULL &&
	    (strlen(addr) >= sizeof(cfg->disc_target) ||
	    !witch__addr_is_numeric(addr))))
		return WITCH_EINVAL;
	strlcpy(cfg->disc_target, addr != NULL ? addr : "",
	    sizeof(cfg->disc_target));
	return 0;
}
