/*
 * setup.c: labsyncctl setup, a node's first configuration in one command.
 * It asks nothing: from the node id, role and listen address it writes
 * the CURVE keypair and a config that labsyncd accepts, then prints on
 * stdout the [peer:ID] block that every other node appends to its own
 * config. Two nodes that exchange those blocks are done.
 *
 * Nothing is overwritten without --force, except a config without a node
 * id (such as the one the package ships): it configures nothing yet.
 */
#include <sys/stat.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>

#include "config.h"
#include "keys.h"
#include "setup.h"

#define SETUP_DIR		"/etc/labsync"
#define SETUP_DATABASE		"/var/lib/labsync/labsync.db"
#define SETUP_PUBLISH_PORT	7701
#define SETUP_SYNC_PORT		7702
/* The tables of config/schema.sql, as config/labsync.conf lists them. */
#define SETUP_TABLES	"labs, themes, activities, initiatives, " \
			"volunteer_offers, observations"
#define SETUP_LOCAL	"participants"
/* What a partner writes unless --writable says otherwise. */
#define SETUP_WRITABLE	"observations"

struct setup {
	const char	*id;
	const char	*role;
	const char	*writable;	/* a partner's tables */
	const char	*listen;
	const char	*host;
	const char	*dir;
	const char	*database;
	const char	*schema;
	long		 publish_port;
	long		 sync_port;
	int		 force;
	char		 hostname[256];
	char		*conf;		/* DIR/labsync.conf */
	char		*base;		/* DIR/labsync: .key and .pub */
};

static void
setup_usage(void)
{
	fprintf(stderr,
	    "usage: labsyncctl setup --id ID --role city|observer|partner "
	    "--listen ADDRESS\n"
	    "           [--writable TABLE,...] "
	    "           [--host NAME] [--publish-port PORT] "
	    "[--sync-port PORT]\n"
	    "           [--dir DIR] [--database FILE] [--schema FILE] "
	    "[--force]\n");
}

/* A word that can stand in an endpoint or a config value as it is. */
static int
setup_word_ok(const char *s)
{
	if (s[0] == '\0' || strlen(s) > 255)
		return 0;
	return strpbrk(s, " \t\r\n;#/=\"'") == NULL;
}

/* A path that can stand in a config value as it is. */
static int
setup_path_ok(const char *s)
{
	return s[0] != '\0' && strlen(s) < PATH_MAX &&
	    strpbrk(s, "\r\n;") == NULL && s[0] != ' ' &&
	    s[strlen(s) - 1] != ' ';
}

static int
setup_port(const char *arg, long *port)
{
	char	*end;

	errno = 0;
	*port = strtol(arg, &end, 10);
	return errno == 0 && *end == '\0' && end != arg && *port >= 1 &&
	    *port <= 65535 ? 0 : -1;
}

/* An address that binds every interface: it names no host to dial. */
static int
setup_wildcard(const char *addr)
{
	return strcmp(addr, "*") == 0 || strcmp(addr, "0.0.0.0") == 0 ||
	    strcmp(addr, "::") == 0 || strcmp(addr, "[::]") == 0;
}

/* tcp://ADDR:PORT, with an IPv6 address in brackets. */
static char *
setup_endpoint(const char *addr, long port)
{
	char	*ep;
	int	 v6 = strchr(addr, ':') != NULL && addr[0] != '[';

	if (asprintf(&ep, "tcp://%s%s%s:%ld", v6 ? "[" : "", addr,
	    v6 ? "]" : "", port) == -1)
		return NULL;
	return ep;
}

/* inih handler: note a non-empty [node] id. */
static int
setup_id_cb(void *arg, const char *section, const char *name,
    const char *value)
{
	int	*found = arg;

	if (strcmp(section, "node") == 0 && strcmp(name, "id") == 0 &&
	    value[0] != '\0')
		*found = 1;
	return 1;
}

/* Whether an existing config names a node (then it is kept). */
static int
setup_configured(const char *path)
{
	int	 found = 0;

	if (ini_parse(path, setup_id_cb, &found) == -1)
		return 1;	/* unreadable: keep it */
	return found;
}

static int
setup_args(struct setup *s, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "id",			required_argument, NULL, 'i' },
		{ "role",		required_argument, NULL, 'r' },
		{ "listen",		required_argument, NULL, 'l' },
		{ "host",		required_argument, NULL, 'H' },
		{ "publish-port",	required_argument, NULL, 'p' },
		{ "sync-port",		required_argument, NULL, 's' },
		{ "dir",		required_argument, NULL, 'd' },
		{ "database",		required_argument, NULL, 'b' },
		{ "schema",		required_argument, NULL, 'S' },
		{ "writable",		required_argument, NULL, 'w' },
		{ "force",		no_argument,	   NULL, 'f' },
		{ "help",		no_argument,	   NULL, 'h' },
		{ NULL,			0,		   NULL, 0 }
	};
	int	 ch;

	s->dir = SETUP_DIR;
	s->database = SETUP_DATABASE;
	s->publish_port = SETUP_PUBLISH_PORT;
	s->sync_port = SETUP_SYNC_PORT;
	optind = 0;	/* a fresh scan: labsyncctl's own options are done */
	while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (ch) {
		case 'i': s->id = optarg; break;
		case 'r': s->role = optarg; break;
		case 'l': s->listen = optarg; break;
		case 'H': s->host = optarg; break;
		case 'd': s->dir = optarg; break;
		case 'b': s->database = optarg; break;
		case 'S': s->schema = optarg; break;
		case 'w': s->writable = optarg; break;
		case 'f': s->force = 1; break;
		case 'p':
			if (setup_port(optarg, &s->publish_port) == -1)
				goto bad_port;
			break;
		case 's':
			if (setup_port(optarg, &s->sync_port) == -1)
				goto bad_port;
			break;
		default:
			setup_usage();
			return -1;
		}
	}
	if (optind != argc || s->id == NULL || s->role == NULL ||
	    s->listen == NULL) {
		setup_usage();
		return -1;
	}
	if (config_valid_id(s->id) == -1) {
		fprintf(stderr, "labsyncctl: setup: --id '%s': 1 to %d "
		    "characters of a-z, 0-9, '_' and '-'\n", s->id,
		    CONFIG_ID_MAX);
		return -1;
	}
	if (strcmp(s->role, "city") != 0 && strcmp(s->role, "observer") != 0 &&
	    strcmp(s->role, "partner") != 0) {
		fprintf(stderr, "labsyncctl: setup: --role '%s': city, "
		    "observer or partner\n", s->role);
		return -1;
	}
	if (s->writable != NULL && strcmp(s->role, "partner") != 0) {
		fprintf(stderr, "labsyncctl: setup: --writable is for "
		    "--role partner\n");
		return -1;
	}
	if (strcmp(s->role, "partner") == 0 && s->writable == NULL)
		s->writable = SETUP_WRITABLE;
	if (s->writable != NULL && (s->writable[0] == '\0' ||
	    strpbrk(s->writable, "\r\n;#=\"'") != NULL)) {
		fprintf(stderr, "labsyncctl: setup: --writable takes table "
		    "names separated by commas\n");
		return -1;
	}
	if (!setup_word_ok(s->listen) ||
	    (s->host != NULL && !setup_word_ok(s->host))) {
		fprintf(stderr, "labsyncctl: setup: --listen and --host take "
		    "an address or a host name\n");
		return -1;
	}
	if (s->host == NULL && setup_wildcard(s->listen)) {
		if (gethostname(s->hostname, sizeof(s->hostname) - 1) == -1 ||
		    !setup_word_ok(s->hostname)) {
			fprintf(stderr, "labsyncctl: setup: --listen %s names "
			    "no host for the peers: give --host\n", s->listen);
			return -1;
		}
		s->host = s->hostname;
	} else if (s->host == NULL)
		s->host = s->listen;
	if (s->publish_port == s->sync_port) {
		fprintf(stderr, "labsyncctl: setup: --publish-port and "
		    "--sync-port must differ\n");
		return -1;
	}
	if (!setup_path_ok(s->dir) || !setup_path_ok(s->database) ||
	    (s->schema != NULL && !setup_path_ok(s->schema))) {
		fprintf(stderr, "labsyncctl: setup: a path must not be empty "
		    "nor hold ';' or a line break\n");
		return -1;
	}
	return 0;
bad_port:
	fprintf(stderr, "labsyncctl: setup: '%s' is not a port (1 to "
	    "65535)\n", optarg);
	return -1;
}

/* The config file's text. */
static char *
setup_config_text(const struct setup *s)
{
	char	*buf = NULL, *pub = NULL, *sync = NULL;
	size_t	 len = 0;
	FILE	*f;
	int	 ok;

	if ((pub = setup_endpoint(s->listen, s->publish_port)) == NULL ||
	    (sync = setup_endpoint(s->listen, s->sync_port)) == NULL ||
	    (f = open_memstream(&buf, &len)) == NULL) {
		free(pub);
		free(sync);
		return NULL;
	}
	fprintf(f,
	    "; labsync.conf of node %s, written by \"labsyncctl setup\".\n"
	    "; Every key is explained in labsync.conf(5). Check the file "
	    "with\n"
	    ";   labsyncd -n -c %s\n"
	    ";\n"
	    "; Peers: append here the [peer:ID] block that \"labsyncctl "
	    "setup\"\n"
	    "; printed on each node this one talks to directly.\n"
	    "\n[node]\nid = %s\nrole = %s\ndatabase = %s\n",
	    s->id, s->conf, s->id, s->role, s->database);
	if (s->schema != NULL)
		fprintf(f, "schema = %s\n", s->schema);
	fprintf(f, "log_level = info\n"
	    "\n[listen]\npublish = %s\nsync = %s\n"
	    "\n[security]\nsecret_key_file = %s.key\n"
	    "\n[sync]\ntables = %s\nlocal = %s\n",
	    pub, sync, s->base, SETUP_TABLES, SETUP_LOCAL);
	if (s->writable != NULL)
		fprintf(f, "writable = %s\n", s->writable);
	ok = ferror(f) == 0;
	if (fclose(f) != 0)
		ok = 0;
	free(pub);
	free(sync);
	if (!ok) {
		free(buf);
		return NULL;
	}
	return buf;
}

/*
 * Write the config through a temporary file that labsyncd's own parser
 * checks first; then rename it over PATH (replace) or link it (an
 * existing file stays).
 */
static int
setup_write_config(const struct setup *s, const char *text, int replace)
{
	struct config	*conf = NULL;
	char		*tmp = NULL, *errors = NULL;
	int		 fd = -1, ret = -1;
	size_t		 len = strlen(text);

	if (asprintf(&tmp, "%s.XXXXXX", s->conf) == -1) {
		tmp = NULL;
		fprintf(stderr, "labsyncctl: setup: out of memory\n");
		goto done;
	}
	if ((fd = mkstemp(tmp)) == -1) {
		fprintf(stderr, "labsyncctl: setup: %s: %s\n", tmp,
		    strerror(errno));
		free(tmp);
		tmp = NULL;
		goto done;
	}
	if (fchmod(fd, 0644) == -1 || write(fd, text, len) != (ssize_t)len ||
	    fsync(fd) == -1) {
		fprintf(stderr, "labsyncctl: setup: %s: %s\n", tmp,
		    strerror(errno));
		goto done;
	}
	if (close(fd) == -1) {
		fd = -1;
		fprintf(stderr, "labsyncctl: setup: %s: %s\n", tmp,
		    strerror(errno));
		goto done;
	}
	fd = -1;
	if ((conf = config_load(tmp, &errors)) == NULL) {
		fprintf(stderr, "labsyncctl: setup: the config made is not "
		    "valid:\n%s", errors != NULL ? errors : "");
		goto done;
	}
	if (replace ? rename(tmp, s->conf) == -1 : link(tmp, s->conf) == -1) {
		fprintf(stderr, "labsyncctl: setup: %s: %s\n", s->conf,
		    strerror(errno));
		goto done;
	}
	ret = 0;
done:
	if (fd != -1)
		close(fd);
	if (tmp != NULL && (ret == -1 || !replace))
		unlink(tmp);
	config_free(conf);
	free(errors);
	free(tmp);
	return ret;
}

/* Refuse before writing anything if a file would be overwritten. */
static int
setup_check_existing(const struct setup *s, int *replace_conf)
{
	const char	*ext[] = { ".key", ".pub" };
	char		 path[PATH_MAX];
	int		 refused = 0;

	*replace_conf = s->force;
	for (size_t i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s%s", s->base, ext[i]);
		if (!s->force && access(path, F_OK) == 0) {
			fprintf(stderr, "labsyncctl: setup: %s exists "
			    "(--force replaces it)\n", path);
			refused = 1;
		}
	}
	if (!s->force && access(s->conf, F_OK) == 0) {
		if (setup_configured(s->conf)) {
			fprintf(stderr, "labsyncctl: setup: %s exists and "
			    "names a node (--force replaces it)\n", s->conf);
			refused = 1;
		} else
			*replace_conf = 1;	/* no node id: nothing lost */
	}
	return refused ? -1 : 0;
}

int
setup_main(int argc, char **argv)
{
	struct setup	 s;
	char		 pub[41], err[512], *text = NULL, *ppub = NULL;
	char		*psync = NULL;
	int		 replace, rc = 1;

	memset(&s, 0, sizeof(s));
	if (setup_args(&s, argc, argv) == -1)
		return 2;
	if (asprintf(&s.conf, "%s/labsync.conf", s.dir) == -1 ||
	    asprintf(&s.base, "%s/labsync", s.dir) == -1) {
		fprintf(stderr, "labsyncctl: setup: out of memory\n");
		goto done;
	}
	if (strlen(s.conf) >= PATH_MAX) {
		fprintf(stderr, "labsyncctl: setup: --dir is too long\n");
		rc = 2;
		goto done;
	}
	if (mkdir(s.dir, 0755) == -1 && errno != EEXIST) {
		fprintf(stderr, "labsyncctl: setup: %s: %s\n", s.dir,
		    strerror(errno));
		goto done;
	}
	if (setup_check_existing(&s, &replace) == -1)
		goto done;
	if ((text = setup_config_text(&s)) == NULL ||
	    (ppub = setup_endpoint(s.host, s.publish_port)) == NULL ||
	    (psync = setup_endpoint(s.host, s.sync_port)) == NULL) {
		fprintf(stderr, "labsyncctl: setup: out of memory\n");
		goto done;
	}
	if (keys_generate(s.base, s.force, pub, err, sizeof(err)) == -1) {
		fprintf(stderr, "labsyncctl: setup: %s\n", err);
		goto done;
	}
	if (setup_write_config(&s, text, replace) == -1) {
		snprintf(err, sizeof(err), "%s.key", s.base);
		unlink(err);
		snprintf(err, sizeof(err), "%s.pub", s.base);
		unlink(err);
		goto done;
	}
	printf("[peer:%s]\nrole = %s\n", s.id, s.role);
	if (s.writable != NULL)
		printf("writable = %s\n", s.writable);
	printf("publish = %s\nsync = %s\npublic_key = %s\n", ppub, psync,
	    pub);
	fflush(stdout);
	fprintf(stderr, "labsyncctl: setup: wrote %s, %s.key (the secret "
	    "key, mode 0600) and %s.pub.\n"
	    "Append the [peer:%s] block above to the config of every node "
	    "that talks to %s,\nand their blocks to %s.\n",
	    s.conf, s.base, s.base, s.id, s.id, s.conf);
	rc = 0;
done:
	free(text);
	free(ppub);
	free(psync);
	free(s.conf);
	free(s.base);
	return rc;
}
