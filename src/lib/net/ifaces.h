/*
 * net/ifaces.h: the host's network interfaces, their selection for a
 * bound address, and change notification.  Selection is pure; see
 * doc/internals/discovery.md.
 */
#ifndef WITCH__NET_IFACES_H
#define WITCH__NET_IFACES_H

#include <sys/types.h>
#include <sys/socket.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stddef.h>

/* Room for witch__addr_str(): an address, "%ifname", NUL. */
#define WITCH__ADDR_STR_MAX	(INET6_ADDRSTRLEN + IFNAMSIZ + 2)

struct witch__iface {
	char			 name[IFNAMSIZ];
	unsigned		 index;
	unsigned		 flags;		/* IFF_* */
	int			 family;	/* AF_INET or AF_INET6 */
	struct sockaddr_storage	 addr;
	struct sockaddr_storage	 bcast;		/* AF_INET only */
};

/*
 * List the addresses of all interfaces (getifaddrs).  *out is a new array
 * (witch__free) of *n entries.  0, WITCH_ENOMEM or WITCH_ESYSTEM.
 */
int witch__ifaces_scan(struct witch__iface **out, size_t *n);
/*
 * Choose where to announce, in place: keep the entries of v (n of them)
 * that a server bound to bind (numeric; NULL = "0.0.0.0") can be reached
 * through, and return how many were kept.  IPv4: up, broadcast with a
 * broadcast address, not loopback or point-to-point.  IPv6: up,
 * multicast, not loopback or point-to-point, one per interface (the
 * link-local address, unless bound to a specific address).  any_iface
 * (an advertised address) makes a loopback bind announce everywhere.
 * *loopback_only is set when bind is a loopback address.  Pure.
 */
size_t witch__ifaces_select(struct witch__iface *v, size_t n,
    const char *bind, int any_iface, int *loopback_only);
/* "name addr" of an interface for logs, into buf. */
void witch__iface_str(const struct witch__iface *i, char *buf, size_t len);
/* Numeric text of a socket address (with "%ifname" for link-local v6). */
void witch__addr_str(const struct sockaddr *sa, char *buf, size_t len);

/*
 * Change notification (route netlink where the system has it): a
 * non-blocking descriptor readable when links or addresses change, or -1
 * (then the rescan each interval is all there is).  _drain reads what is
 * pending and returns 1 if anything changed.
 */
int witch__ifaces_watch_open(void);
int witch__ifaces_watch_drain(int fd);

#endif
