/*
 * main.c: labsyncd start-up, signals, the periodic timer and shutdown.
 *
 * One libevent base runs everything. Start-up order matters: the database
 * is opened (and the schema checked) before any socket is bound, and
 * systemd hears READY=1 only once every socket is bound.
 */
#include <sys/file.h>
#include <sys/inotify.h>

#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>
#include <systemd/sd-daemon.h>
#include <sodium.h>
#include <zmq.h>

#include "bus.h"
#include "catchup.h"
#include "clock.h"
#include "config.h"
#include "control.h"
#include "http.h"
#include "keys.h"
#include "labsyncd.h"
#include "log.h"
#include "main.h"
#include "monitor.h"
#include "peer.h"
#include "store.h"
#include "sync.h"
#include "version.h"
#include "zap.h"

static const struct option main_longopts[] = {
	{ "help",	no_argument,	NULL,	'h' },
	{ "version",	no_argument,	NULL,	'V' },
	{ NULL,		0,		NULL,	0 }
};

/* After a WAL event without a visible commit: first and last look. */
#define MAIN_RECHECK_FIRST_US	250
#define MAIN_RECHECK_LAST_US	1600000

/* Compaction: one step a second, of at most this many log entries (a
   few milliseconds of the loop; 5,000 entries go in five seconds). */
#define MAIN_COMPACT_MS		1000
#define MAIN_COMPACT_MAX	1000

/* The usage: to stdout and exit 0 when asked for (-h), else to stderr
   and exit 2. */
static void
usage(FILE *out, int status)
{
	fprintf(out, "usage: labsyncd [-dhnV] [-c file]\n"
	    "  -c file        configuration (default "
	    "/etc/labsync/labsync.conf)\n"
	    "  -n             check the configuration and exit\n"
	    "  -d             log debug messages (kept across reloads)\n"
	    "  -h, --help     print this help and exit\n"
	    "  -V, --version  print the version and exit\n");
	exit(status);
}

static void *
main_bind(struct labsyncd *env, int type, const char *endpoint)
{
	void	*z;
	int64_t	 maxmsg = (int64_t)env->conf->max_message_size;
	/*
	 * The live feed may drop (catch-up heals it), so its queue stays
	 * short: a slow subscriber costs at most this many messages of up
	 * to half of max_message_size, not unbounded memory.
	 */
	int	 zero = 0, hwm = 8;

	if ((z = zmq_socket(env->zctx, type)) == NULL)
		fatalx("zmq_socket: %s", zmq_strerror(zmq_errno()));
	zmq_setsockopt(z, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
	zmq_setsockopt(z, ZMQ_LINGER, &zero, sizeof(zero));
	if (type == ZMQ_PUB)
		zmq_setsockopt(z, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	if (keys_server(z, &env->keys) == -1)
		fatalx("CURVE on %s: %s", endpoint, zmq_strerror(zmq_errno()));
	if (zmq_bind(z, endpoint) == -1)
		fatalx("cannot listen on %s: %s", endpoint,
		    zmq_strerror(zmq_errno()));
	return z;
}

/*
 * The database's schema or the synced tables' layout changed (a reload,
 * an ALTER TABLE by another writer): the store has its new layout and
 * triggers; what the daemon derives from it follows.
 */
void
main_schema_changed(struct labsyncd *env)
{
	uint8_t	 fp[32];
	int	 released, kept;

	schema_fingerprint(env->store, fp);
	if (memcmp(fp, env->fingerprint, sizeof(fp)) != 0)
		log_info("schema: fingerprint %02x%02x%02x%02x%02x%02x "
		    "(was %02x%02x%02x%02x%02x%02x)", fp[0], fp[1], fp[2],
		    fp[3], fp[4], fp[5], env->fingerprint[0],
		    env->fingerprint[1], env->fingerprint[2],
		    env->fingerprint[3], env->fingerprint[4],
		    env->fingerprint[5]);
	memcpy(env->fingerprint, fp, sizeof(fp));
	/* what was kept aside for a table or column we lacked may fit now */
	if (sync_release_kept(env, 0, &released, &kept) == -1)
		log_warnx("schema: kept-aside changes not tried again; "
		    "labsyncctl retry tries them");
	else if (released > 0 || kept > 0)
		log_info("schema: %d kept-aside changes applied, %d still "
		    "kept", released, kept);
}

/* Another connection committed? Then follow a changed schema first, and
   publish what it wrote: 1; 0 if nothing changed. */
static int
main_changed_elsewhere(struct labsyncd *env)
{
	if (!store_changed_elsewhere(env->store))
		return 0;
	if (store_schema_check(env->store) == 1)
		main_schema_changed(env);
	sync_local(env);
	return 1;
}

/* Any commit to the database, by anybody, writes the WAL file. */
static void
main_inotify_cb(evutil_socket_t fd, short what, void *arg)
{
	struct labsyncd	*env = arg;
	char		 buf[4096];

	(void)what;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	main_changed_elsewhere(env);
	/*
	 * The WAL is written before the commit is published in the
	 * wal-index (shared memory: no event; a writer may also fsync in
	 * between), so this can run too early to see it, and no further
	 * event comes: look again after 250 us, then at doubling intervals
	 * up to 1.6 s. A look is one read of the wal-index.
	 */
	env->recheck_us = MAIN_RECHECK_FIRST_US;
	if (!evtimer_pending(env->ev_recheck, NULL)) {
		struct timeval later = { 0, MAIN_RECHECK_FIRST_US };

		evtimer_add(env->ev_recheck, &later);
	}
}

static void
main_recheck_cb(evutil_socket_t fd, short what, void *arg)
{
	struct labsyncd	*env = arg;
	struct timeval	 later;

	(void)fd;
	(void)what;
	if (main_changed_elsewhere(env))
		return;
	if ((env->recheck_us *= 2) > MAIN_RECHECK_LAST_US)
		return;
	later.tv_sec = env->recheck_us / 1000000;
	later.tv_usec = env->recheck_us % 1000000;
	evtimer_add(env->ev_recheck, &later);
}

static void
main_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	sync_local(arg);
}

static void
main_watch_wal(struct labsyncd *env)
{
	char	*wal;

	if (asprintf(&wal, "%s-wal", env->conf->database) == -1)
		fatal("asprintf");
	env->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (env->inotify_fd == -1 ||
	    inotify_add_watch(env->inotify_fd, wal, IN_MODIFY) == -1) {
		log_warn("inotify on %s; checking for other writers every "
		    "100 ms instead", wal);
		if (env->inotify_fd != -1)
			close(env->inotify_fd);
		env->inotify_fd = -1;
	} else {
		if ((env->ev_inotify = event_new(env->base, env->inotify_fd,
		    EV_READ | EV_PERSIST, main_inotify_cb, env)) == NULL)
			fatalx("event_new");
		event_add(env->ev_inotify, NULL);
	}
	free(wal);
}

/*
 * The configured peers to compaction: what each confirmed holding, and
 * forget those no longer configured.
 */
static void
main_compact_peers(struct labsyncd *env)
{
	char	**names;

	if ((names = calloc(env->conf->npeers + 1, sizeof(*names))) == NULL) {
		log_warn("compaction");
		return;
	}
	for (size_t i = 0; i < env->conf->npeers; i++)
		names[i] = env->conf->peers[i].name;
	if (compact_peers(env->store, names, env->conf->npeers) == -1)
		log_warnx("compaction: keeping the peers it had");
	free(names);
}

/* A step of log compaction, once a second: small, so that the loop
   stays responsive, and also when the node is idle. */
static void
main_compact(struct labsyncd *env, uint64_t now)
{
	uint64_t	 t0;
	int		 n;

	if (now - env->last_compact_ms < MAIN_COMPACT_MS)
		return;
	env->last_compact_ms = now;
	t0 = clock_mono_us();
	if (compact_step(env->store, now, (uint64_t)env->conf->compact_after_ms,
	    MAIN_COMPACT_MAX, &n) == 0 && n > 0)
		log_debug("compaction: dropped %d log entries in %.1f ms", n,
		    (clock_mono_us() - t0) / 1000.0);
}

/* The periodic work, one timer: heartbeats, liveness, anti-entropy,
   compaction. */
static void
main_cron_cb(evutil_socket_t fd, short what, void *arg)
{
	struct labsyncd	*env = arg;
	uint64_t	 now = clock_system_ms();
	int		 anti_entropy = 0;

	(void)fd;
	(void)what;
	/* without inotify this is how other writers are noticed; with it,
	   a last safety net */
	main_changed_elsewhere(env);
	if (now - env->last_heartbeat_ms >=
	    (uint64_t)env->conf->heartbeat_interval_ms) {
		env->last_heartbeat_ms = now;
		sync_heartbeat(env);
	}
	if (now - env->last_anti_entropy_ms >=
	    (uint64_t)env->conf->anti_entropy_interval_ms) {
		env->last_anti_entropy_ms = now;
		anti_entropy = 1;
	}
	for (size_t i = 0; i < env->npeers; i++)
		peer_cron(env->peers[i], now, anti_entropy);
	if (env->phase == PHASE_STARTING)
		peer_check_phase(env);
	main_compact(env, now);
}

/* systemd's watchdog: pinged from the loop itself, so a stuck loop is
   noticed and the service restarted. */
static void
main_watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	sd_notify(0, "WATCHDOG=1");
}

static void
main_stop_cb(evutil_socket_t sig, short what, void *arg)
{
	struct labsyncd	*env = arg;

	(void)what;
	log_info("signal %d: stopping", (int)sig);
	sd_notify(0, "STOPPING=1");
	event_base_loopbreak(env->base);
}

/* Same peer, same endpoints, role and keys: its session can stay. */
static int
main_peer_same(const struct config_peer *a, const struct config_peer *b)
{
	if (a->role != b->role || a->npublic_keys != b->npublic_keys ||
	    (a->publish == NULL) != (b->publish == NULL))
		return 0;
	if (a->publish != NULL && (strcmp(a->publish, b->publish) != 0 ||
	    strcmp(a->sync, b->sync) != 0))
		return 0;
	for (int i = 0; i < a->npublic_keys; i++)
		if (strcmp(a->public_keys[i], b->public_keys[i]) != 0)
			return 0;
	return 1;
}

/* Two lists of "table.column", in any order, the same? */
static int
main_same_list(char *const *a, size_t na, char *const *b, size_t nb)
{
	size_t	 i, j;

	if (na != nb)
		return 0;
	for (i = 0; i < na; i++) {
		for (j = 0; j < nb && strcasecmp(a[i], b[j]) != 0; j++)
			;
		if (j == nb)
			return 0;
	}
	return 1;
}

/*
 * [sync] local and pseudonymise columns must be columns of their table
 * (in the database or the schema file), not its key: each refusal to
 * out as "file:line: message". -1 if any (or they cannot be read).
 */
static int
main_check_columns(const struct config *conf, FILE *out)
{
	static const struct {
		const char	*key;
		size_t		 list;	/* 0: local_columns, 1: pseudonymise */
	} keys[] = { { "local", 0 }, { "pseudonymise", 1 } };
	char	 err[512];
	int	*kind, ret = 0;

	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		char *const *cols = keys[k].list ? conf->pseudonymise :
		    conf->local_columns;
		size_t n = keys[k].list ? conf->npseudonymise :
		    conf->nlocal_columns;
		int line = keys[k].list ? conf->pseudonymise_line :
		    conf->local_line;

		if (n == 0)
			continue;
		if ((kind = calloc(n, sizeof(*kind))) == NULL)
			fatal("%s", __func__);
		if (schema_check_columns(conf->database, conf->schema, cols, n,
		    kind, err, sizeof(err)) == -1) {
			fprintf(out, "%s:%d: %s: %s\n", conf->path, line,
			    keys[k].key, err);
			free(kind);
			return -1;
		}
		for (size_t i = 0; i < n; i++) {
			if (kind[i] == SCHEMA_COLUMN_OK)
				continue;
			fprintf(out, "%s:%d: column '%s' in %s: %s\n",
			    conf->path, line, cols[i], keys[k].key,
			    kind[i] == SCHEMA_COLUMN_PK ? "a primary key is "
			    "always sent" : "no such column in the database "
			    "or the schema file");
			ret = -1;
		}
		free(kind);
	}
	return ret;
}

static int
main_streq(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	    (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* What a reload cannot change: the node, its database and sockets. */
static const char *
main_reload_fixed(const struct config *a, const struct config *b)
{
	if (strcmp(a->node_id, b->node_id) != 0)
		return "[node] id";
	if (a->role != b->role)
		return "[node] role";
	if (strcmp(a->database, b->database) != 0)
		return "[node] database";
	if (strcmp(a->control, b->control) != 0)
		return "[node] control";
	if (strcmp(a->listen_publish, b->listen_publish) != 0 ||
	    strcmp(a->listen_sync, b->listen_sync) != 0)
		return "[listen]";
	if (a->insecure != b->insecure ||
	    (a->secret_key_file == NULL) != (b->secret_key_file == NULL) ||
	    (a->secret_key_file != NULL &&
	    strcmp(a->secret_key_file, b->secret_key_file) != 0))
		return "[security]";
	if (!main_same_list(a->local_columns, a->nlocal_columns,
	    b->local_columns, b->nlocal_columns) ||
	    !main_same_list(a->pseudonymise, a->npseudonymise,
	    b->pseudonymise, b->npseudonymise) ||
	    !main_streq(a->pseudonym_key_file, b->pseudonym_key_file))
		return "[sync] local columns, pseudonymise or "
		    "pseudonym_key_file";
	/* tables may be added, not removed */
	for (size_t i = 0; i < a->ntables; i++)
		if (!config_table_synced(b, a->tables[i]))
			return "[sync] tables (a table removed)";
	return NULL;
}

/* What a reload accepts but only a restart applies: say so. */
static void
main_reload_later(const struct config *a, const struct config *b)
{
	if (a->max_clock_skew_ms != b->max_clock_skew_ms ||
	    a->cache_size_mib != b->cache_size_mib)
		log_warnx("reload: [sync] max_clock_skew and cache_size take "
		    "effect at the next restart");
	if (!main_streq(a->http_host, b->http_host) ||
	    a->http_port != b->http_port ||
	    !main_streq(a->http_token_file, b->http_token_file))
		log_warnx("reload: [http] takes effect at the next restart");
}

/*
 * SIGHUP: parse the file into a fresh config and swap it in only if it
 * is whole (relayd's parent_reload); a broken file leaves the running
 * config alone. Peers whose settings did not change keep their sessions;
 * removed peers are dropped, and ZAP, which reads the current config on
 * every handshake, refuses their keys from now on.
 */
/* With one peer, what we apply came from it or through it: no relay. */
static void
main_relay_policy(struct labsyncd *env)
{
	store_set_relay(env->store, env->npeers != 1);
}

static void
main_hup_cb(evutil_socket_t sig, short what, void *arg)
{
	struct labsyncd	*env = arg;
	struct config	*conf, *old = env->conf;
	struct peer	**peers;
	size_t		 npeers = 0;
	const char	*fixed;
	char		*errors = NULL, err[512];
	int		 changed;

	(void)sig;
	(void)what;
	log_info("SIGHUP: reloading %s", old->path);
	if ((conf = config_load(old->path, &errors)) == NULL) {
		if (errors != NULL && errors[0] != '\0' &&
		    errors[strlen(errors) - 1] == '\n')
			errors[strlen(errors) - 1] = '\0';
		log_warnx("reload refused, keeping the running "
		    "configuration:\n%s", errors != NULL ? errors : "");
		free(errors);
		return;
	}
	if ((fixed = main_reload_fixed(old, conf)) != NULL) {
		log_warnx("reload refused: %s changed, which needs a restart; "
		    "keeping the running configuration", fixed);
		config_free(conf);
		return;
	}
	if ((peers = calloc(conf->npeers + 1, sizeof(*peers))) == NULL) {
		log_warn("reload refused, keeping the running configuration");
		config_free(conf);
		return;
	}
	/* the schema first: refused, the whole reload is */
	if ((changed = store_schema_reload(env->store, conf->schema,
	    conf->tables, conf->ntables, err, sizeof(err))) == -1) {
		log_warnx("reload refused, keeping the running configuration "
		    "and schema: %s", err);
		free(peers);
		config_free(conf);
		return;
	}
	if (changed)
		main_schema_changed(env);
	main_reload_later(old, conf);
	env->conf = conf;
	for (size_t i = 0; i < conf->npeers; i++) {
		struct peer *p = peer_find(env, conf->peers[i].name);

		if (p != NULL && main_peer_same(peer_conf(p), &conf->peers[i])) {
			peers[npeers++] = p;
			continue;
		}
		if ((p = peer_new(env, &conf->peers[i])) == NULL) {
			log_warnx("peer %s: cannot start", conf->peers[i].name);
			continue;
		}
		log_info("peer %s: %s", conf->peers[i].name,
		    peer_find(env, conf->peers[i].name) ? "changed" : "added");
		peers[npeers++] = p;
	}
	for (size_t i = 0; i < env->npeers; i++) {
		size_t j;

		for (j = 0; j < npeers && peers[j] != env->peers[i]; j++)
			;
		if (j == npeers) {
			log_info("peer %s: removed",
			    peer_name(env->peers[i]));
			peer_free(env->peers[i]);
		}
	}
	free(env->peers);
	env->peers = peers;
	env->npeers = npeers;
	main_relay_policy(env);
	main_compact_peers(env);
	config_free(old);
	log_setlevel(env->debug ? LOG_LEVEL_DEBUG : conf->log_level);
	log_info("configuration reloaded: %zu peers, log level %s", npeers,
	    log_level_name(log_getlevel()));
}

/*
 * What the start reads besides the configuration, checked before
 * anything is created, by the start and by -n alike: the secret key (its
 * mode, or systemd's credential) and the HTTP token (peers' public key
 * files are read with the configuration). The keys stay in *k.
 */
static int
main_check_files(const struct config *conf, struct keys *k)
{
	char		 err[600], token[512];

	if (keys_load(conf, k, err, sizeof(err)) == -1) {
		log_error("%s: %s", conf->path, err);
		return -1;
	}
	if (conf->http_host != NULL && conf->http_token_file != NULL) {
		if (keys_read_private(conf->http_token_file, token,
		    sizeof(token), NULL, err, sizeof(err)) == -1) {
			log_error("%s: token_file %s", conf->path, err);
			keys_clear(k);
			return -1;
		}
		sodium_memzero(token, sizeof(token));
	}
	return 0;
}

/* The control socket we bound, removed on every exit (fatal ones too). */
static char	*main_control_path;

static void
main_unlink_control(void)
{
	if (main_control_path != NULL)
		unlink(main_control_path);
	free(main_control_path);
	main_control_path = NULL;
}

static int
main_lock(const char *database)
{
	char	*path;
	int	 fd;

	if (asprintf(&path, "%s.lock", database) == -1)
		return -1;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd == -1 || flock(fd, LOCK_EX | LOCK_NB) == -1) {
		log_warn("%s: another labsyncd uses this database", path);
		free(path);
		return -1;
	}
	free(path);
	return fd;
}

int
main(int argc, char *argv[])
{
	struct labsyncd		 env;
	struct store_options	 so;
	struct store_partner	*partners;
	const char		*path = "/etc/labsync/labsync.conf";
	char			*errors = NULL, err[512];
	int			 ch, check = 0, debug = 0, refused, lockfd;
	struct timeval		 tick;
	uint64_t		 watchdog_usec = 0;
	uint8_t			 pkey[32];
	int64_t			 tick_ms;
	void			*router;

	/*
	 * Buffers of a bulk load (messages, outbox) are large and brief:
	 * a fixed threshold keeps them in mappings of their own, returned
	 * when freed, instead of glibc raising it and leaving them as holes
	 * between the page cache's pages for months.
	 */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	while ((ch = getopt_long(argc, argv, "c:dnhV", main_longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'd':
			debug = 1;
			break;
		case 'n':
			check = 1;
			break;
		case 'h':
			usage(stdout, 0);
			break;
		case 'V':
			printf("labsyncd %s\n", LABSYNC_VERSION);
			return 0;
		default:
			usage(stderr, 2);
		}
	}
	if (optind != argc)
		usage(stderr, 2);

	memset(&env, 0, sizeof(env));
	if ((env.conf = config_load(path, &errors)) == NULL) {
		fprintf(stderr, "%s", errors != NULL ? errors : "");
		if (errors != NULL && errors[0] != '\0' &&
		    errors[strlen(errors) - 1] != '\n')
			fputc('\n', stderr);
		free(errors);
		return EX_CONFIG;
	}
	if (main_check_columns(env.conf, stderr) == -1) {
		config_free(env.conf);
		return EX_CONFIG;
	}
	if (check) {
		log_init("labsyncd", LOG_LEVEL_ERROR);
		if (main_check_files(env.conf, &env.keys) == -1) {
			config_free(env.conf);
			return EX_CONFIG;
		}
		keys_clear(&env.keys);
		if (schema_check_file(env.conf->database, env.conf->schema,
		    stdout, err, sizeof(err)) == -1) {
			fprintf(stderr, "%s: %s\n", path, err);
			config_free(env.conf);
			return EX_CONFIG;
		}
		printf("configuration OK\n");
		config_free(env.conf);
		return 0;
	}
	env.debug = debug;
	log_init("labsyncd", debug ? LOG_LEVEL_DEBUG : env.conf->log_level);
	log_info("labsyncd %s starting: node %s (%s), database %s",
	    LABSYNC_VERSION, env.conf->node_id,
	    config_role_name(env.conf->role), env.conf->database);
	if (env.conf->insecure)
		log_warnx("insecure = true: no encryption and no "
		    "authentication; loopback only, for tests and demos");
	signal(SIGPIPE, SIG_IGN);

	if (main_check_files(env.conf, &env.keys) == -1) {
		config_free(env.conf);
		return EX_CONFIG;
	}
	if (env.conf->pseudonym_key_file != NULL &&
	    keys_read_pseudonym(env.conf->pseudonym_key_file, pkey, err,
	    sizeof(err)) == -1) {
		log_error("%s: pseudonym_key_file: %s", path, err);
		keys_clear(&env.keys);
		config_free(env.conf);
		return EX_CONFIG;
	}
	if ((lockfd = main_lock(env.conf->database)) == -1) {
		keys_clear(&env.keys);
		config_free(env.conf);
		return 1;
	}
	if ((env.clock = clock_new(NULL)) == NULL)
		fatal("clock_new");
	memset(&so, 0, sizeof(so));
	so.path = env.conf->database;
	so.node_id = env.conf->node_id;
	so.schema_path = env.conf->schema;
	so.observer = env.conf->role == CONFIG_ROLE_OBSERVER;
	so.partner = env.conf->role == CONFIG_ROLE_PARTNER;
	so.writable = env.conf->writable;
	so.nwritable = env.conf->nwritable;
	so.tables = env.conf->tables;
	so.ntables = env.conf->ntables;
	so.local_columns = env.conf->local_columns;
	so.nlocal_columns = env.conf->nlocal_columns;
	so.pseudonymise = env.conf->pseudonymise;
	so.npseudonymise = env.conf->npseudonymise;
	so.pseudonym_key = env.conf->pseudonym_key_file != NULL ? pkey : NULL;
	so.cache_size_mib = env.conf->cache_size_mib;
	so.max_clock_skew_ms = env.conf->max_clock_skew_ms;
	so.mode = STORE_DAEMON;
	so.refused = &refused;
	if ((partners = calloc(env.conf->npeers + 1,
	    sizeof(*partners))) == NULL)
		fatal("partners");
	for (size_t i = 0; i < env.conf->npeers; i++) {
		struct config_peer *cp = &env.conf->peers[i];

		if (cp->role != CONFIG_ROLE_PARTNER)
			continue;
		partners[so.npartners].origin = cp->name;
		partners[so.npartners].tables = cp->writable;
		partners[so.npartners++].ntables = cp->nwritable;
	}
	so.partners = partners;
	env.store = store_open(&so, env.clock, err, sizeof(err));
	free(partners);
	sodium_memzero(pkey, sizeof(pkey));
	if (env.store == NULL) {
		log_error("%s: %s", path, err);
		clock_free(env.clock);
		keys_clear(&env.keys);
		config_free(env.conf);
		close(lockfd);
		return refused ? EX_CONFIG : 1;
	}
	schema_fingerprint(env.store, env.fingerprint);
	if (checkpoint_start(env.store, STORE_CHECKPOINT_PAGES) == -1)
		log_warnx("checkpoints stay on the event loop");

	if ((env.base = event_base_new()) == NULL)
		fatalx("event_base_new");
	if ((env.zctx = zmq_ctx_new()) == NULL)
		fatalx("zmq_ctx_new");
	/* before any bind: a CURVE server without ZAP admits everybody */
	if (env.keys.enabled && zap_open(&env) == -1)
		fatalx("cannot start the ZAP handler: refusing to run open");
	env.pub = bus_new(env.base, main_bind(&env, ZMQ_PUB,
	    env.conf->listen_publish), "publish", NULL, NULL);
	router = main_bind(&env, ZMQ_ROUTER, env.conf->listen_sync);
	env.server = catchup_server_new(&env, router, peer_catchup_find);
	if (env.pub == NULL || env.server == NULL)
		fatalx("cannot watch sockets");
	if (monitor_open(&env, router, "sync") == -1 ||
	    monitor_open(&env, bus_socket(env.pub), "publish") == -1)
		log_warnx("socket monitor: %s", zmq_strerror(zmq_errno()));
	if (control_open(&env) == -1)
		fatalx("cannot open control socket %s", env.conf->control);
	/* ours now (the lock says no other daemon runs on this database);
	   a copy: a reload frees the config it came from */
	if ((main_control_path = strdup(env.conf->control)) == NULL)
		fatal("control socket");
	atexit(main_unlink_control);
	if (http_open(&env) == -1)
		return EX_CONFIG;
	log_info("listening: live feed %s, sync %s", env.conf->listen_publish,
	    env.conf->listen_sync);

	env.phase = PHASE_RUNNING;
	if ((env.peers = calloc(env.conf->npeers + 1, sizeof(*env.peers))) ==
	    NULL)
		fatal("peers");
	for (size_t i = 0; i < env.conf->npeers; i++) {
		struct peer *p = peer_new(&env, &env.conf->peers[i]);

		if (p == NULL)
			fatalx("peer %s: cannot start", env.conf->peers[i].name);
		env.peers[env.npeers++] = p;
		if (peer_has_endpoints(p) &&
		    env.conf->role != CONFIG_ROLE_OBSERVER)
			env.phase = PHASE_STARTING;
	}
	main_relay_policy(&env);
	main_compact_peers(&env);
	store_set_writable(env.store, env.phase == PHASE_RUNNING ?
	    STORE_WRITABLE : STORE_RECOVERING);

	env.ev_wake = event_new(env.base, -1, 0, main_wake_cb, &env);
	env.ev_recheck = evtimer_new(env.base, main_recheck_cb, &env);
	env.ev_sigterm = evsignal_new(env.base, SIGTERM, main_stop_cb, &env);
	env.ev_sigint = evsignal_new(env.base, SIGINT, main_stop_cb, &env);
	env.ev_sighup = evsignal_new(env.base, SIGHUP, main_hup_cb, &env);
	env.ev_cron = event_new(env.base, -1, EV_PERSIST, main_cron_cb, &env);
	if (env.ev_wake == NULL || env.ev_recheck == NULL ||
	    env.ev_sigterm == NULL || env.ev_sigint == NULL ||
	    env.ev_sighup == NULL || env.ev_cron == NULL)
		fatalx("cannot set up events");
	main_watch_wal(&env);
	evsignal_add(env.ev_sigterm, NULL);
	evsignal_add(env.ev_sigint, NULL);
	evsignal_add(env.ev_sighup, NULL);
	/*
	 * Half a heartbeat interval, at most 500 ms, keeps an idle node
	 * quiet; without inotify, 100 ms, since the tick then notices other
	 * writers.
	 */
	tick_ms = env.conf->heartbeat_interval_ms / 2;
	if (tick_ms > 500)
		tick_ms = 500;
	if (env.inotify_fd == -1 || tick_ms < 10)
		tick_ms = env.inotify_fd == -1 ? 100 : 10;
	tick.tv_sec = tick_ms / 1000;
	tick.tv_usec = (tick_ms % 1000) * 1000;
	event_add(env.ev_cron, &tick);

	if (env.phase == PHASE_RUNNING)
		sync_local(&env);
	if (sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0) {
		struct timeval half;

		half.tv_sec = watchdog_usec / 2 / 1000000;
		half.tv_usec = watchdog_usec / 2 % 1000000;
		if ((env.ev_watchdog = event_new(env.base, -1, EV_PERSIST,
		    main_watchdog_cb, &env)) == NULL)
			fatalx("event_new");
		event_add(env.ev_watchdog, &half);
		log_info("systemd watchdog: pinging every %llu ms",
		    (unsigned long long)(watchdog_usec / 2000));
	}
	sd_notify(0, "READY=1");
	log_info("ready");
	event_base_dispatch(env.base);

	/* shutdown: what is committed stays; close sockets, then the db */
	sync_publish(&env);
	http_close(&env);
	for (size_t i = 0; i < env.npeers; i++)
		peer_free(env.peers[i]);
	free(env.peers);
	bus_free(env.pub);
	catchup_server_free(env.server);
	bus_free(env.control);
	for (int i = 0; i < env.nmonitors; i++)
		bus_free(env.monitors[i]);
	bus_free(env.zap);
	main_unlink_control();
	keys_clear(&env.keys);
	zmq_ctx_term(env.zctx);
	if (env.ev_inotify != NULL)
		event_free(env.ev_inotify);
	if (env.inotify_fd != -1)
		close(env.inotify_fd);
	event_free(env.ev_wake);
	event_free(env.ev_recheck);
	if (env.ev_watchdog != NULL)
		event_free(env.ev_watchdog);
	event_free(env.ev_cron);
	event_free(env.ev_sigterm);
	event_free(env.ev_sigint);
	event_free(env.ev_sighup);
	event_base_free(env.base);
	store_free(env.store);
	clock_free(env.clock);
	log_info("stopped");
	config_free(env.conf);
	close(lockfd);
	return 0;
}
