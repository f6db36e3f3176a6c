/*
 * zap.c: the ZAP handler (RFC 27) that decides who may connect to our
 * bound sockets. libzmq's CURVE server admits every key when no handler
 * is bound, so this is bound before any other socket, and the daemon
 * stops if it cannot be. Only the public keys of the configured peers
 * pass; the reply's user id is the peer's name, which the sockets then
 * attach to every message (zmq_msg_gets "User-Id"): that, never a field
 * inside a message, says who sent it. The current configuration is
 * consulted on every request, so a peer removed on SIGHUP is refused.
 */
#include <string.h>

#include <zmq.h>

#include "bus.h"
#include "config.h"
#include "labsyncd.h"
#include "log.h"
#include "zap.h"

#define ZAP_ENDPOINT	"inproc://zeromq.zap.01"

/* The configured peer owning this 32-byte public key, or NULL. */
static const struct config_peer *
zap_find_key(const struct config *conf, const uint8_t *key)
{
	uint8_t	 raw[32];

	for (size_t i = 0; i < conf->npeers; i++) {
		const struct config_peer *p = &conf->peers[i];

		for (int k = 0; k < p->npublic_keys; k++)
			if (zmq_z85_decode(raw, p->public_keys[k]) != NULL &&
			    memcmp(raw, key, 32) == 0)
				return p;
	}
	return NULL;
}

static void
zap_cb(struct bus *b, zmq_msg_t *frames, int n, void *arg)
{
	struct labsyncd			*env = arg;
	const struct config_peer	*p = NULL;
	const void			*data[6];
	size_t				 len[6];
	char				 z85[41] = "(none)", addr[64] = "?";
	const char			*status = "400", *text = "refused";
	const char			*user = "";

	/* version, request id, domain, address, identity, mechanism, key */
	if (n < 6 || zmq_msg_size(&frames[0]) != 3 ||
	    memcmp(zmq_msg_data(&frames[0]), "1.0", 3) != 0) {
		log_warnx("zap: malformed request");
		return;
	}
	if (zmq_msg_size(&frames[3]) < sizeof(addr))
		snprintf(addr, sizeof(addr), "%.*s",
		    (int)zmq_msg_size(&frames[3]),
		    (const char *)zmq_msg_data(&frames[3]));
	if (n == 7 && zmq_msg_size(&frames[5]) == 5 &&
	    memcmp(zmq_msg_data(&frames[5]), "CURVE", 5) == 0 &&
	    zmq_msg_size(&frames[6]) == 32) {
		zmq_z85_encode(z85, zmq_msg_data(&frames[6]), 32);
		p = zap_find_key(env->conf, zmq_msg_data(&frames[6]));
	}
	if (p != NULL) {
		status = "200";
		text = "OK";
		user = p->name;
		log_info("zap: admitted peer %s (key %s) from %s", p->name, z85,
		    addr);
	} else {
		env->stats.refused_keys++;
		log_warnx("zap: refused connection from %s: key %s is not a "
		    "configured peer", addr, z85);
	}
	data[0] = "1.0";
	len[0] = 3;
	data[1] = zmq_msg_data(&frames[1]);
	len[1] = zmq_msg_size(&frames[1]);
	data[2] = status;
	len[2] = 3;
	data[3] = text;
	len[3] = strlen(text);
	data[4] = user;
	len[4] = strlen(user);
	data[5] = "";
	len[5] = 0;
	if (bus_send(b, data, len, 6) == -1)
		log_warnx("zap: cannot answer: %s", zmq_strerror(zmq_errno()));
}

int
zap_open(struct labsyncd *env)
{
	void	*z;

	if ((z = zmq_socket(env->zctx, ZMQ_REP)) == NULL)
		return -1;
	if (zmq_bind(z, ZAP_ENDPOINT) == -1) {
		log_warnx("zap: bind %s: %s", ZAP_ENDPOINT,
		    zmq_strerror(zmq_errno()));
		zmq_close(z);
		return -1;
	}
	if ((env->zap = bus_new(env->base, z, "zap", zap_cb, env)) == NULL)
		return -1;
	return 0;
}
