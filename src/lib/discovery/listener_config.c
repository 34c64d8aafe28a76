/*
 * discovery/listener_config.c: the discovery listener's configuration
 * object and its setters (include/witch/discovery.h); the listener itself
 * is listener.c.
 */
#include "discovery/listener_int.h"
#include "net/sock.h"

/* ---- configuration ---------------------------------------------------- */

/* A bind address: "" (the wildcard) or a numeric IPv4 or IPv6 address. */
static int
valid_bind(const char *s)
{
	return *s == '\0' || witch__addr_is_numeric(s);
}

/* The fields with a one-value setter (core/setter.h). */
enum { F_PORT, F_BIND, F_EXPIRY, F_VERIFY, F_VERIFY_TIMEOUT, F_IPV6 };

#define UINT_F(m, lo, hi) \
	WITCH__FIELD_NUM(struct witch_listener_config, \
	    WITCH__FIELD_UNSIGNED, m, lo, hi)
#define FLAG_F(m)	WITCH__FIELD_FLAG(struct witch_listener_config, m)
#define TEXT_F(m, valid, null_clears) \
	WITCH__FIELD_STR(struct witch_listener_config, m, valid, null_clears)

static const struct witch__field fields[] = {
	[F_PORT] = UINT_F(port, 0, 65535),
	[F_BIND] = TEXT_F(bind, valid_bind, true),
	[F_EXPIRY] = UINT_F(expiry_ms, 100, 86400000),
	[F_VERIFY] = FLAG_F(verify),
	[F_VERIFY_TIMEOUT] = UINT_F(verify_timeout_ms, 100, 60000),
	[F_IPV6] = FLAG_F(ipv6),
};


/* New listener configuration with defaults; 0 or WITCH_ENOMEM. */
int
witch_listener_config_new(witch_listener_config_t **ret)
{
	witch_listener_config_t *cfg;

	if (ret == NULL)
		return WITCH_EINVAL;
	if ((cfg = witch__calloc(1, sizeof(*cfg))) == NULL)
		return WITCH_ENOMEM;
	cfg->port = WITCH_DISCOVERY_DEFAULT_PORT;
	cfg->expiry_ms = WITCH_DISCOVERY_DEFAULT_EXPIRY_MS;
	cfg->verify_timeout_ms = 2000;
	cfg->ipv6 = true;
	*ret = cfg;
	return 0;
}

/* Free a configuration; NULL is a no-op. */
void
witch_listener_config_free(witch_listener_config_t *cfg)
{
	if (cfg != NULL)
		witch__key_clear(&cfg->key);
	witch__free(cfg);
}

/* Accept only announcements signed with key (NULL: any). */
int
witch_listener_config_set_key(witch_listener_config_t *cfg, const void *key,
    size_t len)
{
	if (cfg == NULL)
		return WITCH_EINVAL;
	return witch__key_set(&cfg->key, key, len);
}

/* Set the UDP port (0: any free one). */
int
witch_listener_config_set_port(witch_listener_config_t *cfg, unsigned port)
{
	return witch__set_num(cfg, &fields[F_PORT], port);
}

/* Set (or clear, NULL or "") the address to bind. */
int
witch_listener_config_set_bind(witch_listener_config_t *cfg,
    const char *addr)
{
	return witch__set_text(cfg, &fields[F_BIND], addr);
}

/* Set the expiry of silent servers. */
int
witch_listener_config_set_expiry(witch_listener_config_t *cfg, unsigned ms)
{
	return witch__set_num(cfg, &fields[F_EXPIRY], ms);
}

/* Turn verification on or off. */
int
witch_listener_config_set_verify(witch_listener_config_t *cfg, bool on)
{
	return witch__set_bool(cfg, &fields[F_VERIFY], on);
}

/* Set the timeout of one verification. */
int
witch_listener_config_set_verify_timeout(witch_listener_config_t *cfg,
    unsigned ms)
{
	return witch__set_num(cfg, &fields[F_VERIFY_TIMEOUT], ms);
}

/* Turn the IPv6 group on or off. */
int
witch_listener_config_set_ipv6(witch_listener_config_t *cfg, bool on)
{
	return witch__set_bool(cfg, &fields[F_IPV6], on);
}

/* Set the event callback. */
int
witch_listener_config_set_callback(witch_listener_config_t *cfg,
    witch_discovery_fn fn, void *userdata)
{
	if (cfg == NULL)
		return WITCH_EINVAL;
	cfg->cb = fn;
	cfg->cb_ud = userdata;
	return 0;
}

/* Set the logger. */
int
witch_listener_config_set_logger(witch_listener_config_t *cfg,
    witch_log_fn fn, void *userdata)
{
	if (cfg == NULL)
		return WITCH_EINVAL;
	cfg->log_fn = fn;
	cfg->log_ud = userdata;
	return 0;
}

