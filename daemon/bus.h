/*
 * bus.h: a ZeroMQ socket inside the libevent loop.
 */
#ifndef LABSYNC_BUS_H
#define LABSYNC_BUS_H

#include <stddef.h>

#include <zmq.h>

#define BUS_MAX_FRAMES	8	/* a ZAP request has 7 */

struct event_base;
struct bus;

/* One received message: frames[0 .. nframes-1]. */
typedef void	(*bus_msg_cb)(struct bus *, zmq_msg_t *frames, int nframes,
		    void *arg);

/* Called after a burst of received messages: work batched across them. */
typedef void	(*bus_flush_cb)(struct bus *, void *arg);

/* Takes ownership of the socket: bus_free closes it, or bus_new itself
   when it fails. */
struct bus	*bus_new(struct event_base *, void *zsock, const char *name,
		    bus_msg_cb, void *arg);
void		 bus_free(struct bus *);
void		 bus_set_flush(struct bus *, bus_flush_cb);
void		*bus_socket(struct bus *);
/* Send one message of n frames without blocking; -1 (errno) if not sent. */
int		 bus_send(struct bus *, const void *const *data,
		    const size_t *len, int n);
int		 bus_send1(struct bus *, const void *data, size_t len);

#endif
