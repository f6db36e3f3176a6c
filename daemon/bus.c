/*
 * bus.c: ZeroMQ sockets watched by libevent through ZMQ_FD.
 *
 * ZMQ_FD is edge-triggered and also signals "can send": it only says that
 * ZMQ_EVENTS may have changed. So a read callback drains until ZMQ_EVENTS
 * has no POLLIN, and every send re-checks ZMQ_EVENTS, since a send can
 * consume the edge that announced new input. To stay fair between
 * sockets, one callback handles a bounded number of messages and then
 * re-arms itself through event_active.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "bus.h"
#include "log.h"

#define BUS_BURST	256	/* messages per callback */

struct bus {
	void		*zsock;
	char		*name;
	struct event	*ev;
	bus_msg_cb	 cb;
	bus_flush_cb	 flush;
	void		*arg;
	int		 in_cb;
};

static void	bus_read_cb(evutil_socket_t, short, void *);

struct bus *
bus_new(struct event_base *base, void *zsock, const char *name,
    bus_msg_cb cb, void *arg)
{
	struct bus	*b;
	int		 fd;
	size_t		 fdlen = sizeof(fd);

	if (zmq_getsockopt(zsock, ZMQ_FD, &fd, &fdlen) == -1) {
		log_warnx("%s: ZMQ_FD: %s", name, zmq_strerror(errno));
		zmq_close(zsock);
		return NULL;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL) {
		log_warn("%s", name);
		zmq_close(zsock);
		return NULL;
	}
	b->zsock = zsock;	/* bus_free closes it from here on */
	if ((b->name = strdup(name)) == NULL) {
		log_warn("%s", name);
		bus_free(b);
		return NULL;
	}
	b->cb = cb;
	b->arg = arg;
	b->ev = event_new(base, fd, EV_READ | EV_PERSIST, bus_read_cb, b);
	if (b->ev == NULL || event_add(b->ev, NULL) == -1) {
		bus_free(b);
		return NULL;
	}
	/* messages may already be waiting: the edge has passed */
	event_active(b->ev, EV_READ, 0);
	return b;
}

void
bus_free(struct bus *b)
{
	int	 linger = 0;

	if (b == NULL)
		return;
	if (b->ev != NULL)
		event_free(b->ev);
	if (b->zsock != NULL) {
		zmq_setsockopt(b->zsock, ZMQ_LINGER, &linger, sizeof(linger));
		zmq_close(b->zsock);
	}
	free(b->name);
	free(b);
}

void
bus_set_flush(struct bus *b, bus_flush_cb flush)
{
	b->flush = flush;
}

void *
bus_socket(struct bus *b)
{
	return b->zsock;
}

static int
bus_readable(struct bus *b)
{
	int	 events = 0;
	size_t	 len = sizeof(events);

	if (zmq_getsockopt(b->zsock, ZMQ_EVENTS, &events, &len) == -1)
		return 0;
	return (events & ZMQ_POLLIN) != 0;
}

/* After a send or receive: if input waits, make sure we come back. */
static void
bus_recheck(struct bus *b)
{
	if (!b->in_cb && bus_readable(b))
		event_active(b->ev, EV_READ, 0);
}

static void
bus_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bus	*b = arg;
	zmq_msg_t	 frames[BUS_MAX_FRAMES], extra;
	int		 n, more, count = 0;

	(void)fd;
	(void)what;
	b->in_cb = 1;
	while (count < BUS_BURST && bus_readable(b)) {
		n = 0;
		do {
			zmq_msg_t *m = n < BUS_MAX_FRAMES ? &frames[n] : &extra;

			zmq_msg_init(m);
			if (zmq_msg_recv(m, b->zsock, ZMQ_DONTWAIT) == -1) {
				zmq_msg_close(m);
				for (int i = 0; i < n && i < BUS_MAX_FRAMES; i++)
					zmq_msg_close(&frames[i]);
				goto out;
			}
			more = zmq_msg_more(m);
			if (n < BUS_MAX_FRAMES)
				n++;
			else {
				zmq_msg_close(m);
				n = BUS_MAX_FRAMES + 1;	/* too many frames */
			}
		} while (more);
		count++;
		if (n > BUS_MAX_FRAMES) {
			log_warnx("%s: message with too many frames dropped",
			    b->name);
			n = BUS_MAX_FRAMES;
		} else if (b->cb != NULL)
			b->cb(b, frames, n, b->arg);
		for (int i = 0; i < n; i++)
			zmq_msg_close(&frames[i]);
	}
out:
	b->in_cb = 0;
	if (count > 0 && b->flush != NULL)
		b->flush(b, b->arg);
	if (bus_readable(b))
		event_active(b->ev, EV_READ, 0);
}

int
bus_send(struct bus *b, const void *const *data, const size_t *len, int n)
{
	int	 ret = 0;

	for (int i = 0; i < n; i++) {
		if (zmq_send(b->zsock, data[i], len[i],
		    ZMQ_DONTWAIT | (i + 1 < n ? ZMQ_SNDMORE : 0)) == -1) {
			ret = -1;
			break;
		}
	}
	bus_recheck(b);
	return ret;
}

int
bus_send1(struct bus *b, const void *data, size_t len)
{
	return bus_send(b, &data, &len, 1);
}
