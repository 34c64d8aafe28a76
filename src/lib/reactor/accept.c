/*
 * reactor/accept.c: the acceptors (listening sockets), accepting new
 * connections, and pausing when the process runs out of descriptors
 * (EMFILE): the reserve descriptor is given back, accepting resumes when
 * a connection is dropped or at the next tick.  Reactor thread.
 */
#include <sys/socket.h>

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
