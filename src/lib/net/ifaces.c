/*
 * net/ifaces.c: the interfaces discovery announces on.
 *
 * witch__ifaces_scan() lists them with getifaddrs(3) (called again at
 * every announcement, so interfaces that appear, go down or change
 * address are noticed within one interval, or at once where route
 * netlink tells of changes: witch__ifaces_watch_*); witch__ifaces_select()
 * is the pure rule of where a server bound to some address can be
 * reached.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <ifaddrs.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Route netlink (a feature test, not an OS name): change notification. */
#if defined(__has_include)
#if __has_include(<linux/rtnetlink.h>)
#define HAVE_RTNETLINK 1
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#endif
#endif

#include "core/alloc.h"
#include <witch/error.h>

#include "net/ifaces.h"

/* Scan all interface addresses with getifaddrs(3). */
int
witch__ifaces_scan(struct witch__iface **out, size_t *n)
{
	struct ifaddrs *ifa = NULL, *p;
	struct witch__iface *v = NULL;
	size_t cnt = 0, k = 0;
	socklen_t len;

	*out = NULL;
	*n = 0;
	if (getifaddrs(&ifa) == -1)
		return WITCH_ESYSTEM;
	for (p = ifa; p != NULL; p = p->ifa_next)
		if (p->ifa_addr != NULL && (p->ifa_addr->sa_family == AF_INET ||
		    p->ifa_addr->sa_family == AF_INET6))
			cnt++;
	if (cnt > 0 && (v = witch__calloc(cnt, sizeof(*v))) == NULL) {
		freeifaddrs(ifa);
		return WITCH_ENOMEM;
	}
	for (p = ifa; p != NULL && k < cnt; p = p->ifa_next) {
		if (p->ifa_addr == NULL || (p->ifa_addr->sa_family != AF_INET &&
		    p->ifa_addr->sa_family != AF_INET6))
			continue;
		strlcpy(v[k].name, p->ifa_name, sizeof(v[k].name));
		v[k].index = if_nametoindex(p->ifa_name);
		v[k].flags = p->ifa_flags;
		v[k].family = p->ifa_addr->sa_family;
		len = v[k].family == AF_INET ? sizeof(struct sockaddr_in) :
		    sizeof(struct sockaddr_in6);
		memcpy(&v[k].addr, p->ifa_addr, len);
		if (v[k].family == AF_INET && (p->ifa_flags & IFF_BROADCAST) &&
		    p->ifa_broadaddr != NULL &&
		    p->ifa_broadaddr->sa_family == AF_INET)
			memcpy(&v[k].bcast, p->ifa_broadaddr, len);
		k++;
	}
	freeifaddrs(ifa);
	*out = v;
	*n = k;
	return 0;
}

static int
is_linklocal6(const struct sockaddr_storage *ss)
{
	return IN6_IS_ADDR_LINKLOCAL(
	    &((const struct sockaddr_in6 *)ss)->sin6_addr);
}

/* The interface can carry announcements of its family at all. */
static int
usable(const struct witch__iface *i)
{
	if (!(i->flags & IFF_UP) || (i->flags & IFF_LOOPBACK) ||
	    (i->flags & IFF_POINTOPOINT))
		return 0;
	if (i->family == AF_INET)
		return (i->flags & IFF_BROADCAST) &&
		    i->bcast.ss_family == AF_INET &&
		    ((struct sockaddr_in *)&i->bcast)->sin_addr.s_addr != 0;
	return (i->flags & IFF_MULTICAST) != 0;
}

static int
same_addr(const struct witch__iface *i, int family, const void *a)
{
	if (i->family != family)
		return 0;
	if (family == AF_INET)
		return memcmp(&((const struct sockaddr_in *)&i->addr)->sin_addr,
		    a, sizeof(struct in_addr)) == 0;
	return memcmp(&((const struct sockaddr_in6 *)&i->addr)->sin6_addr, a,
	    sizeof(struct in6_addr)) == 0;
}

/* An IPv6 interface already kept (one announcement per interface). */
static int
have_index(const struct witch__iface *v, size_t k, unsigned index)
{
	size_t i;

	for (i = 0; i < k; i++)
		if (v[i].family == AF_INET6 && v[i].index == index)
			return 1;
	return 0;
}

/* Choose the interfaces a server bound to bind is reachable through. */
size_t
witch__ifaces_select(struct witch__iface *v, size_t n, const char *bind,
    int any_iface, int *loopback_only)
{
	struct in6_addr a6;
	struct in_addr a4;
	int fam = 0, all4 = 0, all6 = 0, pass;
	size_t i, k = 0;

	*loopback_only = 0;
	if (bind == NULL || *bind == '\0')
		bind = "0.0.0.0";
	if (inet_pton(AF_INET, bind, &a4) == 1) {
		fam = AF_INET;
		all4 = a4.s_addr == htonl(INADDR_ANY);
		*loopback_only = (ntohl(a4.s_addr) >> 24) == 127;
	} else if (inet_pton(AF_INET6, bind, &a6) == 1) {
		fam = AF_INET6;
		all6 = IN6_IS_ADDR_UNSPECIFIED(&a6);
		*loopback_only = IN6_IS_ADDR_LOOPBACK(&a6);
	} else
		return 0;
	if (*loopback_only) {
		if (!any_iface)
			return 0;
		all4 = all6 = 1;
	}
	/* Two passes for IPv6: link-local sources first, then the rest. */
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < n; i++) {
			if (!usable(&v[i]))
				continue;
			if (v[i].family == AF_INET) {
				if (pass == 1 || !(all4 || (fam == AF_INET &&
				    same_addr(&v[i], AF_INET, &a4))))
					continue;
			} else if (all6) {
				if ((!is_linklocal6(&v[i].addr)) != pass ||
				    have_index(v, k, v[i].index))
					continue;
			} else if (pass == 1 || fam != AF_INET6 ||
			    !same_addr(&v[i], AF_INET6, &a6))
				continue;
			if (k != i) {
				struct witch__iface t = v[k];

				v[k] = v[i];
				v[i] = t;
			}
			k++;
		}
	}
	return k;
}

/* Numeric text of an address; link-local IPv6 gets "%ifname". */
void
witch__addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
	char a[INET6_ADDRSTRLEN], ifn[IF_NAMESIZE];

	buf[0] = '\0';
	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
		    buf, len);
		return;
	}
	if (sa->sa_family != AF_INET6 ||
	    inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a)) == NULL)
		return;
	if (s6->sin6_scope_id != 0 && IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr)) {
		if (if_indextoname(s6->sin6_scope_id, ifn) != NULL)
			snprintf(buf, len, "%s%%%s", a, ifn);
		else
			snprintf(buf, len, "%s%%%u", a, s6->sin6_scope_id);
	} else
		strlcpy(buf, a, len);
}

/* "name addr" of an interface, for logs. */
void
witch__iface_str(const struct witch__iface *i, char *buf, size_t len)
{
	char a[WITCH__ADDR_STR_MAX];

	witch__addr_str((const struct sockaddr *)&i->addr, a, sizeof(a));
	snprintf(buf, len, "%s %s", i->name, a);
}

#ifdef HAVE_RTNETLINK
/* A route netlink socket told of link and address changes, or -1. */
int
witch__ifaces_watch_open(void)
{
	struct sockaddr_nl snl;
	int fd;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    NETLINK_ROUTE);
	if (fd == -1)
		return -1;
	memset(&snl, 0, sizeof(snl));
	snl.nl_family = AF_NETLINK;
	snl.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
	if (bind(fd, (struct sockaddr *)&snl, sizeof(snl)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Read what is pending (bounded); 1 if anything came. */
int
witch__ifaces_watch_drain(int fd)
{
	char buf[8192];
	int i, any = 0;
	ssize_t n;

	for (i = 0; i < 64; i++) {
		n = recv(fd, buf, sizeof(buf), 0);
		if (n > 0 || (n == -1 && errno == ENOBUFS))
			any = 1;	/* ENOBUFS: overrun, changes lost */
		else if (n == -1 && errno == EINTR)
			continue;
		else
			break;
	}
	return any;
}
#else
/* No change notification here: the rescan each interval does it all. */
int
witch__ifaces_watch_open(void)
{
	return -1;
}

/* Never called without a descriptor. */
int
witch__ifaces_watch_drain(int fd)
{
	(void)fd;
	return 0;
}
#endif
