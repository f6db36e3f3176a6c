/*
 * catchup.h: both halves of catch-up (catchup.c). The server answers
 * Hello and Ack on our ROUTER with the changes the asker lacks; the
 * client, one per peer session, asks the peer's ROUTER through our
 * DEALER and applies the answers.
 *
 * catchup.c calls no session code: peer.c hands each client a struct
 * catchup_session (its refusal slot and two hooks), and hands the server
 * a function that finds a peer's client by name.
 */
#ifndef LABSYNC_CATCHUP_H
#define LABSYNC_CATCHUP_H

#include <stdint.h>

#include <zmq.h>

#include "proto/labsync.pb-c.h"

struct bus;
struct catchup;
struct catchup_server;
struct labsyncd;
struct sync_source;

/* The peer session a client belongs to (peer.c). */
struct catchup_session {
	struct sync_source	*src;		/* its name and refusals */
	int			 observer;	/* it sends no changes */
	/* we heard from it, with its vector if the message had one;
	   confirms: the vector is what it has committed (compaction may
	   drop what it holds), not one sent ahead of a batch in flight */
	void	(*heard)(void *arg, const Labsync__Vector *, int confirms);
	/* it answered our first request fully, or gave us back changes of
	   our own: whether we take local writes may change */
	void	(*check_phase)(void *arg);
	void	*arg;
};

/* A client; with ask 0, for a peer that only connects to us (it never
   asks, and counts as settled). */
struct catchup	*catchup_new(struct labsyncd *,
		    const struct catchup_session *, int ask);
/* Commits an answer held open (see catchup.c), then frees; before the
   DEALER is closed. */
void		 catchup_free(struct catchup *);
/* The DEALER connected to the peer's ROUTER (a new one after reopen). */
void		 catchup_set_dealer(struct catchup *, struct bus *);
/* Its messages: bus_msg_cb of the DEALER, arg the client. */
void		 catchup_dealer_cb(struct bus *, zmq_msg_t *, int, void *);
/* Ask for what we lack, unless a request is already in flight. */
void		 catchup_request(struct catchup *);
/* 1 while a snapshot from the peer is coming in: rows so far, of. */
int		 catchup_snapshot_progress(const struct catchup *,
		    uint64_t *sent, uint64_t *total);
/* Has it answered our first request fully? */
int		 catchup_settled(const struct catchup *);
/* Nothing asked for heartbeat_interval: ask, so that a peer we are
   known to only as connecting in hears from us (see catchup.c). */
int		 catchup_quiet(const struct catchup *, uint64_t now_ms);
/* A request unanswered for heartbeat_timeout is forgotten: 1 if so
   (the caller gives the DEALER a fresh socket). */
int		 catchup_lost(struct catchup *, uint64_t now_ms);

/* The client of the peer called name, or NULL: no configured peer. */
typedef struct catchup *(*catchup_find_fn)(struct labsyncd *,
		    const char *name);

/* The server on our bound ROUTER zsock (owned from now on), or NULL. */
struct catchup_server *catchup_server_new(struct labsyncd *, void *zsock,
		    catchup_find_fn);
void		 catchup_server_free(struct catchup_server *);

#endif
