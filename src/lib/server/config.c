/*
 * server/config.c: the server configuration object and its typed setters.
 *
 * An opaque object keeps the ABI stable as options are added: a new option
 * is a new setter, never a changed struct.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <witch/server.h>

#include "core/alloc.h"
#include "core/setter.h"
#include "server/server_int.h"
#include "net/sock.h"

/*
 * The fields with a one-value setter: each setter below is one call of
 * core/setter.h over its row.
 */
enum {
	F_PORT,
	F_BIND,
	F_NAME,
	F_PROJECT_ID,
	F_MAX_CLIENTS,
	F_INLINE_BUILTINS,
	F_WORKERS,
	F_QUEUE_DEPTH,
	F_MAX_FRAME,
	F_IDLE,
	F_HANDSHAKE,
	F_DRAIN,
	F_TCP,
	F_DISCOVERY,
	F_DISC_PORT,
	F_DISC_INTERVAL,
	F_ADVERTISE,
	F_DISC_TARGET,
};

/* Rows of the table, for struct witch_server_config. */
#define UINT_F(m, lo, hi) \
	WITCH__FIELD_NUM(struct witch_server_config, WITCH__FIELD_UNSIGNED, \
	    m, lo, hi)
#define FLAG_F(m)	WITCH__FIELD_FLAG(struct witch_server_config, m)
#define TEXT_F(m, valid, null_clears) \
	WITCH__FIELD_STR(struct witch_server_config, m, valid, null_clears)

static const struct witch__field fields[] = {
	[F_PORT] = UINT_F(port, 0, 65535),
	[F_BIND] = TEXT_F(bind, witch__addr_is_numeric, false),
	[F_NAME] = TEXT_F(name, witch__text_printable_nonempty, false),
	[F_PROJECT_ID] = TEXT_F(project_id, witch__text_printable, false),
	[F_MAX_CLIENTS] = UINT_F(max_clients, 1, 1000000),
	[F_INLINE_BUILTINS] = FLAG_F(inline_builtins),
	[F_WORKERS] = UINT_F(workers, 0, 1024),
	[F_QUEUE_DEPTH] = UINT_F(queue_depth, 1, 1000000),
	[F_MAX_FRAME] = WITCH__FIELD_NUM(struct witch_server_config,
	    WITCH__FIELD_SIZE, max_frame, 1, WITCH_MAX_FRAME_CEILING),
	[F_IDLE] = UINT_F(idle_ms, 0, UINT_MAX),
	[F_HANDSHAKE] = UINT_F(handshake_ms, 0, UINT_MAX),
	[F_DRAIN] = UINT_F(drain_ms, 0, 86400000),
	[F_TCP] = FLAG_F(tcp),
	[F_DISCOVERY] = FLAG_F(discovery),
	[F_DISC_PORT] = UINT_F(disc_port, 1, 65535),
	[F_DISC_INTERVAL] = UINT_F(disc_interval_ms,
	    WITCH_DISCOVERY_INTERVAL_MIN_MS, WITCH_DISCOVERY_INTERVAL_MAX_MS),
	[F_ADVERTISE] = TEXT_F(advertise, witch__addr_is_numeric, true),
	[F_DISC_TARGET] = TEXT_F(disc_target, witch__addr_is_numeric, true),
};


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
	witch__peer_opts_defaults(&cfg->peer);
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
	return witch__set_num(cfg, &fields[F_PORT], port);
}

int
witch_server_config_set_bind(witch_server_config_t *cfg, const char *addr)
{
	return witch__set_text(cfg, &fields[F_BIND], addr);
}

int
witch_server_config_set_name(witch_server_config_t *cfg, const char *name)
{
	return witch__set_text(cfg, &fields[F_NAME], name);
}

int
witch_server_config_set_project_id(witch_server_config_t *cfg,
    const char *project_id)
{
	return witch__set_text(cfg, &fields[F_PROJECT_ID], project_id);
}

int
witch_server_config_set_max_clients(witch_server_config_t *cfg,
    unsigned max_clients)
{
	return witch__set_num(cfg, &fields[F_MAX_CLIENTS], max_clients);
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
		if (protocols[i] == NULL ||
		    strlen(protocols[i]) > WITCH__PROTO_NAME_MAX ||
		    !witch__text_printable_nonempty(protocols[i]))
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
	return witch__set_bool(cfg, &fields[F_INLINE_BUILTINS], on);
}

int
witch_server_config_set_workers(witch_server_config_t *cfg, unsigned workers)
{
	return witch__set_num(cfg, &fields[F_WORKERS], workers);
}

int
witch_server_config_set_queue_depth(witch_server_config_t *cfg,
    unsigned depth)
{
	return witch__set_num(cfg, &fields[F_QUEUE_DEPTH], depth);
}

int
witch_server_config_set_max_frame(witch_server_config_t *cfg,
    size_t max_frame)
{
	return witch__set_num(cfg, &fields[F_MAX_FRAME], max_frame);
}

int
witch_server_config_set_idle_timeout(witch_server_config_t *cfg, unsigned ms)
{
	return witch__set_num(cfg, &fields[F_IDLE], ms);
}

int
witch_server_config_set_handshake_timeout(witch_server_config_t *cfg,
    unsigned ms)
{
	return witch__set_num(cfg, &fields[F_HANDSHAKE], ms);
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
	return witch__set_num(cfg, &fields[F_DRAIN], ms);
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
	return witch__set_bool(cfg, &fields[F_TCP], on);
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
	return witch__set_bool(cfg, &fields[F_DISCOVERY], on);
}

int
witch_server_config_set_discovery_port(witch_server_config_t *cfg,
    unsigned port)
{
	return witch__set_num(cfg, &fields[F_DISC_PORT], port);
}

int
witch_server_config_set_discovery_interval(witch_server_config_t *cfg,
    unsigned ms)
{
	return witch__set_num(cfg, &fields[F_DISC_INTERVAL], ms);
}

int
witch_server_config_set_advertise(witch_server_config_t *cfg,
    const char *addr)
{
	return witch__set_text(cfg, &fields[F_ADVERTISE], addr);
}

int
witch_server_config_set_discovery_target(witch_server_config_t *cfg,
    const char *addr)
{
	return witch__set_text(cfg, &fields[F_DISC_TARGET], addr);
}

/* ---- peering (<witch/peer.h>) ----------------------------------------- */

int
witch_server_config_set_peering(witch_server_config_t *cfg, bool on)
{
	if (cfg == NULL)
		return WITCH_EINVAL;
	cfg->peer.on = on;
	return 0;
}

int
witch_server_config_add_peer_seed(witch_server_config_t *cfg,
    const char *host_port)
{
	char host[WITCH__PEER_HOST_MAX + 1];
	unsigned port;

	if (cfg == NULL)
		return WITCH_EINVAL;
	if (host_port == NULL) {
		cfg->peer.nseeds = 0;
		return 0;
	}
	if (witch__peer_parse_hostport(host_port, host, sizeof(host),
	    &port) != 0 || strlen(host_port) >= sizeof(cfg->peer.seeds[0]))
		return WITCH_EINVAL;
	if (cfg->peer.nseeds >= WITCH_PEER_SEEDS_MAX)
		return WITCH_ETOO_LARGE;
	strlcpy(cfg->peer.seeds[cfg->peer.nseeds++], host_port,
	    sizeof(cfg->peer.seeds[0]));
	return 0;
}

int
witch_server_config_set_peer_heartbeat(witch_server_config_t *cfg,
    unsigned ms)
{
	if (cfg == NULL || ms < WITCH_PEER_HEARTBEAT_MIN_MS ||
	    ms > WITCH_PEER_HEARTBEAT_MAX_MS)
		return WITCH_EINVAL;
	cfg->peer.hb_ms = ms;
	return 0;
}

int
witch_server_config_set_peer_thresholds(witch_server_config_t *cfg,
    unsigned suspect, unsigned dead)
{
	if (cfg == NULL || suspect < 1 || suspect >= dead ||
	    dead > WITCH_PEER_DEAD_MAX)
		return WITCH_EINVAL;
	cfg->peer.suspect = suspect;
	cfg->peer.dead = dead;
	return 0;
}

int
witch_server_config_set_peer_queue(witch_server_config_t *cfg,
    unsigned messages)
{
	if (cfg == NULL || messages < 1 || messages > WITCH_PEER_QUEUE_MAX)
		return WITCH_EINVAL;
	cfg->peer.queue = messages;
	return 0;
}

int
witch_server_config_set_peer_message_handler(witch_server_config_t *cfg,
    witch_peer_message_fn fn, void *userdata)
{
	if (cfg == NULL)
		return WITCH_EINVAL;
	cfg->peer.msg_fn = fn;
	cfg->peer.msg_ud = userdata;
	return 0;
}

int
witch_server_config_set_peer_status_callback(witch_server_config_t *cfg,
    witch_peer_status_fn fn, void *userdata)
{
	if (cfg == NULL)
		return WITCH_EINVAL;
	cfg->peer.st_fn = fn;
	cfg->peer.st_ud = userdata;
	return 0;
}
