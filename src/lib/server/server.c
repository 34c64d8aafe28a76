/*
 * server/server.c: the public server API: create, register, start, stop,
 * free, and the accessors handlers use on a witch_request_t.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <witch/server.h>

#include "core/alloc.h"
#include "server/server_int.h"
#include "net/sock.h"

/* Fill err (may be NULL) with code and a formatted explanation. */
static int
set_err(witch_error_t *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL) {
		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->text, sizeof(err->text), fmt, ap);
		va_end(ap);
	}
	return code;
}

/* Publish the live-changeable settings of cfg. */
static void
live_set(struct witch_server *srv, const struct witch_server_config *cfg)
{
	atomic_store(&srv->r.live.max_clients, cfg->max_clients);
	atomic_store(&srv->r.live.idle_ms, cfg->idle_ms);
	atomic_store(&srv->r.live.handshake_ms, cfg->handshake_ms);
	atomic_store(&srv->r.live.out_soft, cfg->out_soft);
	atomic_store(&srv->r.live.out_hard, cfg->out_hard);
	atomic_store(&srv->r.live.frame_ms, cfg->frame_ms);
}

int
witch_server_new(witch_server_t **ret, const witch_server_config_t *cfg)
{
	struct witch_server *srv;
	struct witch__reactor_opts *o;
	unsigned char id[16];
	size_t i;

	if (ret == NULL)
		return WITCH_EINVAL;
	if ((srv = witch__calloc(1, sizeof(*srv))) == NULL)
		return WITCH_ENOMEM;
	if (cfg != NULL)
		srv->cfg = *cfg;
	else
		witch__config_defaults(&srv->cfg);
	arc4random_buf(id, sizeof(id));
	for (i = 0; i < sizeof(id); i++)
		snprintf(srv->server_id + 2 * i, 3, "%02x", id[i]);
	witch__reactor_init(&srv->r, srv);
	/* What the reactor needs of the configuration, handed down. */
	o = &srv->r.opt;
	strlcpy(o->name, srv->cfg.name, sizeof(o->name));
	strlcpy(o->project_id, srv->cfg.project_id, sizeof(o->project_id));
	strlcpy(o->server_id, srv->server_id, sizeof(o->server_id));
	memcpy(o->protocols, srv->cfg.protocols, sizeof(o->protocols));
	o->nprotocols = srv->cfg.nprotocols;
	o->max_frame = srv->cfg.max_frame;
	o->preauth_max_frame = srv->cfg.preauth_max_frame;
	o->decode_budget = srv->cfg.decode_budget;
	o->frame_budget = srv->cfg.frame_budget;
	o->max_depth = srv->cfg.max_depth;
	o->max_per_address = srv->cfg.max_per_address;
	o->log_fn = srv->cfg.log_fn;
	o->log_ud = srv->cfg.log_ud;
	o->key = srv->cfg.key;
	o->unprotected = srv->cfg.unprotected;
	/* With a key, frames stay capped until the exchange succeeds. */
	o->auth_required = witch__key_on(&srv->cfg.key);
	live_set(srv, &srv->cfg);
	pthread_mutex_init(&srv->stop_mtx, NULL);
	if (witch__builtins_register(srv) != 0 ||
	    witch__conn_builtins_register(&srv->r) != 0 ||
	    witch__peers_new(&srv->peers, srv, &srv->cfg.peer) != 0) {
		witch__free(srv->r.eps);
		witch__reactor_teardown(&srv->r);
		pthread_mutex_destroy(&srv->stop_mtx);
		witch__free(srv);
		return WITCH_ENOMEM;
	}
	*ret = srv;
	return 0;
}

int
witch_server_register_endpoint_ex(witch_server_t *srv, const char *name,
    const char *const *protocols, size_t count, witch_handler_fn handler,
    void *userdata, unsigned flags)
{
	uint32_t mask = 0;
	size_t i, p;

	if (srv == NULL || (flags & ~(unsigned)WITCH_ENDPOINT_INLINE) != 0 ||
	    (protocols == NULL) != (count == 0))
		return WITCH_EINVAL;
	if (protocols == NULL)
		mask = (1u << srv->cfg.nprotocols) - 1;
	for (i = 0; i < count; i++) {
		for (p = 0; p < srv->cfg.nprotocols; p++)
			if (protocols[i] != NULL &&
			    strcmp(protocols[i], srv->cfg.protocols[p]) == 0)
				break;
		if (p == srv->cfg.nprotocols)
			return WITCH_EINVAL;
		mask |= 1u << p;
	}
	return witch__endpoint_add(&srv->r, name, mask, handler, userdata,
	    (flags & WITCH_ENDPOINT_INLINE) != 0, NULL);
}

int
witch_server_register_endpoint(witch_server_t *srv, const char *name,
    witch_handler_fn handler, void *userdata)
{
	return witch_server_register_endpoint_ex(srv, name, NULL, 0, handler,
	    userdata, 0);
}

int
witch_server_register_endpoint_for(witch_server_t *srv, const char *name,
    const char *const *protocols, size_t count, witch_handler_fn handler,
    void *userdata)
{
	if (protocols == NULL || count == 0)
		return WITCH_EINVAL;
	return witch_server_register_endpoint_ex(srv, name, protocols, count,
	    handler, userdata, 0);
}

/* Workers by default: one fewer than the CPUs (the reactor has one). */
static unsigned
default_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n <= 2)
		return 1;
	return n - 1 > 64 ? 64 : (unsigned)(n - 1);
}

/* Release everything start may have created. */
static void
teardown(struct witch_server *srv)
{
	witch_announcer_free(srv->announcer);
	srv->announcer = NULL;
	if (srv->r.pool != NULL) {
		witch__pool_free(srv->r.pool);
		srv->r.pool = NULL;
	}
	witch__reactor_teardown(&srv->r);
}
int
witch_server_adopt_listener(witch_server_t *srv, int fd)
{
	int local;

	if (srv == NULL || fd < 0) {
		if (fd >= 0)
			close(fd);
		return WITCH_EINVAL;
	}
	if (atomic_load(&srv->r.phase) != WITCH__PHASE_NEW) {
		close(fd);
		return WITCH_ESTATE;
	}
	if (srv->nadopted == WITCH__ACCEPTORS_MAX - 2) {
		close(fd);
		return WITCH_ETOO_LARGE;
	}
	if (witch__sock_check_listening(fd, &local) != 0) {
		close(fd);
		return WITCH_EINVAL;
	}
	srv->adopted[srv->nadopted++] = fd;
	return 0;
}

/* The TCP port a listening socket is bound to, or 0. */
static unsigned
listen_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

/* Open (or take over) every listening socket the configuration asks for. */
static int
open_acceptors(struct witch_server *srv, witch_error_t *err)
{
	struct witch__reactor *r = &srv->r;
	size_t i;
	int rc, fd, local;

	for (i = 0; i < srv->nadopted; i++) {
		fd = srv->adopted[i];
		witch__sock_check_listening(fd, &local);
		witch__acceptor_add(r, fd, local, NULL);
		if (!local && srv->port == 0)
			srv->port = listen_port(fd);
	}
	srv->nadopted = 0;
	if (srv->cfg.tcp) {
		if ((rc = witch__sock_listen(srv->cfg.bind, srv->cfg.port,
		    &fd, &srv->port, err)) != 0)
			return rc;
		witch__acceptor_add(r, fd, false, NULL);
	}
	if (srv->cfg.unix_path[0] != '\0') {
		if ((rc = witch__sock_listen_unix(srv->cfg.unix_path,
		    srv->cfg.unix_mode, &fd, err)) != 0)
			return rc;
		witch__acceptor_add(r, fd, true, srv->cfg.unix_path);
	}
	if (r->nacc == 0)
		return set_err(err, WITCH_EINVAL, "nothing to listen on: "
		    "TCP is off and there is no unix path or adopted socket");
	return 0;
}
int
witch_server_reconfigure(witch_server_t *srv,
    const witch_server_config_t *cfg)
{
	if (srv == NULL || cfg == NULL)
		return WITCH_EINVAL;
	live_set(srv, cfg);
	witch__log(srv, WITCH_LOG_NOTICE, "reconfigured: max_clients %u, "
	    "idle_timeout %u ms, handshake_timeout %u ms, frame_timeout %u ms, "
	    "output %zu/%zu", cfg->max_clients, cfg->idle_ms,
	    cfg->handshake_ms, cfg->frame_ms, cfg->out_soft, cfg->out_hard);
	return 0;
}

unsigned
witch_server_clients(const witch_server_t *srv)
{
	return srv != NULL ? atomic_load(&((witch_server_t *)(uintptr_t)srv)->
	    r.ctr.clients) : 0;
}

/*
 * Numeric address the TCP socket listens on (adopted sockets included:
 * under socket activation the configured bind address is not the truth).
 */
static void
tcp_bind_address(const struct witch_server *srv, char *out, size_t outlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	size_t i;

	strlcpy(out, srv->cfg.bind, outlen);
	for (i = 0; i < srv->r.nacc; i++) {
		len = sizeof(ss);
		if (srv->r.acc[i].local || getsockname(srv->r.acc[i].fd,
		    (struct sockaddr *)&ss, &len) == -1)
			continue;
		if (ss.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr,
			    out, (socklen_t)outlen);
		else if (ss.ss_family == AF_INET6)
			inet_ntop(AF_INET6,
			    &((struct sockaddr_in6 *)&ss)->sin6_addr, out,
			    (socklen_t)outlen);
		return;
	}
}

/* Start announcing (discovery on, TCP on).  Failures are only logged. */
static void
start_announcer(struct witch_server *srv)
{
	const char *pp[WITCH__PROTO_MAX];
	witch_announcer_config_t *ac = NULL;
	char bind[INET6_ADDRSTRLEN];
	size_t i;
	int rc;

	if (!srv->cfg.discovery || srv->port == 0)
		return;
	tcp_bind_address(srv, bind, sizeof(bind));
	for (i = 0; i < srv->cfg.nprotocols; i++)
		pp[i] = srv->cfg.protocols[i];
	if ((rc = witch_announcer_config_new(&ac)) != 0)
		goto fail;
	witch_announcer_config_set_name(ac, srv->cfg.name);
	witch_announcer_config_set_server_id(ac, srv->server_id);
	witch_announcer_config_set_port(ac, srv->port);
	witch_announcer_config_set_protocols(ac, pp, srv->cfg.nprotocols);
	witch_announcer_config_set_project_id(ac, srv->cfg.project_id);
	witch_announcer_config_set_source_hash(ac, srv->source_hash);
	witch_announcer_config_set_bind(ac, bind);
	witch_announcer_config_set_discovery_port(ac, srv->cfg.disc_port);
	witch_announcer_config_set_interval(ac, srv->cfg.disc_interval_ms);
	if (srv->cfg.advertise[0] != '\0')
		witch_announcer_config_set_advertise(ac, srv->cfg.advertise);
	if (srv->cfg.disc_target[0] != '\0')
		witch_announcer_config_set_target(ac, srv->cfg.disc_target);
	if (witch__key_on(&srv->cfg.key))
		witch_announcer_config_set_key(ac, srv->cfg.key.b,
		    srv->cfg.key.len);
	witch_announcer_config_set_logger(ac, srv->cfg.log_fn,
	    srv->cfg.log_ud);
	if ((rc = witch_announcer_new(&srv->announcer, ac)) != 0 ||
	    (rc = witch_announcer_start(srv->announcer)) != 0)
		goto fail;
	witch_announcer_config_free(ac);
	return;
fail:
	witch__log(srv, WITCH_LOG_WARNING, "discovery disabled: %s",
	    witch_strerror(rc));
	witch_announcer_free(srv->announcer);
	srv->announcer = NULL;
	witch_announcer_config_free(ac);
}

/* Start peering (peering on).  Failures are only logged. */
static void
start_peers(struct witch_server *srv)
{
	struct witch__peer_self self;

	if (!srv->cfg.peer.on)
		return;
	memset(&self, 0, sizeof(self));
	strlcpy(self.name, srv->cfg.name, sizeof(self.name));
	strlcpy(self.project_id, srv->cfg.project_id,
	    sizeof(self.project_id));
	strlcpy(self.server_id, srv->server_id, sizeof(self.server_id));
	strlcpy(self.source_hash, srv->source_hash, sizeof(self.source_hash));
	tcp_bind_address(srv, self.connect_addr, sizeof(self.connect_addr));
	self.port = srv->port;
	self.discovery = srv->cfg.discovery;
	self.disc_port = srv->cfg.disc_port;
	self.log_fn = srv->cfg.log_fn;
	self.log_ud = srv->cfg.log_ud;
	self.key = srv->cfg.key;
	if (!witch__key_on(&self.key) && !srv->cfg.unprotected)
		witch__log(srv, WITCH_LOG_NOTICE, "peers: no key and protected "
		    "mode: only peers on this host can link; give every "
		    "server of the project the same key (key-file), or run "
		    "unprotected");
	if (srv->port == 0)
		witch__log(srv, WITCH_LOG_WARNING, "peers: no TCP port: "
		    "peering off");
	else
		(void)witch__peers_start(srv->peers, &self);
	witch__key_clear(&self.key);
}

static int start_locked(struct witch_server *, witch_error_t *);

int
witch_server_start(witch_server_t *srv, witch_error_t *err)
{
	int rc;

	if (srv == NULL)
		return set_err(err, WITCH_EINVAL, "no server");
	pthread_mutex_lock(&srv->stop_mtx);
	rc = start_locked(srv, err);
	pthread_mutex_unlock(&srv->stop_mtx);
	return rc;
}

/* Log "listening on ADDR port N" (or "on unix socket PATH") for fd. */
static void
log_listener(struct witch_server *srv, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";
	const struct sockaddr_in *s4 = (const void *)&ss;
	const struct sockaddr_in6 *s6 = (const void *)&ss;
	const struct sockaddr_un *su = (const void *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return;
	if (ss.ss_family == AF_INET) {
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		witch__log(srv, WITCH_LOG_NOTICE, "listening on %s port %u",
		    host, ntohs(s4->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		witch__log(srv, WITCH_LOG_NOTICE, "listening on %s port %u",
		    host, ntohs(s6->sin6_port));
	} else if (ss.ss_family == AF_UNIX) {
		if (len <= offsetof(struct sockaddr_un, sun_path) ||
		    su->sun_path[0] == '\0')
			witch__log(srv, WITCH_LOG_NOTICE, "listening on an "
			    "unnamed unix socket");
		else
			witch__log(srv, WITCH_LOG_NOTICE, "listening on unix "
			    "socket %.*s", (int)(len - offsetof(struct
			    sockaddr_un, sun_path)), su->sun_path);
	}
}

/* witch_server_start() with stop_mtx held (start and stop serialised). */
static int
start_locked(struct witch_server *srv, witch_error_t *err)
{
	struct timespec ts;
	sigset_t all, old;
	char why[WITCH_ERROR_TEXT_MAX];
	size_t i;
	int rc;

	if (atomic_load(&srv->r.phase) != WITCH__PHASE_NEW)
		return set_err(err, WITCH_ESTATE, "server already started");
	if (srv->cfg.has_source_hash)
		strlcpy(srv->source_hash, srv->cfg.source_hash,
		    sizeof(srv->source_hash));
	else
		witch__source_hash(srv, srv->source_hash);
	strlcpy(srv->r.opt.source_hash, srv->source_hash,
	    sizeof(srv->r.opt.source_hash));
	srv->nworkers = srv->cfg.workers ? srv->cfg.workers :
	    default_workers();
	if ((rc = open_acceptors(srv, err)) != 0)
		goto fail;
	if ((rc = witch__reactor_prepare(&srv->r, why, sizeof(why))) != 0) {
		rc = set_err(err, rc, "%s", why);
		goto fail;
	}
	srv->r.start_ns = witch__now_ns();
	clock_gettime(CLOCK_REALTIME, &ts);
	srv->start_wall = ts.tv_sec + ts.tv_nsec / 1e9;
	/* jansson's hash seed must be fixed before any thread parses. */
	json_object_seed(0);
	if ((rc = witch__pool_new(&srv->r.pool, srv->nworkers,
	    srv->cfg.queue_depth)) != 0) {
		rc = set_err(err, rc, "cannot start %u workers", srv->nworkers);
		goto fail;
	}
	witch__pool_spin_hint(srv->r.pool, &srv->r.asleep);
	atomic_store(&srv->r.phase, WITCH__PHASE_RUNNING);
	/* The reactor takes no process signals, whatever the caller's mask. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&srv->reactor_thr, NULL, witch__reactor_main,
	    &srv->r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		atomic_store(&srv->r.phase, WITCH__PHASE_NEW);
		rc = set_err(err, WITCH_ESYSTEM, "reactor thread: %s",
		    strerror(rc));
		goto fail;
	}
	srv->reactor_started = true;
	start_announcer(srv);
	start_peers(srv);
	for (i = 0; i < srv->r.nacc; i++)
		log_listener(srv, srv->r.acc[i].fd);
	witch__log(srv, WITCH_LOG_NOTICE, "serving with %u worker%s, poller "
	    "%s, source hash %s", srv->nworkers, srv->nworkers == 1 ? "" :
	    "s", witch__poller_backend(), srv->source_hash);
	return 0;
fail:
	teardown(srv);
	return rc;
}

unsigned
witch_server_port(const witch_server_t *srv)
{
	return srv != NULL ? srv->port : 0;
}

const char *
witch_server_id(const witch_server_t *srv)
{
	return srv != NULL ? srv->server_id : NULL;
}

const char *
witch_server_source_hash(const witch_server_t *srv)
{
	return srv != NULL ? srv->source_hash : NULL;
}

int
witch_server_send_event(witch_server_t *srv, uint64_t client_id,
    const char *event, json_t *data)
{
	size_t len;

	if (srv == NULL || event == NULL || client_id == 0)
		return WITCH_EINVAL;
	len = strlen(event);
	if (len == 0 || len > WITCH__NAME_MAX)
		return WITCH_EINVAL;
	return witch__mail_post(&srv->r, client_id, event, data);
}

int
witch_server_stop(witch_server_t *srv, int drain_ms)
{
	uint64_t deadline;
	size_t left;

	if (srv == NULL)
		return WITCH_EINVAL;
	if (witch__tls_handler != NULL || witch__peers_on_own_thread())
		return WITCH_ESTATE;	/* from a handler: would deadlock */
	pthread_mutex_lock(&srv->stop_mtx);
	if (atomic_load(&srv->r.phase) != WITCH__PHASE_RUNNING) {
		pthread_mutex_unlock(&srv->stop_mtx);
		return 0;
	}
	if (drain_ms < 0)
		drain_ms = (int)srv->cfg.drain_ms;
	deadline = witch__now_ns() + (uint64_t)drain_ms * 1000000u;
	/* 0. Tell the LAN we are leaving, before anything else. */
	if (srv->announcer != NULL)
		witch_announcer_stop(srv->announcer);
	/* 0b. Peer links go (their threads may still post events). */
	witch__peers_stop(srv->peers);
	/* 1. Stop accepting; new requests get shutting_down. */
	atomic_store(&srv->r.phase, WITCH__PHASE_DRAINING);
	witch__wakeup_signal(&srv->r.wakeup);
	/* 2. Let what is queued or running finish, up to the deadline. */
	left = witch__pool_drain(srv->r.pool, deadline);
	if (left > 0)
		witch__log(srv, WITCH_LOG_WARNING,
		    "stop: %zu requests still queued or running after %d ms",
		    left, drain_ms);
	/* 3. Answer the rest shutting_down, cancel and join handlers. */
	witch__pool_stop(srv->r.pool);
	/* 4. The reactor says goodbye, flushes, closes, and exits. */
	atomic_store(&srv->r.phase, WITCH__PHASE_CLOSING);
	witch__wakeup_signal(&srv->r.wakeup);
	pthread_join(srv->reactor_thr, NULL);
	srv->reactor_started = false;
	atomic_store(&srv->r.phase, WITCH__PHASE_STOPPED);
	teardown(srv);
	witch__log(srv, WITCH_LOG_NOTICE, "stopped");
	pthread_mutex_unlock(&srv->stop_mtx);
	return 0;
}

void
witch_server_free(witch_server_t *srv)
{
	if (srv == NULL)
		return;
	if (witch__tls_handler != NULL || witch__peers_on_own_thread())
		return;		/* misuse from a handler: leak, don't crash */
	witch_server_stop(srv, -1);
	teardown(srv);
	while (srv->nadopted > 0)
		close(srv->adopted[--srv->nadopted]);
	witch__peers_free(srv->peers);
	witch__free(srv->r.eps);
	pthread_mutex_destroy(&srv->r.mail_mtx);
	pthread_mutex_destroy(&srv->stop_mtx);
	witch__key_clear(&srv->cfg.key);
	witch__key_clear(&srv->r.opt.key);
	witch__free(srv);
}



/* ---- peering (<witch/peer.h>): the server's peer state in peer/ ---- */

int
witch_server_broadcast_to_peers(witch_server_t *srv, json_t *message)
{
	if (srv == NULL || message == NULL)
		return WITCH_EINVAL;
	return witch__peers_broadcast(srv->peers, message, NULL);
}

int
witch_server_send_to_peer(witch_server_t *srv, const char *peer,
    json_t *message)
{
	if (srv == NULL)
		return WITCH_EINVAL;
	return witch__peers_send(srv->peers, peer, message);
}

int
witch_server_peers(witch_server_t *srv, json_t **array)
{
	if (srv == NULL || array == NULL)
		return WITCH_EINVAL;
	return witch__peers_snapshot(srv->peers, array);
}

int
witch_server_query_peers(witch_server_t *srv, const char *endpoint,
    json_t *data, unsigned timeout_ms, json_t **result)
{
	if (srv == NULL)
		return WITCH_EINVAL;
	return witch__peers_query(srv->peers, endpoint, data, timeout_ms,
	    result);
}
