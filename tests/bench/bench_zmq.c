/*
 * bench_zmq.c: raw ZeroMQ throughput with CURVE, the transport ceiling.
 *
 *   bench_zmq [-s bytes] [-n messages]
 *
 * A PUSH socket (CURVE client) sends n messages of s bytes (default
 * 20,000 x 20 KB) over TCP on 127.0.0.1 to a PULL socket (CURVE server);
 * each side has its own context, so its own I/O thread, as two daemons
 * would. Timed from the first message received to the last. Prints
 * "name value unit" lines: messages/s and MB/s (10^6 bytes).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "bench_rows.h"

struct sender {
	char	 endpoint[256];
	char	 server_public[41];
	long	 n;
	size_t	 size;
};

static void
check(int rc, const char *what)
{
	if (rc == -1) {
		fprintf(stderr, "bench_zmq: %s: %s\n", what,
		    zmq_strerror(zmq_errno()));
		exit(1);
	}
}

static void *
sender_run(void *arg)
{
	struct sender	*s = arg;
	char		 pub[41], sec[41];
	void		*ctx = zmq_ctx_new(), *z;
	char		*buf = malloc(s->size);
	int		 hwm = 1000;

	if (ctx == NULL || buf == NULL)
		exit(1);
	for (size_t i = 0; i < s->size; i++)
		buf[i] = (char)(i * 131 + 7);
	z = zmq_socket(ctx, ZMQ_PUSH);
	check(zmq_curve_keypair(pub, sec), "zmq_curve_keypair");
	check(zmq_setsockopt(z, ZMQ_CURVE_SERVERKEY, s->server_public, 40),
	    "CURVE_SERVERKEY");
	check(zmq_setsockopt(z, ZMQ_CURVE_PUBLICKEY, pub, 40), "PUBLICKEY");
	check(zmq_setsockopt(z, ZMQ_CURVE_SECRETKEY, sec, 40), "SECRETKEY");
	check(zmq_setsockopt(z, ZMQ_SNDHWM, &hwm, sizeof(hwm)), "SNDHWM");
	check(zmq_connect(z, s->endpoint), "connect");
	for (long i = 0; i < s->n + 1; i++)	/* one more: the warm-up */
		check(zmq_send(z, buf, s->size, 0), "send");
	zmq_close(z);		/* default linger: everything is delivered */
	zmq_ctx_term(ctx);
	free(buf);
	return NULL;
}

int
main(int argc, char *argv[])
{
	struct sender	 s = { .n = 20000, .size = 20000 };
	char		 sec[41];
	void		*ctx, *z;
	char		*buf;
	size_t		 len = sizeof(s.endpoint);
	pthread_t	 th;
	uint64_t	 t0 = 0, t1;
	int		 ch, one = 1, hwm = 1000;
	double		 secs;

	while ((ch = getopt(argc, argv, "n:s:")) != -1) {
		switch (ch) {
		case 'n':
			s.n = atol(optarg);
			break;
		case 's':
			s.size = (size_t)atol(optarg);
			break;
		default:
			fprintf(stderr, "usage: bench_zmq [-s bytes] "
			    "[-n messages]\n");
			return 2;
		}
	}
	if (s.n < 1 || s.size < 1 || (buf = malloc(s.size)) == NULL)
		return 2;
	ctx = zmq_ctx_new();
	z = zmq_socket(ctx, ZMQ_PULL);
	check(zmq_curve_keypair(s.server_public, sec), "zmq_curve_keypair");
	check(zmq_setsockopt(z, ZMQ_CURVE_SERVER, &one, sizeof(one)),
	    "CURVE_SERVER");
	check(zmq_setsockopt(z, ZMQ_CURVE_SECRETKEY, sec, 40), "SECRETKEY");
	check(zmq_setsockopt(z, ZMQ_RCVHWM, &hwm, sizeof(hwm)), "RCVHWM");
	check(zmq_bind(z, "tcp://127.0.0.1:*"), "bind");
	check(zmq_getsockopt(z, ZMQ_LAST_ENDPOINT, s.endpoint, &len),
	    "LAST_ENDPOINT");
	if (pthread_create(&th, NULL, sender_run, &s) != 0)
		return 1;
	for (long i = 0; i < s.n + 1; i++) {
		if (zmq_recv(z, buf, s.size, 0) != (int)s.size) {
			fprintf(stderr, "bench_zmq: short or failed receive\n");
			return 1;
		}
		if (i == 0)
			t0 = bench_mono_us();	/* after the warm-up one */
	}
	t1 = bench_mono_us();
	pthread_join(th, NULL);
	zmq_close(z);
	zmq_ctx_term(ctx);
	secs = (t1 - t0) / 1e6;
	fprintf(stderr, "bench_zmq: %ld messages of %zu bytes over CURVE on "
	    "%s in %.3f s\n", s.n, s.size, s.endpoint, secs);
	printf("zmq_curve_msgs_per_s %.0f msgs/s\n", s.n / secs);
	printf("zmq_curve_mb_per_s %.1f MB/s\n", s.n * (double)s.size / secs /
	    1e6);
	free(buf);
	return 0;
}
