/*
 * peer.h: one partner session: our SUB on its live feed and our DEALER
 * to its catch-up server, or (for a peer that only connects in) what we
 * hear from it on our own sockets.
 */
#ifndef LABSYNC_PEER_H
#define LABSYNC_PEER_H

#include <stdint.h>

#include "proto/labsync.pb-c.h"

struct config_peer;
struct labsyncd;
struct peer;

enum peer_state {
	PEER_CONNECTING,	/* started; nothing heard from it yet */
	PEER_UP,		/* heard from within heartbeat_timeout */
	PEER_DOWN,		/* silent too long; ZeroMQ keeps reconnecting */
};

struct peer	*peer_new(struct labsyncd *, const struct config_peer *);
void		 peer_free(struct peer *);
struct peer	*peer_find(struct labsyncd *, const char *name);
const char	*peer_name(const struct peer *);
const struct config_peer *peer_conf(const struct peer *);
enum peer_state	 peer_state(const struct peer *);
const char	*peer_state_name(enum peer_state);
int		 peer_has_endpoints(const struct peer *);
/* Has it answered our first catch-up request (or is it known down)? */
int		 peer_settled(const struct peer *);
uint64_t	 peer_lag(const struct peer *);
uint64_t	 peer_last_contact_ms(const struct peer *);
const char	*peer_last_error(const struct peer *);
void		 peer_set_error(struct peer *, const char *);
struct ratelimit *peer_ratelimit(struct peer *);

/* What the monitor of our catch-up socket saw (monitor.c). */
enum peer_hs {
	PEER_HS_CONNECTED,	/* TCP connected, handshake under way */
	PEER_HS_OK,		/* handshake done */
	PEER_HS_CLOSED,		/* closed: during the handshake if it was */
	PEER_HS_FAILED,		/* the handshake failed: why */
};
/* cause tells one trouble from another (ZMQ event and value; never 0):
   each is logged once, until a handshake succeeds. */
void		 peer_handshake(struct peer *, enum peer_hs, uint64_t cause,
		    const char *why);

/* Something arrived from the peer (any socket): it is alive. */
void		 peer_heard(struct peer *, const Labsync__Vector *);
/* Ask for what we lack, unless a request is already in flight. */
void		 peer_request(struct peer *);
/* Timers: liveness, request timeouts, anti-entropy. */
void		 peer_cron(struct peer *, uint64_t now_ms, int anti_entropy);

#endif
