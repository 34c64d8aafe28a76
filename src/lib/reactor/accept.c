/*
 * reactor/accept.c: the acceptors (listening sockets), accepting new
 * connections, and pausing when the process runs out of descriptors
 * (EMFILE): the reserve descriptor is given back, accepting resumes when
 * a connection is dropped or at the next tick.  Reactor thread.
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "net/sock.h"
#include "reactor/reactor.h"

/* Pause accepting: out of descriptors. */
static void
accept_pause(struct witch__reactor *r, int err)
{
	r->accept_paused = true;
	atomic_fetch_add(&r->ctr.emfile_pauses, 1);
	witch__rlog(r, WITCH_LOG_WARNING, "accept: %s; pausing until a "
	    "descriptor is free", strerror(err));
	/* Give the reserve back so the process has one fd to work with. */
	if (r->reserve_fd >= 0) {
		close(r->reserve_fd);
		r->reserve_fd = -1;
	}
}

int
witch__acceptor_add(struct witch__reactor *r, int fd, bool local,
    const char *path)
{
	struct witch__acceptor *a;

	if (r->nacc == WITCH__ACCEPTORS_MAX)
		return WITCH_ETOO_LARGE;
	a = &r->acc[r->nacc++];
	memset(a, 0, sizeof(*a));
	a->kind = WITCH__EV_ACCEPTOR;
	a->fd = fd;
	a->local = local;
	if (path != NULL)
		strlcpy(a->path, path, sizeof(a->path));
	return 0;
}

void
witch__acceptors_close(struct witch__reactor *r)
{
	struct witch__acceptor *l;

	while (r->nacc > 0) {
		l = &r->acc[--r->nacc];
		if (r->poller != NULL)
			witch__poller_del(r->poller, l->fd);
		close(l->fd);
		if (l->path[0] != '\0')
			unlink(l->path);
	}
}

/* ---- connections per remote address (max_clients_per_address) ------ */

/* The peer's address of TCP socket fd as 16 bytes (IPv4 v4-mapped). */
static bool
peer_ip(int fd, unsigned char ip[16])
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &len) == -1)
		return false;
	if (ss.ss_family == AF_INET) {
		memset(ip, 0, 10);
		ip[10] = ip[11] = 0xff;
		memcpy(ip + 12, &((struct sockaddr_in *)&ss)->sin_addr, 4);
		return true;
	}
	if (ss.ss_family == AF_INET6) {
		memcpy(ip, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
		return true;
	}
	return false;
}

static size_t
addr_bucket(const unsigned char ip[16])
{
	uint32_t h = 2166136261u;	/* FNV-1a */
	size_t i;

	for (i = 0; i < 16; i++)
		h = (h ^ ip[i]) * 16777619u;
	return h % WITCH__ADDR_BUCKETS;
}

/*
 * Count c against its remote address.  False when the address already
 * has max_per_address connections (c is not counted) or on no memory
 * (counted as refused too: the table cannot vouch for it).
 */
static bool
addr_take(struct witch__conn *c)
{
	struct witch__reactor *r = c->r;
	struct witch__addr_slot *s;
	unsigned char ip[16];
	size_t b;

	if (r->opt.max_per_address == 0 || c->trusted || c->local ||
	    !peer_ip(c->fd, ip))
		return true;
	b = addr_bucket(ip);
	for (s = r->addrs[b]; s != NULL; s = s->next)
		if (memcmp(s->ip, ip, 16) == 0)
			break;
	if (s == NULL) {
		if ((s = witch__calloc(1, sizeof(*s))) == NULL)
			return false;
		memcpy(s->ip, ip, 16);
		s->next = r->addrs[b];
		r->addrs[b] = s;
	}
	if (s->n >= r->opt.max_per_address)
		return false;	/* s has n >= 1: it stays */
	s->n++;
	c->addr = s;
	return true;
}

void
witch__addr_release(struct witch__conn *c)
{
	struct witch__reactor *r = c->r;
	struct witch__addr_slot **pp, *s = c->addr;

	if (s == NULL)
		return;
	c->addr = NULL;
	if (--s->n > 0)
		return;
	for (pp = &r->addrs[addr_bucket(s->ip)]; *pp != NULL;
	    pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			witch__free(s);
			return;
		}
}

/* Who is on the other end of a new connection. */
static void
identify(struct witch__conn *c, const struct witch__acceptor *l)
{
	c->uid = c->pid = -1;
	c->local = l->local;
	if (l->local) {
		witch__sock_peer_creds(c->fd, &c->uid, &c->pid);
		snprintf(c->peer, sizeof(c->peer), "unix:uid=%ld,pid=%ld",
		    c->uid, c->pid);
		c->trusted = true;
	} else
		c->trusted = witch__sock_peer_is_loopback(c->fd);
	/* With a key only the unix socket; without, protected mode. */
	c->authed = witch__key_on(&c->r->opt.key) ? l->local :
	    c->trusted || c->r->opt.unprotected;
	/* The unix socket needs no exchange: no pre-auth frame cap either. */
	if (witch__key_on(&c->r->opt.key) && l->local)
		c->authenticated = true;
}

void
witch__accept(struct witch__reactor *r, struct witch__acceptor *l)
{
	struct witch__conn *c;
	char peer[64];
	int fd;

	while (!r->accept_paused && l->fd >= 0) {
		fd = witch__sock_accept(l->fd, peer, sizeof(peer));
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED ||
			    errno == EPROTO)
				continue;
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM)
				accept_pause(r, errno);
			else if (errno != EAGAIN && errno != EWOULDBLOCK)
				witch__rlog(r, WITCH_LOG_ERR, "accept: %s",
				    strerror(errno));
			return;
		}
		if (!l->local)
			witch__sock_tune(fd);
		if ((c = witch__conn_new(r, fd, peer)) == NULL) {
			close(fd);
			atomic_fetch_add(&r->ctr.conns_rejected, 1);
			continue;
		}
		if (witch__poller_add(r->poller, fd, c, 0) != 0) {
			close(fd);
			c->fd = -1;
			witch__conn_unref(c);
			atomic_fetch_add(&r->ctr.conns_rejected, 1);
			continue;
		}
		identify(c, l);
		witch__conn_frame_cap(c);
		c->next = r->conns;
		if (r->conns != NULL)
			r->conns->prev = c;
		r->conns = c;
		r->nconns++;
		if (atomic_load(&r->ctr.clients) >=
		    atomic_load(&r->live.max_clients)) {
			atomic_fetch_add(&r->ctr.conns_rejected, 1);
			witch__rlog(r, WITCH_LOG_INFO, "client %s refused: "
			    "max_clients (%u) reached", c->peer,
			    atomic_load(&r->live.max_clients));
			witch__conn_close(c, WITCH_ESERVER_FULL, NULL, 1000);
			continue;
		}
		if (!addr_take(c)) {
			atomic_fetch_add(&r->ctr.conns_rejected, 1);
			atomic_fetch_add(&r->ctr.address_refusals, 1);
			witch__rlog(r, WITCH_LOG_INFO, "client %s refused: "
			    "max_clients_per_address (%u) reached", c->peer,
			    r->opt.max_per_address);
			c->final_msg = "too many connections from this "
			    "address (max_clients_per_address)";
			witch__conn_close(c, WITCH_ESERVER_FULL, NULL, 1000);
			continue;
		}
		c->counted = true;
		atomic_fetch_add(&r->ctr.clients, 1);
		atomic_fetch_add(&r->ctr.conns_accepted, 1);
	}
}

/* Resume accepting after a descriptor was freed. */
void
witch__accept_resume(struct witch__reactor *r)
{
	size_t i;

	r->accept_retry = false;
	if (!r->accept_paused)
		return;
	r->accept_paused = false;
	for (i = 0; i < r->nacc && !r->accept_paused; i++)
		witch__accept(r, &r->acc[i]);
	if (!r->accept_paused && r->reserve_fd < 0)
		r->reserve_fd = witch__sock_reserve_fd();
}
