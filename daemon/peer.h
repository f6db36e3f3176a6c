/*
 * peer.h: one partner session (peer.c): our SUB on its live feed and our
 * DEALER to its catch-up server, or (for a peer that only connects in)
 * what we hear from it on our own sockets.
 */
#ifndef LABSYNC_PEER_H
#define LABSYNC_PEER_H

#include <stddef.h>
#include <stdint.h>

#include "reason.h"

struct catchup;
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
/* Its catch-up client (a catchup_find_fn for the catch-up server). */
struct catchup	*peer_catchup_find(struct labsyncd *, const char *name);
const char	*peer_name(const struct peer *);
const struct config_peer *peer_conf(const struct peer *);
enum peer_state	 peer_state(const struct peer *);
const char	*peer_state_name(enum peer_state);
int		 peer_has_endpoints(const struct peer *);
uint64_t	 peer_lag(const struct peer *);
uint64_t	 peer_last_contact_ms(const struct peer *);
/* Its last error ("" if none) and when (0): cleared when it comes up. */
const char	*peer_last_error(const struct peer *);
/* Its schema fingerprint (32 bytes) from its Hello; NULL: not heard. */
const uint8_t	*peer_fingerprint(const struct peer *);
uint64_t	 peer_last_error_ms(const struct peer *);

/* What the peer told us of our own changes (its heartbeats, hellos). */
struct peer_delivery {
	int		 known;		/* it told us its vector */
	uint64_t	 confirmed;	/* our sequence it holds */
	uint32_t	 waiting;	/* our changes it keeps aside: waiting */
	uint32_t	 refused;	/* ... refused */
	uint64_t	 refused_total;	/* refusals seen appear, counted */
	enum reason	 reason;	/* of the newest kept */
	char		 what[130];	/* "table" or "table.column" */
	uint64_t	 since_ms;	/* the oldest kept */
};
const struct peer_delivery *peer_delivery(const struct peer *);
/* Our changes it has not confirmed (0 if it never told us), and when
   the oldest of them was made (ms, 0: none). */
uint64_t	 peer_unconfirmed(const struct peer *, uint64_t *oldest_ms);
/* A problem /healthz reports: it refuses our changes, or has not
   confirmed them for longer than heartbeat_timeout while up: NULL if
   none, else its reason's name ("unconfirmed" for the latter), with
   detail in words. */
const char	*peer_delivery_problem(const struct peer *, uint64_t now_ms,
		    char *detail, size_t len);

/* Let the node take local writes once every peer we connect to has
   answered our first catch-up request or is down (sync_check_phase). */
void		 peer_check_phase(struct labsyncd *);
/* Timers: liveness, request timeouts, anti-entropy. */
void		 peer_cron(struct peer *, uint64_t now_ms, int anti_entropy);

#endif
