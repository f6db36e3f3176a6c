/*
 * ctl.c: labsyncctl, the command-line client. It works on the database
 * directly (its writes go through the capture triggers like any other
 * writer's) and asks the running daemon, over the local control socket,
 * for live state and to pick a fresh write up at once.
 *
 * Every command is one entry of ctl_cmds: its name, arguments, what it
 * needs (configuration, database, running daemon), handler and help. The
 * usage, `help` and the dispatch in ctl_run all come from that table, so a
 * new command is one entry and one handler.
 *
 * Exit codes: 0 ok, 1 not found or refused, 2 usage, config or value error.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>
#include <zmq.h>

#include "clock.h"
#include "config.h"
#include "feed.h"
#include "keys.h"
#include "log.h"
#include "rows.h"
#include "rules.h"
#include "setup.h"
#include "store.h"
#include "uuid.h"
#include "version.h"

#define CTL_WAIT_MS	30000	/* how long put waits for a starting node */
#define CTL_WATCH_MS	200	/* how often watch looks for new changes */
#define CTL_DEFAULT_CONF "/etc/labsync/labsync.conf"

/* What a command needs; ctl_run sees to it, in this order, before the
   handler runs. Each of the later ones implies the configuration. */
#define CTL_CONFIG	0x01			/* the configuration (-c) */
#define CTL_TABLE	(0x02 | CTL_CONFIG)	/* first argument: a
						   synced or local table */
#define CTL_WRITE	(0x04 | CTL_CONFIG)	/* writes: not on an observer */
#define CTL_DAEMON	(0x08 | CTL_CONFIG)	/* the running daemon */
#define CTL_DB		(0x10 | CTL_CONFIG)	/* the database, as a client */

struct ctl_cmd;

struct ctl {
	const char		*path;	/* the configuration file */
	const struct ctl_cmd	*cmd;	/* the command being run */
	struct config		*conf;
	struct clock		*clock;
	struct store		*store;
	int			 flag;	/* the command's flag was given */
	unsigned char		 pkey[32];	/* the pseudonym key, if read */
};

struct ctl_cmd {
	const char	*name;
	const char	*args;		/* argument synopsis, "" for none */
	const char	*flag;		/* an optional first argument such as
					   --json (sets ctl.flag), or NULL */
	int		 min, max;	/* arguments besides the flag; max -1:
					   no limit */
	int		 needs;		/* CTL_* */
	int		(*run)(struct ctl *, int, char **);
	const char	*help;		/* one line */
};

static int	ctl_init(struct ctl *, int, char **);
static int	ctl_keygen(struct ctl *, int, char **);
static int	ctl_setup(struct ctl *, int, char **);
static int	ctl_put(struct ctl *, int, char **);
static int	ctl_delete(struct ctl *, int, char **);
static int	ctl_erase(struct ctl *, int, char **);
static int	ctl_erasures(struct ctl *, int, char **);
static int	ctl_get(struct ctl *, int, char **);
static int	ctl_list(struct ctl *, int, char **);
static int	ctl_dump(struct ctl *, int, char **);
static int	ctl_export(struct ctl *, int, char **);
static int	ctl_checksum(struct ctl *, int, char **);
static int	ctl_status(struct ctl *, int, char **);
static int	ctl_schema(struct ctl *, int, char **);
static int	ctl_refused(struct ctl *, int, char **);
static int	ctl_retry(struct ctl *, int, char **);
static int	ctl_discard(struct ctl *, int, char **);
static int	ctl_watch(struct ctl *, int, char **);
static int	ctl_help(struct ctl *, int, char **);

static const struct ctl_cmd ctl_cmds[] = {
	{ "init", "", NULL, 0, 0, CTL_CONFIG, ctl_init,
	    "create the database and schema" },
	{ "keygen", "PATH/NAME", NULL, 1, 1, 0, ctl_keygen,
	    "write a CURVE keypair to NAME.key and NAME.pub" },
	{ "setup", "--id ID --role ROLE --listen ADDR [option ...]", NULL, 0,
	    -1, 0, ctl_setup, "write a node's keypair and config, print its "
	    "peer block" },
	{ "put", "TABLE ID|- col=value ...", NULL, 2, -1,
	    CTL_TABLE | CTL_WRITE | CTL_DB, ctl_put,
	    "insert or update (- makes an id, \\N is NULL)" },
	{ "delete", "TABLE ID", NULL, 2, 2, CTL_TABLE | CTL_WRITE | CTL_DB,
	    ctl_delete, "delete one row" },
	{ "erase", "TABLE ID", NULL, 2, 2, CTL_TABLE | CTL_WRITE | CTL_DB,
	    ctl_erase, "delete one row and every old value of it, on every "
	    "node" },
	{ "erasures", "[--json]", "--json", 0, 0, CTL_DB, ctl_erasures,
	    "list the erasures carried out here, and who confirmed them" },
	{ "get", "TABLE ID", NULL, 2, 2, CTL_TABLE | CTL_DB, ctl_get,
	    "print one row as JSON" },
	{ "list", "TABLE", NULL, 1, 1, CTL_TABLE | CTL_DB, ctl_list,
	    "print every row, one JSON object per line" },
	{ "export", "TABLE [--format csv|json] [--where col=value] ... "
	    "[--with-meta]", NULL, 1, -1, CTL_TABLE | CTL_DB, ctl_export,
	    "live rows as CSV (RFC 4180) or JSON lines" },
	{ "dump", "", NULL, 0, 0, CTL_DB, ctl_dump,
	    "canonical dump of the synced tables" },
	{ "checksum", "", NULL, 0, 0, CTL_DB, ctl_checksum,
	    "SHA-256 of the dump" },
	{ "status", "[--json]", "--json", 0, 0, CTL_DAEMON, ctl_status,
	    "the running daemon's view of the node" },
	{ "schema", "[--json]", "--json", 0, 0, CTL_DB, ctl_schema,
	    "the synced tables' columns as the node replicates them" },
	{ "refused", "[--json]", "--json", 0, 0, CTL_DB, ctl_refused,
	    "list received changes kept aside (waiting or refused)" },
	{ "retry", "", NULL, 0, 0, CTL_DAEMON, ctl_retry,
	    "read the tables' layout again and retry the kept changes" },
	{ "discard", "ORIGIN SEQ", NULL, 2, 2, CTL_CONFIG, ctl_discard,
	    "give up a kept change on this node" },
	{ "watch", "[--since CURSOR] [TABLE]", NULL, 0, 3, CTL_DB, ctl_watch,
	    "print changes as JSON lines as they commit, until interrupted" },
	{ "help", "[COMMAND]", NULL, 0, 1, 0, ctl_help,
	    "list the commands, or show one's usage" },
};
#define CTL_NCMDS	(sizeof(ctl_cmds) / sizeof(ctl_cmds[0]))

/* The synopsis of one command, "put TABLE ID|- col=value ...". */
static void
ctl_synopsis(const struct ctl_cmd *cmd, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s", cmd->name, cmd->args[0] != '\0' ? " " :
	    "", cmd->args);
}

/* The whole usage: options and a line per command. */
static void
ctl_usage(FILE *out)
{
	char	 syn[128];
	int	 width = 0, n;

	for (size_t i = 0; i < CTL_NCMDS; i++) {
		ctl_synopsis(&ctl_cmds[i], syn, sizeof(syn));
		if ((n = (int)strlen(syn)) > width)
			width = n;
	}
	fprintf(out,
	    "usage: labsyncctl [-hV] [-c file] command [args]\n"
	    "  -c file        configuration (default " CTL_DEFAULT_CONF ")\n"
	    "  -h, --help     print this help and exit\n"
	    "  -V, --version  print the version and exit\n"
	    "commands:\n");
	for (size_t i = 0; i < CTL_NCMDS; i++) {
		ctl_synopsis(&ctl_cmds[i], syn, sizeof(syn));
		fprintf(out, "  %-*s  %s\n", width, syn, ctl_cmds[i].help);
	}
}

/* One command's usage line. */
static void
ctl_usage_cmd(FILE *out, const struct ctl_cmd *cmd)
{
	char	 syn[128];

	ctl_synopsis(cmd, syn, sizeof(syn));
	fprintf(out, "usage: labsyncctl %s%s\n",
	    cmd->needs & CTL_CONFIG ? "[-c file] " : "", syn);
}

/* A command by its name; NULL if there is none. */
static const struct ctl_cmd *
ctl_find(const char *name)
{
	for (size_t i = 0; i < CTL_NCMDS; i++)
		if (strcmp(ctl_cmds[i].name, name) == 0)
			return &ctl_cmds[i];
	return NULL;
}

/* An unknown command: say so and where the list is. */
static int
ctl_unknown(const char *name)
{
	fprintf(stderr, "labsyncctl: unknown command '%s'\n"
	    "labsyncctl: run 'labsyncctl help' for the list of commands\n",
	    name);
	return 2;
}

/* Read the configuration; 0, or -1 after printing its errors. */
static int
ctl_config(struct ctl *c)
{
	char	*errors = NULL;

	if ((c->conf = config_load(c->path, &errors)) == NULL) {
		fprintf(stderr, "%s", errors != NULL ? errors : "");
		if (errors != NULL && errors[0] != '\0' &&
		    errors[strlen(errors) - 1] != '\n')
			fputc('\n', stderr);
		free(errors);
		return -1;
	}
	log_init("labsyncctl", LOG_LEVEL_WARNING);
	return 0;
}

static int
ctl_open(struct ctl *c, enum store_mode mode)
{
	struct store_options	 so;
	char			 err[512] = "";

	memset(&so, 0, sizeof(so));
	so.path = c->conf->database;
	so.node_id = c->conf->node_id;
	so.schema_path = mode == STORE_INIT ? c->conf->schema : NULL;
	so.observer = c->conf->role == CONFIG_ROLE_OBSERVER;
	so.partner = c->conf->role == CONFIG_ROLE_PARTNER;
	so.writable = c->conf->writable;
	so.nwritable = c->conf->nwritable;
	so.tables = c->conf->tables;
	so.ntables = c->conf->ntables;
	so.local_columns = c->conf->local_columns;
	so.nlocal_columns = c->conf->nlocal_columns;
	so.pseudonymise = c->conf->pseudonymise;
	so.npseudonymise = c->conf->npseudonymise;
	so.cache_size_mib = 8;
	so.max_clock_skew_ms = c->conf->max_clock_skew_ms;
	/* watch shows our pseudonymised columns as sent, if we may read the
	   key; without it they are left out, never shown in clear */
	if (c->conf->pseudonym_key_file != NULL &&
	    keys_read_pseudonym(c->conf->pseudonym_key_file, c->pkey, err,
	    sizeof(err)) == 0)
		so.pseudonym_key = c->pkey;
	so.mode = mode;
	if ((c->clock = clock_new(NULL)) == NULL) {
		fprintf(stderr, "labsyncctl: out of memory\n");
		return -1;
	}
	/* SQLite only says "unable to open database file" */
	if (mode != STORE_INIT && access(c->conf->database, F_OK) == -1 &&
	    errno == ENOENT) {
		fprintf(stderr, "labsyncctl: %s: no database here; run "
		    "'labsyncctl -c %s init' first\n", c->conf->database,
		    c->path);
		return -1;
	}
	if ((c->store = store_open(&so, c->clock, err, sizeof(err))) == NULL) {
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

/* The daemon does not answer, or we may not ask it: say so; the exit
   status. */
static int
ctl_not_running(struct ctl *c)
{
	if (access(c->conf->control, R_OK | W_OK) == -1 && errno == EACCES) {
		fprintf(stderr, "labsyncctl: %s: permission denied: the "
		    "control socket of node %s is for the labsync user and "
		    "its group\n", c->conf->control, c->conf->node_id);
		return 1;
	}
	fprintf(stderr, "labsyncctl: labsyncd for node %s is not running (no "
	    "answer on %s)\n", c->conf->node_id, c->conf->control);
	return 1;
}

/* One request to the daemon's control socket; NULL if it is not running. */
static char *
ctl_request(struct ctl *c, const char *req, int timeout_ms)
{
	void		*ctx = NULL, *z = NULL;
	char		*endpoint = NULL, *reply = NULL;
	int		 zero = 0;
	zmq_msg_t	 msg;
	struct stat	 sb;

	if (stat(c->conf->control, &sb) == -1 ||
	    access(c->conf->control, R_OK | W_OK) == -1)
		return NULL;
	if ((ctx = zmq_ctx_new()) == NULL ||
	    (z = zmq_socket(ctx, ZMQ_REQ)) == NULL) {
		fprintf(stderr, "labsyncctl: control socket: %s\n",
		    zmq_strerror(zmq_errno()));
		goto done;
	}
	if (asprintf(&endpoint, "ipc://%s", c->conf->control) == -1) {
		endpoint = NULL;
		fprintf(stderr, "labsyncctl: out of memory\n");
		goto done;
	}
	zmq_setsockopt(z, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(z, ZMQ_RCVTIMEO, &timeout_ms, sizeof(timeout_ms));
	zmq_setsockopt(z, ZMQ_SNDTIMEO, &timeout_ms, sizeof(timeout_ms));
	if (zmq_connect(z, endpoint) == -1 ||
	    zmq_send(z, req, strlen(req), 0) == -1)
		goto done;
	zmq_msg_init(&msg);
	if (zmq_msg_recv(&msg, z, 0) != -1) {
		if ((reply = malloc(zmq_msg_size(&msg) + 1)) == NULL)
			fprintf(stderr, "labsyncctl: out of memory\n");
		else {
			memcpy(reply, zmq_msg_data(&msg), zmq_msg_size(&msg));
			reply[zmq_msg_size(&msg)] = '\0';
		}
	}
	zmq_msg_close(&msg);
done:
	free(endpoint);
	if (z != NULL)
		zmq_close(z);
	if (ctx != NULL)
		zmq_ctx_term(ctx);
	return reply;
}

/*
 * The exit status of a rows_* result, after printing its message
 * (labsyncctl(1), EXIT STATUS): 0 ok; 2 a bad table, column or value; 1
 * a missing row, a refusal or a failure. Every command maps results to
 * exit statuses here, by code.
 */
static int
ctl_rows_exit(enum reason r, const char *err)
{
	if (r == REASON_OK)
		return 0;
	/* display only: no "labsyncctl: labsync: ..." */
	if (strncmp(err, RULES_RAISE_PREFIX, strlen(RULES_RAISE_PREFIX)) == 0)
		err += strlen(RULES_RAISE_PREFIX);
	fprintf(stderr, "labsyncctl: %s\n", err);
	switch (r) {
	case REASON_UNKNOWN_TABLE:
	case REASON_UNKNOWN_COLUMN:
	case REASON_DUPLICATE_COLUMN:
	case REASON_WRONG_TYPE:
	case REASON_BAD_KEY:
	case REASON_VALUE_TOO_LARGE:
	case REASON_NUL_IN_TEXT:
	case REASON_BAD_INPUT:
	case REASON_CONSTRAINT:
		return 2;
	default:
		return 1;
	}
}

/* Whether a refused write is worth another try: the node is starting
   (it is checking with its peers). */
static int
ctl_write_retry(enum reason r)
{
	return r == REASON_RECOVERING;
}

/* init: create the database, run the schema, install the triggers. */
static int
ctl_init(struct ctl *c, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (ctl_open(c, STORE_INIT) == -1)
		return 1;
	printf("initialised %s\n", c->conf->database);
	return 0;
}

/* keygen PATH/NAME: a CURVE keypair; prints the public key. */
static int
ctl_keygen(struct ctl *c, int argc, char **argv)
{
	char	 pub[41], err[256];

	(void)c;
	(void)argc;
	if (keys_generate(argv[0], 0, pub, err, sizeof(err)) == -1) {
		fprintf(stderr, "labsyncctl: keygen: %s\n", err);
		return 1;
	}
	printf("%s\n", pub);
	return 0;
}

/* setup --id ID ...: a node's keypair and config; see setup.c. */
static int
ctl_setup(struct ctl *c, int argc, char **argv)
{
	(void)c;
	return setup_main(argc + 1, argv - 1);	/* argv[-1]: "setup" */
}

/* What ctl_write writes. */
enum ctl_write_op {
	CTL_PUT,
	CTL_DELETE,
	CTL_ERASE,
};

/* Who asks for an erasure: the local user's name (or number). */
static void
ctl_user(char *buf, size_t len)
{
	struct passwd	*pw = getpwuid(getuid());

	if (pw != NULL && pw->pw_name != NULL)
		snprintf(buf, len, "%s", pw->pw_name);
	else
		snprintf(buf, len, "uid %lu", (unsigned long)getuid());
}

/*
 * put, delete and erase. A node that is starting refuses writes for a
 * moment (it first asks its peers whether it lost changes of its own):
 * wait.
 */
static int
ctl_write(struct ctl *c, int argc, char **argv, enum ctl_write_op op)
{
	char		 err[512] = "", id[UUID_STRLEN + 1], user[256];
	const char	*pk = argv[1];
	uint64_t	 deadline = clock_system_ms() + CTL_WAIT_MS;
	char		*reply;
	enum reason	 r;

	if (op == CTL_PUT && strcmp(pk, "-") == 0) {
		uuid_v7(id);
		pk = id;
	}
	ctl_user(user, sizeof(user));
	for (;;) {
		if (op == CTL_ERASE)
			r = rows_erase(c->store, argv[0], pk, user,
			    err, sizeof(err));
		else if (op == CTL_DELETE)
			r = rows_delete(store_db(c->store), argv[0], pk, err,
			    sizeof(err));
		else
			r = rows_put(store_db(c->store), argv[0], pk,
			    argv + 2, argc - 2, err, sizeof(err));
		if (!ctl_write_retry(r) || clock_system_ms() > deadline)
			break;
		usleep(100000);
	}
	if (r != REASON_OK)
		return ctl_rows_exit(r, err);
	if ((reply = ctl_request(c, "wake", 1000)) != NULL)
		free(reply);
	if (pk == id)
		printf("%s\n", id);
	return 0;
}

/* put TABLE ID|- col=value ... */
static int
ctl_put(struct ctl *c, int argc, char **argv)
{
	return ctl_write(c, argc, argv, CTL_PUT);
}

/* delete TABLE ID */
static int
ctl_delete(struct ctl *c, int argc, char **argv)
{
	return ctl_write(c, argc, argv, CTL_DELETE);
}

/* erase TABLE ID: exits once the erasure is committed here; the daemon
   sends it on and cuts its WAL back. */
static int
ctl_erase(struct ctl *c, int argc, char **argv)
{
	return ctl_write(c, argc, argv, CTL_ERASE);
}

/* erasures [--json]: the audit rows, with which peers confirmed each. */
static int
ctl_erasures(struct ctl *c, int argc, char **argv)
{
	char	**peers;
	int	  ret;

	(void)argc;
	(void)argv;
	if ((peers = calloc(c->conf->npeers + 1, sizeof(*peers))) == NULL) {
		fprintf(stderr, "labsyncctl: out of memory\n");
		return 1;
	}
	for (size_t i = 0; i < c->conf->npeers; i++)
		peers[i] = c->conf->peers[i].name;
	if (!c->flag)
		printf("# asked\tby\ttable\tid\terasure\tdone here"
		    "\tconfirmed by peers\n");
	ret = erase_list(c->store, peers, c->conf->npeers, c->flag,
	    stdout) == -1 ? 1 : 0;
	free(peers);
	return ret;
}

/* get TABLE ID: one row as JSON. */
static int
ctl_get(struct ctl *c, int argc, char **argv)
{
	char	 err[512] = "";

	(void)argc;
	return ctl_rows_exit(rows_get(store_db(c->store), argv[0], argv[1],
	    stdout, err, sizeof(err)), err);
}

/* list TABLE: every row, one JSON object a line. */
static int
ctl_list(struct ctl *c, int argc, char **argv)
{
	char	 err[512] = "";

	(void)argc;
	return ctl_rows_exit(rows_list(store_db(c->store), argv[0], stdout,
	    err, sizeof(err)), err);
}

/*
 * What a dump leaves out: local columns (only here) and pseudonymised
 * ones (the value here, its HMAC elsewhere), so that converged nodes
 * compare equal on what they share. Free the array, not its strings.
 */
static char **
ctl_dump_skip(const struct config *conf, size_t *n)
{
	char	**skip;

	*n = conf->nlocal_columns + conf->npseudonymise;
	if ((skip = calloc(*n + 1, sizeof(*skip))) == NULL)
		return NULL;
	for (size_t i = 0; i < conf->nlocal_columns; i++)
		skip[i] = conf->local_columns[i];
	for (size_t i = 0; i < conf->npseudonymise; i++)
		skip[conf->nlocal_columns + i] = conf->pseudonymise[i];
	return skip;
}

/*
 * export TABLE [--format csv|json] [--where col=value] ... [--with-meta]:
 * the live rows to standard output (rows.c, rows_export).
 */
static int
ctl_export(struct ctl *c, int argc, char **argv)
{
	enum rows_format	 fmt = ROWS_CSV;
	char			**where, err[512] = "";
	int			 nwhere = 0, meta = 0, rc;

	if ((where = calloc(argc, sizeof(*where))) == NULL) {
		fprintf(stderr, "labsyncctl: out of memory\n");
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--with-meta") == 0)
			meta = 1;
		else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc &&
		    (strcmp(argv[i + 1], "csv") == 0 ||
		    strcmp(argv[i + 1], "json") == 0))
			fmt = argv[++i][0] == 'c' ? ROWS_CSV : ROWS_JSON;
		else if (strcmp(argv[i], "--where") == 0 && i + 1 < argc &&
		    strchr(argv[i + 1], '=') != NULL)
			where[nwhere++] = argv[++i];
		else {
			fprintf(stderr, "labsyncctl: export: bad argument "
			    "'%s'\n", argv[i]);
			ctl_usage_cmd(stderr, c->cmd);
			free(where);
			return 2;
		}
	}
	rc = ctl_rows_exit(rows_export(store_db(c->store), argv[0], fmt, where,
	    nwhere, meta, stdout, err, sizeof(err)), err);
	if (rc == 0 && fflush(stdout) == EOF) {
		fprintf(stderr, "labsyncctl: export: %s\n", strerror(errno));
		rc = 1;
	}
	free(where);
	return rc;
}

/* dump: the canonical dump of the synced tables. */
static int
ctl_dump(struct ctl *c, int argc, char **argv)
{
	char	 err[512] = "", **skip;
	size_t	 nskip;
	int	 ret;

	(void)argc;
	(void)argv;
	if ((skip = ctl_dump_skip(c->conf, &nskip)) == NULL) {
		fprintf(stderr, "labsyncctl: dump: %s\n", strerror(errno));
		return 1;
	}
	ret = ctl_rows_exit(rows_dump(store_db(c->store), c->conf->tables,
	    c->conf->ntables, skip, nskip, stdout, err, sizeof(err)), err);
	free(skip);
	return ret;
}

/* checksum: the SHA-256 of the dump. */
static int
ctl_checksum(struct ctl *c, int argc, char **argv)
{
	char			*buf = NULL, err[512] = "", **skip;
	size_t			 len = 0, nskip;
	FILE			*f;
	unsigned char		 h[crypto_hash_sha256_BYTES];
	enum reason		 r;

	(void)argc;
	(void)argv;
	if ((f = open_memstream(&buf, &len)) == NULL) {
		fprintf(stderr, "labsyncctl: checksum: %s\n", strerror(errno));
		return 1;
	}
	if ((skip = ctl_dump_skip(c->conf, &nskip)) == NULL) {
		fprintf(stderr, "labsyncctl: checksum: %s\n", strerror(errno));
		fclose(f);
		free(buf);
		return 1;
	}
	r = rows_dump(store_db(c->store), c->conf->tables, c->conf->ntables,
	    skip, nskip, f, err, sizeof(err));
	free(skip);
	if (fclose(f) == EOF && r == REASON_OK) {
		fprintf(stderr, "labsyncctl: checksum: %s\n", strerror(errno));
		free(buf);
		return 1;
	}
	if (r != REASON_OK) {
		free(buf);
		return ctl_rows_exit(r, err);
	}
	crypto_hash_sha256(h, (unsigned char *)buf, len);
	for (size_t i = 0; i < sizeof(h); i++)
		printf("%02x", h[i]);
	printf("\n");
	free(buf);
	return 0;
}

/* status [--json]: the running daemon's view of the node. */
/* On a peer's line: what it has not confirmed of ours, what it keeps. */
static void
ctl_status_delivery(json_t *p)
{
	json_t		*u = json_object_get(p, "unconfirmed");
	json_t		*age = json_object_get(p, "unconfirmed_oldest_s");
	const char	*kept = json_string_value(json_object_get(p, "kept"));

	if (json_is_integer(u)) {
		printf(", unconfirmed %lld", (long long)json_integer_value(u));
		if (json_is_real(age))
			printf(" (oldest %.1f s)", json_real_value(age));
	}
	if (kept == NULL)
		return;
	printf(", %s %lld (%s: %s)", kept, (long long)json_integer_value(
	    json_object_get(p, strcmp(kept, "refused") == 0 ?
	    "kept_refused" : "kept_waiting")),
	    json_string_value(json_object_get(p, "kept_reason")),
	    json_string_value(json_object_get(p, "kept_what")));
}

/* On a peer's line: the log entries it holds back from compaction. */
static void
ctl_status_log(json_t *p)
{
	json_t	*n = json_object_get(p, "holds_log");
	json_t	*age = json_object_get(p, "holds_log_oldest_s");

	if (!json_is_integer(n) || json_integer_value(n) == 0)
		return;
	printf(", holds back %lld log entries",
	    (long long)json_integer_value(n));
	if (json_is_real(age))
		printf(" (oldest %.1f s)", json_real_value(age));
}

/* refused [--json]: the kept-aside changes, from the database. */
static int
ctl_refused(struct ctl *c, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (!c->flag)
		printf("# origin\tseq\ttable\tid\tcolumn\treason\tstate"
		    "\tsince_ms\n");
	return aside_list(c->store, c->flag, stdout) == -1 ? 1 : 0;
}

static volatile sig_atomic_t ctl_stopped;
static volatile sig_atomic_t ctl_writing;	/* watch: in a write */

/*
 * SIGINT, SIGTERM: watch stops. In a write, which blocks for as long as
 * the reader does not read (and goes on after a signal that cut it
 * short), it ends at once, as asked: _exit is safe in a handler, and
 * nothing is left to do (the database is only read).
 */
static void
ctl_stop(int sig)
{
	(void)sig;
	ctl_stopped = 1;
	if (ctl_writing)
		_exit(0);
}

/*
 * One change as a JSON line on standard output, written past stdio,
 * whose buffer exit would try to write again. 0, or -1 on failure
 * (errno).
 */
static int
ctl_watch_line(json_t *o)
{
	char	*line, *p;
	size_t	 n;
	ssize_t	 w;
	int	 ret = 0;

	if ((line = json_dumps(o, JSON_COMPACT)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	n = strlen(line);
	if ((p = realloc(line, n + 2)) == NULL) {
		free(line);
		errno = ENOMEM;
		return -1;
	}
	line = p;
	line[n++] = '\n';
	line[n] = '\0';
	ctl_writing = 1;
	if (ctl_stopped)	/* came before ctl_writing was set */
		_exit(0);
	while (n > 0) {
		if ((w = write(STDOUT_FILENO, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			ret = -1;
			break;
		}
		p += w;
		n -= (size_t)w;
	}
	ctl_writing = 0;
	free(line);
	return ret;
}

/*
 * watch [--since CURSOR] [TABLE]: the change feed (feed.c) as JSON
 * lines, from the newest change on (or after CURSOR), polling the
 * database, until SIGINT or SIGTERM (exit 0).
 */
static int
ctl_watch(struct ctl *c, int argc, char **argv)
{
	struct sigaction sa;
	const struct timespec nap = { 0, CTL_WATCH_MS * 1000000L };
	const char	*table = NULL;
	long long	 since = -1;
	char		*end;
	json_t		*changes, *o;
	int64_t		 next;
	size_t		 i;
	int		 wr;
	enum reason	 r;

	for (int a = 0; a < argc; a++) {
		if (strcmp(argv[a], "--since") == 0 && a + 1 < argc &&
		    since == -1) {
			errno = 0;
			since = strtoll(argv[++a], &end, 10);
			if (argv[a][0] == '\0' || *end != '\0' ||
			    errno != 0 || since < 0) {
				fprintf(stderr, "labsyncctl: watch: --since "
				    "takes a cursor (0 or more)\n");
				return 2;
			}
		} else if (argv[a][0] != '-' && table == NULL)
			table = argv[a];
		else {
			ctl_usage_cmd(stderr, c->cmd);
			return 2;
		}
	}
	if (table != NULL && !config_table_synced(c->conf, table)) {
		fprintf(stderr, "labsyncctl: %s is not a synced table of %s\n",
		    table, c->conf->path);
		return 2;
	}
	if (since == -1 && (since = changelog_feed_mark(c->store, 0)) < 0) {
		fprintf(stderr, "labsyncctl: watch: cannot read the change "
		    "log\n");
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = ctl_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_DFL);
	while (!ctl_stopped) {
		r = feed_read(c->store, since, table, FEED_LIMIT_MAX,
		    &changes, &next);
		if (r == REASON_COMPACTED) {
			fprintf(stderr, "labsyncctl: watch: changes after "
			    "cursor %lld were compacted away: read the tables "
			    "again, then watch from now on\n", since);
			return 1;
		}
		if (r == REASON_CURSOR_AHEAD) {
			fprintf(stderr, "labsyncctl: watch: cursor %lld is "
			    "beyond the newest change of this database "
			    "(restored from a backup, or another node's "
			    "cursor): read the tables again, then watch from "
			    "now on\n", since);
			return 1;
		}
		if (r != REASON_OK) {
			fprintf(stderr, "labsyncctl: watch: cannot read the "
			    "change feed (%s)\n", reason_name(r));
			return 1;
		}
		wr = 0;
		json_array_foreach(changes, i, o) {
			if ((wr = ctl_watch_line(o)) != 0)
				break;
		}
		json_decref(changes);
		if (wr == -1) {
			fprintf(stderr, "labsyncctl: watch: standard output: "
			    "%s\n", strerror(errno));
			return 1;
		}
		if (next == since)
			nanosleep(&nap, NULL);	/* a signal cuts it short */
		since = next;
	}
	return 0;
}

/* retry: the daemon reads the layout again and tries every kept change. */
static int
ctl_retry(struct ctl *c, int argc, char **argv)
{
	json_t		*o;
	json_error_t	 jerr;
	char		*reply;
	int		 ret = 1;

	(void)argc;
	(void)argv;
	if ((reply = ctl_request(c, "retry", 30000)) == NULL)
		return ctl_not_running(c);
	if ((o = json_loads(reply, 0, &jerr)) == NULL ||
	    !json_is_true(json_object_get(o, "ok")))
		fprintf(stderr, "labsyncctl: %s\n", o != NULL ?
		    json_string_value(json_object_get(o, "error")) : reply);
	else {
		printf("applied %lld kept changes, %lld still kept\n",
		    (long long)json_integer_value(json_object_get(o,
		    "released")), (long long)json_integer_value(
		    json_object_get(o, "kept")));
		ret = 0;
	}
	json_decref(o);
	free(reply);
	return ret;
}

/*
 * discard ORIGIN SEQ: through the daemon if it runs (its state stays
 * coherent, the journal has it), else on the database.
 */
static int
ctl_discard(struct ctl *c, int argc, char **argv)
{
	json_t		*o = NULL;
	json_error_t	 jerr;
	char		*reply, *end, req[128];
	unsigned long long seq;
	int		 n = -1;

	(void)argc;
	seq = strtoull(argv[1], &end, 10);
	if (*argv[1] == '\0' || *end != '\0' || seq == 0 ||
	    strlen(argv[0]) > 32) {
		fprintf(stderr, "labsyncctl: discard ORIGIN SEQ: bad origin "
		    "or sequence\n");
		return 2;
	}
	snprintf(req, sizeof(req), "discard %s %llu", argv[0], seq);
	if ((reply = ctl_request(c, req, 10000)) != NULL) {
		if ((o = json_loads(reply, 0, &jerr)) != NULL &&
		    json_is_true(json_object_get(o, "ok")))
			n = (int)json_integer_value(json_object_get(o,
			    "discarded"));
		json_decref(o);
		free(reply);
	} else if (ctl_open(c, STORE_CLIENT) == 0)
		n = aside_discard(c->store, argv[0], seq);
	if (n == -1) {
		fprintf(stderr, "labsyncctl: discard failed\n");
		return 1;
	}
	if (n == 0) {
		fprintf(stderr, "labsyncctl: no kept change %s #%llu\n",
		    argv[0], seq);
		return 1;
	}
	printf("discarded %d kept parts of %s #%llu\n", n, argv[0], seq);
	return 0;
}

static int
ctl_status(struct ctl *c, int argc, char **argv)
{
	json_t		*o, *v, *p;
	json_error_t	 jerr;
	const char	*k, *fp, *pf;
	size_t		 i;
	char		*reply;

	(void)argc;
	(void)argv;
	if ((reply = ctl_request(c, "status", 5000)) == NULL)
		return ctl_not_running(c);
	if (c->flag) {
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
	fp = json_string_value(json_object_get(o, "fingerprint"));
	printf("node %s (%s), %s, %lld pending, schema %.12s\n",
	    json_string_value(json_object_get(o, "node")),
	    json_string_value(json_object_get(o, "role")),
	    json_string_value(json_object_get(o, "phase")),
	    (long long)json_integer_value(json_object_get(o, "pending")),
	    fp != NULL ? fp : "?");
	printf("vector:");
	json_object_foreach(json_object_get(o, "vector"), k, v)
		printf(" %s=%lld", k, (long long)json_integer_value(v));
	printf("\n");
	v = json_object_get(o, "log");
	printf("log: %lld changes, %lld bytes\n", (long long)
	    json_integer_value(json_object_get(v, "changes")), (long long)
	    json_integer_value(json_object_get(v, "bytes")));
	json_array_foreach(json_object_get(o, "peers"), i, p) {
		json_t *lc = json_object_get(p, "last_contact_s");
		json_t *ea = json_object_get(p, "last_error_age_s");
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
		if ((pf = json_string_value(json_object_get(p,
		    "fingerprint"))) != NULL)
			printf(", schema %.12s%s", pf, fp != NULL &&
			    strcmp(pf, fp) != 0 ? " (differs)" : "");
		ctl_status_delivery(p);
		if (json_is_object(json_object_get(p, "snapshot")))
			printf(", snapshot: %lld of %lld rows",
			    (long long)json_integer_value(json_object_get(
			    json_object_get(p, "snapshot"), "rows")),
			    (long long)json_integer_value(json_object_get(
			    json_object_get(p, "snapshot"), "rows_total")));
		ctl_status_log(p);
		if (e != NULL && e[0] != '\0' && json_is_real(ea))
			printf(", last error %.0f s ago: %s",
			    json_real_value(ea), e);
		else if (e != NULL && e[0] != '\0')
			printf(", last error: %s", e);
		printf("\n");
	}
	json_decref(o);
	return 0;
}

/* One synced column: a line of text, or into a JSON array (arg). */
static void
ctl_schema_column(void *arg, const char *table, const char *column,
    const char *decl, int pk)
{
	if (arg != NULL) {
		json_array_append_new(arg, json_pack("{s:s, s:s, s:s, s:b}",
		    "table", table, "column", column, "type", decl,
		    "primary_key", pk));
		return;
	}
	printf("%s\t%s\t%s%s\n", table, column, decl, pk ?
	    "\tprimary key" : "");
}

/* schema [--json]: the synced tables' columns, read from the database. */
static int
ctl_schema(struct ctl *c, int argc, char **argv)
{
	json_t	*a = NULL;

	(void)argc;
	(void)argv;
	if (c->flag && (a = json_array()) == NULL) {
		fprintf(stderr, "labsyncctl: out of memory\n");
		return 1;
	}
	schema_columns(c->store, ctl_schema_column, a);
	if (a != NULL) {
		json_dumpf(a, stdout, JSON_COMPACT);
		printf("\n");
		json_decref(a);
	}
	return 0;
}

/* help [COMMAND]: the usage to stdout, or one command's. */
static int
ctl_help(struct ctl *c, int argc, char **argv)
{
	const struct ctl_cmd	*cmd;

	(void)c;
	if (argc == 0) {
		ctl_usage(stdout);
		return 0;
	}
	if ((cmd = ctl_find(argv[0])) == NULL)
		return ctl_unknown(argv[0]);
	ctl_usage_cmd(stdout, cmd);
	printf("%s\n", cmd->help);
	if (cmd->needs & CTL_CONFIG)
		printf("needs: the configuration%s%s\n",
		    (cmd->needs & CTL_DB) == CTL_DB ? ", the database" : "",
		    (cmd->needs & CTL_DAEMON) == CTL_DAEMON ?
		    ", the running daemon" : "");
	else
		printf("needs: no configuration\n");
	return 0;
}

/* Check a command's arguments, see to its needs, run it: the exit status. */
static int
ctl_run(struct ctl *c, const struct ctl_cmd *cmd, int argc, char **argv)
{
	struct stat	 sb;

	c->cmd = cmd;
	if (cmd->flag != NULL && argc > 0 && strcmp(argv[0], cmd->flag) == 0) {
		c->flag = 1;
		argc--;
		argv++;
	}
	if (argc < cmd->min || (cmd->max != -1 && argc > cmd->max)) {
		ctl_usage_cmd(stderr, cmd);
		return 2;
	}
	if ((cmd->needs & CTL_CONFIG) && ctl_config(c) == -1)
		return 2;
	if ((cmd->needs & CTL_TABLE) == CTL_TABLE && !ctl_table_ok(c, argv[0]))
		return 2;
	if ((cmd->needs & CTL_WRITE) == CTL_WRITE &&
	    c->conf->role == CONFIG_ROLE_OBSERVER) {
		fprintf(stderr, "labsyncctl: node %s is an observer: local "
		    "writes are refused\n", c->conf->node_id);
		return 1;
	}
	if ((cmd->needs & CTL_WRITE) == CTL_WRITE &&
	    (cmd->needs & CTL_TABLE) == CTL_TABLE &&
	    config_table_synced(c->conf, argv[0]) &&
	    !config_table_writable(c->conf, argv[0])) {
		fprintf(stderr, "labsyncctl: node %s is a partner that may not "
		    "write table %s: local writes to it are refused\n",
		    c->conf->node_id, argv[0]);
		return 1;
	}
	if ((cmd->needs & CTL_DAEMON) == CTL_DAEMON &&
	    stat(c->conf->control, &sb) == -1)
		return ctl_not_running(c);
	if ((cmd->needs & CTL_DB) == CTL_DB && ctl_open(c, STORE_CLIENT) == -1)
		return 1;
	return cmd->run(c, argc, argv);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "help",	no_argument,	NULL,	'h' },
		{ "version",	no_argument,	NULL,	'V' },
		{ NULL,		0,		NULL,	0 }
	};
	struct ctl		 c;
	const struct ctl_cmd	*cmd;
	int			 ch, rc;

	memset(&c, 0, sizeof(c));
	c.path = CTL_DEFAULT_CONF;
	while ((ch = getopt_long(argc, argv, "+c:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			c.path = optarg;
			break;
		case 'h':
			ctl_usage(stdout);
			return 0;
		case 'V':
			printf("labsyncctl %s\n", LABSYNC_VERSION);
			return 0;
		default:
			ctl_usage(stderr);
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		ctl_usage(stderr);
		return 2;
	}
	if ((cmd = ctl_find(argv[0])) == NULL)
		return ctl_unknown(argv[0]);
	if (sodium_init() == -1) {
		fprintf(stderr, "labsyncctl: libsodium does not start\n");
		return 1;
	}
	rc = ctl_run(&c, cmd, argc - 1, argv + 1);
	sodium_memzero(c.pkey, sizeof(c.pkey));
	store_free(c.store);
	clock_free(c.clock);
	config_free(c.conf);
	return rc;
}
