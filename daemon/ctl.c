/*
 * ctl.c: labsyncctl, the command-line client. It works on the database
 * directly (its writes go through the capture triggers like any other
 * writer's) and asks the running daemon, over the local control socket,
 * for live state and to pick a fresh write up at once.
 *
 * Exit codes: 0 ok, 1 not found or refused, 2 usage, config or value error.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>
#include <zmq.h>

#include "clock.h"
#include "config.h"
#include "log.h"
#include "rows.h"
#include "setup.h"
#include "store.h"
#include "uuid.h"

#define CTL_WAIT_MS	30000	/* how long put waits for a starting node */

struct ctl {
	struct config	*conf;
	struct clock	*clock;
	struct store	*store;
	int		 json;
};

static void
usage(void)
{
	fprintf(stderr,
	    "usage: labsyncctl [-c file] command [args]\n"
	    "  init                          create the database and schema\n"
	    "  keygen PATH/NAME              write NAME.key and NAME.pub\n"
	    "  put TABLE ID|- col=value ...  insert or update (- makes an id)\n"
	    "  get TABLE ID                  print one row as JSON\n"
	    "  delete TABLE ID               delete one row\n"
	    "  list TABLE                    print every row, one per line\n"
	    "  dump                          canonical dump of synced tables\n"
	    "  checksum                      SHA-256 of the dump\n"
	    "  status [--json]               the daemon's view of the node\n"
	    "A value of \\N is NULL.\n");
	exit(2);
}

static int
ctl_open(struct ctl *c, enum store_mode mode)
{
	struct store_options	 so;
	char			 err[512];

	memset(&so, 0, sizeof(so));
	so.path = c->conf->database;
	so.node_id = c->conf->node_id;
	so.schema_path = mode == STORE_INIT ? c->conf->schema : NULL;
	so.observer = c->conf->role == CONFIG_ROLE_OBSERVER;
	so.tables = c->conf->tables;
	so.ntables = c->conf->ntables;
	so.cache_size_mib = 8;
	so.max_clock_skew_ms = c->conf->max_clock_skew_ms;
	so.mode = mode;
	if ((c->clock = clock_new(NULL)) == NULL ||
	    (c->store = store_open(&so, c->clock, err, sizeof(err))) == NULL) {
		fprintf(stderr, "labsyncctl: %s\n", err);
		return -1;
	}
	return 0;
}

/* A table a user may name: synced or local. */
static int
ctl_table_ok(struct ctl *c, const char *table)
{
	if (config_table_synced(c->conf, table) ||
	    config_table_local(c->conf, table))
		return 1;
	fprintf(stderr, "labsyncctl: %s is not a synced or local table of "
	    "%s\n", table, c->conf->path);
	return 0;
}

/* One request to the daemon's control socket; NULL if it is not running. */
static char *
ctl_request(struct ctl *c, const char *req, int timeout_ms)
{
	void	*ctx, *z;
	char	*endpoint = NULL, *reply = NULL;
	int	 zero = 0;
	zmq_msg_t msg;
	struct stat sb;

	if (stat(c->conf->control, &sb) == -1)
		return NULL;
	ctx = zmq_ctx_new();
	z = zmq_socket(ctx, ZMQ_REQ);
	zmq_setsockopt(z, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(z, ZMQ_RCVTIMEO, &timeout_ms, sizeof(timeout_ms));
	zmq_setsockopt(z, ZMQ_SNDTIMEO, &timeout_ms, sizeof(timeout_ms));
	if (asprintf(&endpoint, "ipc://%s", c->conf->control) != -1 &&
	    zmq_connect(z, endpoint) == 0 &&
	    zmq_send(z, req, strlen(req), 0) != -1) {
		zmq_msg_init(&msg);
		if (zmq_msg_recv(&msg, z, 0) != -1) {
			reply = malloc(zmq_msg_size(&msg) + 1);
			memcpy(reply, zmq_msg_data(&msg), zmq_msg_size(&msg));
			reply[zmq_msg_size(&msg)] = '\0';
		}
		zmq_msg_close(&msg);
	}
	free(endpoint);
	zmq_close(z);
	zmq_ctx_term(ctx);
	return reply;
}

static int
ctl_keygen(const char *base)
{
	char	 pub[41], sec[41], *path;
	int	 fd;

	if (zmq_curve_keypair(pub, sec) != 0) {
		fprintf(stderr, "labsyncctl: keygen: %s\n",
		    zmq_strerror(zmq_errno()));
		return 1;
	}
	if (asprintf(&path, "%s.key", base) == -1)
		return 1;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd == -1 || dprintf(fd, "%s\n", sec) < 0 || close(fd) == -1) {
		fprintf(stderr, "labsyncctl: %s: %s\n", path, strerror(errno));
		free(path);
		return 1;
	}
	free(path);
	if (asprintf(&path, "%s.pub", base) == -1)
		return 1;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd == -1 || dprintf(fd, "%s\n", pub) < 0 || close(fd) == -1) {
		fprintf(stderr, "labsyncctl: %s: %s\n", path, strerror(errno));
		free(path);
		return 1;
	}
	printf("%s\n", pub);
	free(path);
	return 0;
}

/*
 * put and delete. A node that is starting refuses writes for a moment
 * (it first asks its peers whether it lost changes of its own): wait.
 */
static int
ctl_write(struct ctl *c, int argc, char **argv, int del)
{
	char		 err[512], id[UUID_STRLEN + 1];
	const char	*pk = argv[1];
	uint64_t	 deadline = clock_system_ms() + CTL_WAIT_MS;
	char		*reply;
	int		 rc;

	if (!ctl_table_ok(c, argv[0]))
		return 2;
	if (c->conf->role == CONFIG_ROLE_OBSERVER) {
		fprintf(stderr, "labsyncctl: node %s is an observer: local "
		    "writes are refused\n", c->conf->node_id);
		return 1;
	}
	if (!del && strcmp(pk, "-") == 0) {
		uuid_v7(id);
		pk = id;
	}
	if (ctl_open(c, STORE_CLIENT) == -1)
		return 1;
	for (;;) {
		if (del)
			rc = rows_delete(store_db(c->store), argv[0], pk, err,
			    sizeof(err));
		else
			rc = rows_put(store_db(c->store), argv[0], pk,
			    argv + 2, argc - 2, err, sizeof(err));
		if (rc != -1 || strstr(err, "checking with its peers") ==
		    NULL || clock_system_ms() > deadline)
			break;
		usleep(100000);
	}
	if (rc != 0) {
		fprintf(stderr, "labsyncctl: %s\n", err);
		return rc == -1 ? 1 : rc;
	}
	if ((reply = ctl_request(c, "wake", 1000)) != NULL)
		free(reply);
	if (pk == id)
		printf("%s\n", id);
	return 0;
}

static int
ctl_checksum(struct ctl *c)
{
	char			*buf = NULL, err[512];
	size_t			 len = 0;
	FILE			*f;
	unsigned char		 h[crypto_hash_sha256_BYTES];
	int			 rc;

	if ((f = open_memstream(&buf, &len)) == NULL)
		return 1;
	rc = rows_dump(store_db(c->store), c->conf->tables, c->conf->ntables,
	    f, err, sizeof(err));
	fclose(f);
	if (rc != 0) {
		fprintf(stderr, "labsyncctl: %s\n", err);
		free(buf);
		return 1;
	}
	crypto_hash_sha256(h, (unsigned char *)buf, len);
	for (size_t i = 0; i < sizeof(h); i++)
		printf("%02x", h[i]);
	printf("\n");
	free(buf);
	return 0;
}

static int
ctl_status(struct ctl *c)
{
	json_t		*o, *v, *p;
	json_error_t	 jerr;
	const char	*k;
	size_t		 i;
	char		*reply;

	if ((reply = ctl_request(c, "status", 5000)) == NULL) {
		fprintf(stderr, "labsyncctl: labsyncd for node %s is not "
		    "running (no answer on %s)\n", c->conf->node_id,
		    c->conf->control);
		return 1;
	}
	if (c->json) {
		printf("%s\n", reply);
		free(reply);
		return 0;
	}
	if ((o = json_loads(reply, 0, &jerr)) == NULL) {
		fprintf(stderr, "labsyncctl: bad status reply\n");
		free(reply);
		return 1;
	}
	free(reply);
	printf("node %s (%s), %s, %lld pending\n",
	    json_string_value(json_object_get(o, "node")),
	    json_string_value(json_object_get(o, "role")),
	    json_string_value(json_object_get(o, "phase")),
	    (long long)json_integer_value(json_object_get(o, "pending")));
	printf("vector:");
	json_object_foreach(json_object_get(o, "vector"), k, v)
		printf(" %s=%lld", k, (long long)json_integer_value(v));
	printf("\n");
	json_array_foreach(json_object_get(o, "peers"), i, p) {
		json_t *lc = json_object_get(p, "last_contact_s");
		const char *e = json_string_value(json_object_get(p,
		    "last_error"));

		printf("peer %s (%s): %s, lag %lld", json_string_value(
		    json_object_get(p, "name")), json_string_value(
		    json_object_get(p, "role")), json_string_value(
		    json_object_get(p, "state")), (long long)
		    json_integer_value(json_object_get(p, "lag")));
		if (json_is_real(lc))
			printf(", last contact %.1f s ago",
			    json_real_value(lc));
		if (e != NULL && e[0] != '\0')
			printf(", last error: %s", e);
		printf("\n");
	}
	json_decref(o);
	return 0;
}

int
main(int argc, char *argv[])
{
	struct ctl	 c;
	const char	*path = "/etc/labsync/labsync.conf", *cmd;
	char		*errors = NULL, err[512];
	int		 ch, rc = 2;

	memset(&c, 0, sizeof(c));
	while ((ch = getopt(argc, argv, "+c:h")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	cmd = argv[0];
	argc--;
	argv++;
	if (sodium_init() == -1)
		return 1;
	if (strcmp(cmd, "setup") == 0)
		return setup_main(argc + 1, argv - 1);
	if (strcmp(cmd, "keygen") == 0) {
		if (argc != 1)
			usage();
		return ctl_keygen(argv[0]);
	}
	if ((c.conf = config_load(path, &errors)) == NULL) {
		fprintf(stderr, "%s", errors != NULL ? errors : "");
		if (errors != NULL && errors[0] != '\0' &&
		    errors[strlen(errors) - 1] != '\n')
			fputc('\n', stderr);
		free(errors);
		return 2;
	}
	log_init("labsyncctl", LOG_LEVEL_WARNING);

	if (strcmp(cmd, "init") == 0 && argc == 0) {
		if ((rc = ctl_open(&c, STORE_INIT) == -1 ? 1 : 0) == 0)
			printf("initialised %s\n", c.conf->database);
	} else if (strcmp(cmd, "put") == 0 && argc >= 2)
		rc = ctl_write(&c, argc, argv, 0);
	else if (strcmp(cmd, "delete") == 0 && argc == 2)
		rc = ctl_write(&c, argc, argv, 1);
	else if (strcmp(cmd, "get") == 0 && argc == 2) {
		if (!ctl_table_ok(&c, argv[0]))
			rc = 2;
		else if (ctl_open(&c, STORE_CLIENT) == -1)
			rc = 1;
		else if ((rc = rows_get(store_db(c.store), argv[0], argv[1],
		    stdout, err, sizeof(err))) != 0) {
			fprintf(stderr, "labsyncctl: %s\n", err);
			rc = 1;
		}
	} else if (strcmp(cmd, "list") == 0 && argc == 1) {
		if (!ctl_table_ok(&c, argv[0]))
			rc = 2;
		else if (ctl_open(&c, STORE_CLIENT) == -1)
			rc = 1;
		else if ((rc = rows_list(store_db(c.store), argv[0], stdout,
		    err, sizeof(err))) != 0) {
			fprintf(stderr, "labsyncctl: %s\n", err);
			rc = 1;
		}
	} else if (strcmp(cmd, "dump") == 0 && argc == 0) {
		if (ctl_open(&c, STORE_CLIENT) == -1)
			rc = 1;
		else if ((rc = rows_dump(store_db(c.store), c.conf->tables,
		    c.conf->ntables, stdout, err, sizeof(err))) != 0) {
			fprintf(stderr, "labsyncctl: %s\n", err);
			rc = 1;
		}
	} else if (strcmp(cmd, "checksum") == 0 && argc == 0)
		rc = ctl_open(&c, STORE_CLIENT) == -1 ? 1 : ctl_checksum(&c);
	else if (strcmp(cmd, "status") == 0 && argc <= 1) {
		if (argc == 1 && strcmp(argv[0], "--json") != 0)
			usage();
		c.json = argc == 1;
		rc = ctl_status(&c);
	} else
		usage();

	store_free(c.store);
	clock_free(c.clock);
	config_free(c.conf);
	return rc;
}
