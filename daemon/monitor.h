/*
 * monitor.h: connection events of a bound socket, and of a peer's
 * catch-up socket (monitor.c). monitor.c knows nothing of peers: it
 * tells the session what its socket saw through a callback.
 */
#ifndef LABSYNC_MONITOR_H
#define LABSYNC_MONITOR_H

#include <stdint.h>

struct bus;
struct labsyncd;

/* What the monitor of a peer's catch-up socket saw. */
enum monitor_hs {
	MONITOR_HS_CONNECTED,	/* TCP connected, handshake under way */
	MONITOR_HS_OK,		/* handshake done */
	MONITOR_HS_CLOSED,	/* closed: during the handshake if it was */
	MONITOR_HS_FAILED,	/* the handshake failed: why */
};
/* cause tells one trouble from another (ZMQ event and value; never 0
   for CLOSED and FAILED), so that each is logged once. */
typedef void	(*monitor_hs_cb)(void *arg, enum monitor_hs, uint64_t cause,
		    const char *why);

/* Whom the monitor of a peer's socket tells what it saw; the caller keeps
   it for as long as the monitor runs. */
struct monitor_hook {
	monitor_hs_cb	 cb;
	void		*arg;
};

/* Watch a bound socket; name is used in the inproc endpoint. */
int		 monitor_open(struct labsyncd *, void *zsock, const char *name);
/* Watch the catch-up socket of the peer called name: its handshakes go
   to the hook. The bus returned is closed by monitor_close, before the
   socket. */
struct bus	*monitor_peer(struct labsyncd *, void *zsock, const char *name,
		    struct monitor_hook *);
void		 monitor_close(struct bus *, void *zsock);

#endif
