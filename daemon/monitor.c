/*
 * monitor.c: connection events of the bound sockets (zmq_socket_monitor).
 * libzmq drops a connection whose message exceeds ZMQ_MAXMSGSIZE, and
 * ends a handshake that fails, without telling the application; the
 * monitor is how such drops are logged and counted. The peer reconnects
 * by itself.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <zmq.h>

#include "bus.h"
#include "labsyncd.h"
#include "log.h"

#define MONITOR_EVENTS	(ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | \
	ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | \
	ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)

struct monitor_ctx {
	struct labsyncd	*env;
	const char	*socket;
};

static void
monitor_cb(struct bus *b, zmq_msg_t *frames, int n, void *arg)
{
	struct labsyncd	*env = arg;
	uint16_t	 event;
	uint32_t	 value;
	char		 addr[128] = "?";

	(void)b;
	if (n != 2 || zmq_msg_size(&frames[0]) != 6)
		return;
	memcpy(&event, zmq_msg_data(&frames[0]), 2);
	memcpy(&value, (const uint8_t *)zmq_msg_data(&frames[0]) + 2, 4);
	if (zmq_msg_size(&frames[1]) < sizeof(addr))
		snprintf(addr, sizeof(addr), "%.*s",
		    (int)zmq_msg_size(&frames[1]),
		    (const char *)zmq_msg_data(&frames[1]));
	switch (event) {
	case ZMQ_EVENT_ACCEPTED:
		log_debug("connection accepted on %s", addr);
		break;
	case ZMQ_EVENT_DISCONNECTED:
		env->stats.disconnects++;
		log_info("connection on %s closed: the peer went away, or "
		    "sent a message above max_message_size", addr);
		break;
	default:
		env->stats.disconnects++;
		log_warnx("handshake failed on %s (event %#x, %#x): not a "
		    "labsync peer, or a wrong key", addr, event, value);
		break;
	}
}

/* Watch a bound socket; name is used in the inproc endpoint. */
int
monitor_open(struct labsyncd *env, void *zsock, const char *name)
{
	char	 endpoint[64];
	void	*pair;
	struct bus *b;

	snprintf(endpoint, sizeof(endpoint), "inproc://labsync-monitor-%s",
	    name);
	if (zmq_socket_monitor(zsock, endpoint, MONITOR_EVENTS) == -1)
		return -1;
	if ((pair = zmq_socket(env->zctx, ZMQ_PAIR)) == NULL)
		return -1;
	if (zmq_connect(pair, endpoint) == -1) {
		zmq_close(pair);
		return -1;
	}
	snprintf(endpoint, sizeof(endpoint), "monitor-%s", name);
	if ((b = bus_new(env->base, pair, endpoint, monitor_cb, env)) == NULL)
		return -1;
	env->monitors[env->nmonitors++] = b;
	return 0;
}
