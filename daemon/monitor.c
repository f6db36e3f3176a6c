/*
 * monitor.c: connection events of the bound sockets and of each peer's
 * catch-up socket (zmq_socket_monitor). libzmq drops a connection whose
 * message exceeds ZMQ_MAXMSGSIZE, and ends a handshake that fails,
 * without telling the application; the monitor is how such drops are
 * logged and counted. The peer reconnects by itself. On our side of a
 * connection to a peer, a failed handshake is what tells an operator
 * that a key is wrong: the peer's log says so, ours otherwise only
 * shows it down. What a peer's socket saw goes to its session through a
 * callback (monitor_hs_cb): this file calls no peer code.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <zmq.h>

#include "bus.h"
#include "labsyncd.h"
#include "log.h"
#include "monitor.h"

#define MONITOR_EVENTS	(ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | \
	ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | \
	ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)

/* What a failed handshake's event says, in words. */
static void
monitor_why(uint16_t event, uint32_t value, char *buf, size_t len)
{
	switch (event) {
	case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
		snprintf(buf, len, "key refused, status %u", value);
		break;
	case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
		if (value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)
			snprintf(buf, len, "cannot decrypt: one side holds "
			    "a wrong public key for the other");
		else if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
			snprintf(buf, len, "one side uses keys, the other "
			    "does not");
		else
			snprintf(buf, len, "protocol error %#x", value);
		break;
	default:
		snprintf(buf, len, "connection lost: %s", zmq_strerror(
		    (int)value));
		break;
	}
}

static void
monitor_cb(struct bus *b, zmq_msg_t *frames, int n, void *arg)
{
	struct labsyncd	*env = arg;
	uint16_t	 event;
	uint32_t	 value;
	char		 addr[128] = "?", why[96];

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
		monitor_why(event, value, why, sizeof(why));
		log_warnx("handshake failed on %s (%s): not a labsync peer, "
		    "or a wrong key", addr, why);
		break;
	}
}

/* The events of zsock, as messages on a bus of their own; NULL if they
   cannot be watched. */
static struct bus *
monitor_bus(struct labsyncd *env, void *zsock, const char *name, int events,
    bus_msg_cb cb, void *arg)
{
	static unsigned	 serial;
	char		 endpoint[96];
	void		*pair;
	struct bus	*b;

	snprintf(endpoint, sizeof(endpoint), "inproc://labsync-monitor-%u-%s",
	    serial++, name);
	if (zmq_socket_monitor(zsock, endpoint, events) == -1)
		return NULL;
	if ((pair = zmq_socket(env->zctx, ZMQ_PAIR)) == NULL ||
	    zmq_connect(pair, endpoint) == -1) {
		if (pair != NULL)
			zmq_close(pair);
		zmq_socket_monitor(zsock, NULL, 0);
		return NULL;
	}
	snprintf(endpoint, sizeof(endpoint), "monitor-%s", name);
	if ((b = bus_new(env->base, pair, endpoint, cb, arg)) == NULL)
		zmq_socket_monitor(zsock, NULL, 0);
	return b;
}

/* Watch a bound socket; name is used in the inproc endpoint. */
int
monitor_open(struct labsyncd *env, void *zsock, const char *name)
{
	struct bus	*b;

	if (env->nmonitors >= MONITOR_BOUND_MAX) {
		log_warnx("monitor %s: too many bound sockets watched", name);
		return -1;
	}
	if ((b = monitor_bus(env, zsock, name, MONITOR_EVENTS, monitor_cb,
	    env)) == NULL)
		return -1;
	env->monitors[env->nmonitors++] = b;
	return 0;
}

#define PEER_EVENTS	(ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED | \
	ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | \
	ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)

static void
monitor_peer_cb(struct bus *b, zmq_msg_t *frames, int n, void *arg)
{
	struct monitor_hook *mp = arg;
	uint16_t	 event;
	uint32_t	 value;
	char		 why[160], detail[96];

	(void)b;
	if (n != 2 || zmq_msg_size(&frames[0]) != 6)
		return;
	memcpy(&event, zmq_msg_data(&frames[0]), 2);
	memcpy(&value, (const uint8_t *)zmq_msg_data(&frames[0]) + 2, 4);
	switch (event) {
	case ZMQ_EVENT_CONNECTED:
		mp->cb(mp->arg, MONITOR_HS_CONNECTED, 0, NULL);
		break;
	case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
		mp->cb(mp->arg, MONITOR_HS_OK, 0, NULL);
		break;
	case ZMQ_EVENT_DISCONNECTED:
		/* closed before the handshake ended: the peer could not
		   read our hello (the key we hold for it is not its own), or
		   it speaks without keys and we with them, or the reverse */
		mp->cb(mp->arg, MONITOR_HS_CLOSED, (uint64_t)event << 32,
		    "it closed the connection during the handshake: check "
		    "the public_key we hold for it, and that both sides use "
		    "keys or neither");
		break;
	case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
		snprintf(why, sizeof(why), "it refused our key (status %u): "
		    "is our public key among its peers?", value);
		mp->cb(mp->arg, MONITOR_HS_FAILED,
		    (uint64_t)event << 32 | value, why);
		break;
	default:
		monitor_why(event, value, detail, sizeof(detail));
		snprintf(why, sizeof(why), "handshake failed (%s): check the "
		    "public_key we hold for it", detail);
		mp->cb(mp->arg, MONITOR_HS_FAILED,
		    (uint64_t)event << 32 | value, why);
		break;
	}
}

/* Watch a peer's catch-up socket; what it sees goes to hook. */
struct bus *
monitor_peer(struct labsyncd *env, void *zsock, const char *name,
    struct monitor_hook *hook)
{
	return monitor_bus(env, zsock, name, PEER_EVENTS, monitor_peer_cb,
	    hook);
}

/* Stop watching zsock (still open) and close the monitor's socket. */
void
monitor_close(struct bus *mon, void *zsock)
{
	if (mon == NULL)
		return;
	zmq_socket_monitor(zsock, NULL, 0);
	bus_free(mon);
}
