/*
 * config.c: load and check the INI configuration of one node.
 *
 * inih does the lexing; everything else is here. Debian's inih does not
 * pass line numbers to the handler, so we feed it through our own line
 * reader, which counts lines, handles [section] headers itself and notices
 * lines inih rejected. Every error is collected, not just the first, as
 * "file:line: message" (see config/labsync.conf for the keys).
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "config.h"
#include "log.h"

#ifndef LABSYNC_DATADIR
#define LABSYNC_DATADIR		"/usr/local/share/labsync"
#endif

#define CONFIG_MAX_LINE		4096	/* with the newline */
#define CONFIG_MAX_KEYFILE	1024	/* a key file is one line */
#define CONFIG_MAX_DURATION	(24 * 60 * 60 * 1000LL)	/* ms */

#define CONFIG_MSG_ID \
	"expected 1 to 32 characters of a-z, 0-9, _ and -"
#define CONFIG_MSG_ENDPOINT \
	"expected tcp://HOST:PORT"
#define CONFIG_MSG_DURATION \
	"expected a duration from 1ms to 24h, like 500ms, 30s, 5m or 1h"
#define CONFIG_MSG_TABLE \
	"expected a comma-separated list of table names " \
	"([A-Za-z_][A-Za-z0-9_]*)"

enum config_section {
	SEC_NODE,
	SEC_LISTEN,
	SEC_SECURITY,
	SEC_SYNC,
	SEC_HTTP,
	SEC_PEER,		/* one of many [peer:NAME] */
	SEC_NONE,		/* before the first header */
	SEC_IGNORE,		/* unknown or broken header: skip its keys */
};
#define SEC_FIXED	SEC_PEER	/* sections that appear once */

static const char *const config_section_names[SEC_FIXED] = {
	"node", "listen", "security", "sync", "http"
};
static const int config_section_required[SEC_FIXED] = { 1, 1, 0, 1, 0 };

enum config_keyid {
	K_NODE_ID,
	K_NODE_ROLE,
	K_NODE_DATABASE,
	K_NODE_SCHEMA,
	K_NODE_CONTROL,
	K_NODE_LOG_LEVEL,
	K_LISTEN_PUBLISH,
	K_LISTEN_SYNC,
	K_SEC_INSECURE,
	K_SEC_SECRET_KEY_FILE,
	K_PEER_PUBLISH,
	K_PEER_SYNC,
	K_PEER_PUBLIC_KEY,
	K_PEER_PUBLIC_KEY_FILE,
	K_PEER_ROLE,
	K_PEER_WRITABLE,
	K_SYNC_TABLES,
	K_SYNC_LOCAL,
	K_SYNC_WRITABLE,
	K_SYNC_PSEUDONYMISE,
	K_SYNC_PSEUDONYM_KEY_FILE,
	K_SYNC_MAX_CLOCK_SKEW,
	K_SYNC_HEARTBEAT_INTERVAL,
	K_SYNC_HEARTBEAT_TIMEOUT,
	K_SYNC_ANTI_ENTROPY_INTERVAL,
	K_SYNC_COMPACT_AFTER,
	K_SYNC_MAX_MESSAGE_SIZE,
	K_SYNC_BATCH_CHANGES,
	K_SYNC_CATCHUP_CHANGES,
	K_SYNC_CACHE_SIZE,
	K_HTTP_LISTEN,
	K_HTTP_TOKEN_FILE,
	K_HTTP_CORS_ORIGIN,
	K_COUNT
};

static const struct config_keydef {
	enum config_section	 section;
	const char		*name;
	int			 required;
	int			 max;	  /* times it may appear */
	int			 empty_ok; /* empty is a value */
} config_keys[K_COUNT] = {
	[K_NODE_ID] =		{ SEC_NODE, "id", 1, 1, 0 },
	[K_NODE_ROLE] =		{ SEC_NODE, "role", 0, 1, 0 },
	[K_NODE_DATABASE] =	{ SEC_NODE, "database", 1, 1, 0 },
	[K_NODE_SCHEMA] =	{ SEC_NODE, "schema", 0, 1, 0 },
	[K_NODE_CONTROL] =	{ SEC_NODE, "control", 0, 1, 0 },
	[K_NODE_LOG_LEVEL] =	{ SEC_NODE, "log_level", 0, 1, 0 },
	[K_LISTEN_PUBLISH] =	{ SEC_LISTEN, "publish", 1, 1, 0 },
	[K_LISTEN_SYNC] =	{ SEC_LISTEN, "sync", 1, 1, 0 },
	[K_SEC_INSECURE] =	{ SEC_SECURITY, "insecure", 0, 1, 0 },
	[K_SEC_SECRET_KEY_FILE] = { SEC_SECURITY, "secret_key_file", 0, 1, 0 },
	[K_PEER_PUBLISH] =	{ SEC_PEER, "publish", 0, 1, 0 },
	[K_PEER_SYNC] =		{ SEC_PEER, "sync", 0, 1, 0 },
	[K_PEER_PUBLIC_KEY] =
	    { SEC_PEER, "public_key", 0, CONFIG_MAX_KEYS, 0 },
	[K_PEER_PUBLIC_KEY_FILE] = { SEC_PEER, "public_key_file", 0, 1, 0 },
	[K_PEER_ROLE] =		{ SEC_PEER, "role", 0, 1, 0 },
	[K_PEER_WRITABLE] =	{ SEC_PEER, "writable", 0, 1, 1 },
	[K_SYNC_TABLES] =	{ SEC_SYNC, "tables", 1, 1, 0 },
	[K_SYNC_LOCAL] =	{ SEC_SYNC, "local", 0, 1, 1 },
	[K_SYNC_WRITABLE] =	{ SEC_SYNC, "writable", 0, 1, 1 },
	[K_SYNC_PSEUDONYMISE] =	{ SEC_SYNC, "pseudonymise", 0, 1, 1 },
	[K_SYNC_PSEUDONYM_KEY_FILE] =
	    { SEC_SYNC, "pseudonym_key_file", 0, 1, 0 },
	[K_SYNC_MAX_CLOCK_SKEW] = { SEC_SYNC, "max_clock_skew", 0, 1, 0 },
	[K_SYNC_HEARTBEAT_INTERVAL] =
	    { SEC_SYNC, "heartbeat_interval", 0, 1, 0 },
	[K_SYNC_HEARTBEAT_TIMEOUT] = { SEC_SYNC, "heartbeat_timeout", 0, 1, 0 },
	[K_SYNC_ANTI_ENTROPY_INTERVAL] =
	    { SEC_SYNC, "anti_entropy_interval", 0, 1, 0 },
	[K_SYNC_COMPACT_AFTER] = { SEC_SYNC, "compact_after", 0, 1, 0 },
	[K_SYNC_MAX_MESSAGE_SIZE] = { SEC_SYNC, "max_message_size", 0, 1, 0 },
	[K_SYNC_BATCH_CHANGES] = { SEC_SYNC, "batch_changes", 0, 1, 0 },
	[K_SYNC_CATCHUP_CHANGES] = { SEC_SYNC, "catchup_changes", 0, 1, 0 },
	[K_SYNC_CACHE_SIZE] =	{ SEC_SYNC, "cache_size", 0, 1, 0 },
	[K_HTTP_LISTEN] =	{ SEC_HTTP, "listen", 0, 1, 0 },
	[K_HTTP_TOKEN_FILE] =	{ SEC_HTTP, "token_file", 0, 1, 0 },
	[K_HTTP_CORS_ORIGIN] =	{ SEC_HTTP, "cors_origin", 0, 1, 0 },
};

/* Where one section and its keys were seen. */
struct config_secstate {
	int		 line;		/* header line; 0: not seen */
	int		 key_line[K_COUNT];	/* first line of each */
	int		 key_count[K_COUNT];
	int		 key_bad[K_COUNT];	/* value was rejected */
};

struct config_error {
	int		 line;
	size_t		 seq;		/* order within a line */
	char		*msg;
};

struct config_parse {
	struct config	*cfg;
	const char	*path;		/* as given, for messages */
	FILE		*f;
	char		*buf;		/* getline buffer */
	size_t		 bufsize;
	int		 read_errno;

	int		 lineno;
	int		 pending;	/* key line not yet handled */
	int		 handled;

	enum config_section section;
	size_t		 peer;		/* current [peer:NAME] */
	struct config_secstate fixed[SEC_FIXED];
	struct config_secstate *peerstate;	/* parallel to cfg->peers */

	struct config_error *errors;
	size_t		 nerrors;
};

static void	*config_xcalloc(size_t, size_t);
static void	*config_xreallocarray(void *, size_t, size_t);
static char	*config_xstrdup(const char *);
static void	 config_error(struct config_parse *, int, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static int	 config_error_cmp(const void *, const void *);
static char	*config_errors_join(struct config_parse *);
static char	*config_dirname(const char *);
static char	*config_resolve(const struct config *, const char *);
static const char *config_section_name(struct config_parse *, char *, size_t);
static struct config_secstate *config_state(struct config_parse *);
static void	 config_check_pending(struct config_parse *);
static void	 config_section_begin(struct config_parse *, const char *,
		    size_t);
static void	 config_header(struct config_parse *, char *);
static char	*config_reader(char *, int, void *);
static int	 config_handler(void *, const char *, const char *,
		    const char *);
static int	 config_set(struct config_parse *, enum config_keyid,
		    const char *, int);
static int	 config_read_keyfile(struct config_parse *, const char *,
		    char *, int);
static int	 config_add_key(struct config_parse *, const char *, int);
static int	 config_parse_tables(struct config_parse *, const char *,
		    const char *, int, char ***, size_t *, char ***, size_t *);
static void	 config_check_writable(struct config_parse *,
		    enum config_role, char **, size_t, int, int);
static void	 config_check_columns(struct config_parse *, const char *,
		    char **, size_t, int);
static void	 config_check(struct config_parse *);
static void	 config_check_insecure(struct config_parse *, const char *,
		    int);
static void	 config_free_list(char **, size_t);

static void *
config_xcalloc(size_t n, size_t size)
{
	void	*p;

	if ((p = calloc(n, size)) == NULL)
		fatal("%s", __func__);
	return p;
}

static void *
config_xreallocarray(void *old, size_t n, size_t size)
{
	void	*p;

	if ((p = reallocarray(old, n, size)) == NULL)
		fatal("%s", __func__);
	return p;
}

static char *
config_xstrdup(const char *s)
{
	char	*p;

	if ((p = strdup(s)) == NULL)
		fatal("%s", __func__);
	return p;
}

/* Record one error; they are sorted by line and printed at the end. */
static void
config_error(struct config_parse *p, int line, const char *fmt, ...)
{
	struct config_error	*e;
	va_list			 ap;

	p->errors = config_xreallocarray(p->errors, p->nerrors + 1,
	    sizeof(*p->errors));
	e = &p->errors[p->nerrors];
	e->line = line;
	e->seq = p->nerrors++;
	va_start(ap, fmt);
	if (vasprintf(&e->msg, fmt, ap) == -1)
		fatal("%s", __func__);
	va_end(ap);
}

static int
config_error_cmp(const void *a, const void *b)
{
	const struct config_error	*ea = a, *eb = b;

	if (ea->line != eb->line)
		return ea->line < eb->line ? -1 : 1;
	return ea->seq < eb->seq ? -1 : (ea->seq > eb->seq);
}

/* All errors, each "file:line: message\n", in line order. */
static char *
config_errors_join(struct config_parse *p)
{
	char	*out = NULL, *next;
	size_t	 i;

	qsort(p->errors, p->nerrors, sizeof(*p->errors), config_error_cmp);
	for (i = 0; i < p->nerrors; i++) {
		if (asprintf(&next, "%s%s:%d: %s\n", out != NULL ? out : "",
		    p->path, p->errors[i].line, p->errors[i].msg) == -1)
			fatal("%s", __func__);
		free(out);
		out = next;
	}
	return out;
}

/*
 * The absolute folder of PATH. Absolute, so that resolved paths survive a
 * chdir; realpath is safe here because the file was just opened.
 */
static char *
config_dirname(const char *path)
{
	char	*copy, *slash, *dir;

	copy = config_xstrdup(path);
	if ((slash = strrchr(copy, '/')) == NULL) {
		free(copy);
		copy = config_xstrdup(".");
	} else if (slash == copy)
		slash[1] = '\0';
	else
		*slash = '\0';
	if ((dir = realpath(copy, NULL)) == NULL)
		dir = config_xstrdup(copy);
	free(copy);
	return dir;
}

/*
 * VALUE as an absolute path: relative paths are taken from the config's
 * folder. Leading "./" and "../" are folded into that folder, which has no
 * symlinks (realpath), so the result names the same file.
 */
static char *
config_resolve(const struct config *cfg, const char *value)
{
	char	*dir, *slash, *out;

	if (value[0] == '/')
		return config_xstrdup(value);
	dir = config_xstrdup(cfg->dir);
	for (;;) {
		if (strncmp(value, "./", 2) == 0)
			value += 2;
		else if (strncmp(value, "../", 3) == 0) {
			/* Cut the last component, but keep a lone "/". */
			if ((slash = strrchr(dir, '/')) != NULL)
				slash[slash == dir ? 1 : 0] = '\0';
			value += 3;
		} else
			break;
		while (*value == '/')
			value++;
	}
	if (asprintf(&out, "%s%s%s", dir,
	    dir[strlen(dir) - 1] == '/' ? "" : "/", value) == -1)
		fatal("%s", __func__);
	free(dir);
	return out;
}

/* The current section's name for messages, e.g. "peer:wuppertal". */
static const char *
config_section_name(struct config_parse *p, char *buf, size_t len)
{
	if (p->section == SEC_PEER) {
		snprintf(buf, len, "peer:%s", p->cfg->peers[p->peer].name);
		return buf;
	}
	return config_section_names[p->section];
}

static struct config_secstate *
config_state(struct config_parse *p)
{
	if (p->section == SEC_PEER)
		return &p->peerstate[p->peer];
	return &p->fixed[p->section];
}

/* inih skips a line it cannot split into key and value: say so. */
static void
config_check_pending(struct config_parse *p)
{
	if (p->pending != 0 && !p->handled)
		config_error(p, p->pending,
		    "syntax error: expected 'key = value', [section] or "
		    "a comment");
	p->pending = 0;
}

/* A [NAME] header: start a fixed section or a new peer. */
static void
config_section_begin(struct config_parse *p, const char *name, size_t len)
{
	struct config		*cfg = p->cfg;
	struct config_peer	*peer;
	const char		*pname;
	char			 buf[CONFIG_MAX_LINE];
	size_t			 i;
	int			 s;

	memcpy(buf, name, len);
	buf[len] = '\0';
	p->section = SEC_IGNORE;

	for (s = 0; s < SEC_FIXED; s++) {
		if (strcmp(buf, config_section_names[s]) != 0)
			continue;
		if (p->fixed[s].line != 0) {
			config_error(p, p->lineno,
			    "duplicate section [%s] (first at line %d)", buf,
			    p->fixed[s].line);
			return;
		}
		p->fixed[s].line = p->lineno;
		p->section = s;
		return;
	}

	if (strncmp(buf, "peer:", 5) != 0) {
		config_error(p, p->lineno, "unknown section [%s]", buf);
		return;
	}
	pname = buf + 5;
	if (config_valid_id(pname) == -1) {
		config_error(p, p->lineno, "bad peer name '%s' in [%s]: "
		    CONFIG_MSG_ID, pname, buf);
		return;
	}
	for (i = 0; i < cfg->npeers; i++) {
		if (strcmp(cfg->peers[i].name, pname) == 0) {
			config_error(p, p->lineno,
			    "duplicate section [%s] (first at line %d)", buf,
			    cfg->peers[i].line);
			return;
		}
	}

	cfg->peers = config_xreallocarray(cfg->peers, cfg->npeers + 1,
	    sizeof(*cfg->peers));
	p->peerstate = config_xreallocarray(p->peerstate, cfg->npeers + 1,
	    sizeof(*p->peerstate));
	peer = &cfg->peers[cfg->npeers];
	memset(peer, 0, sizeof(*peer));
	memset(&p->peerstate[cfg->npeers], 0, sizeof(*p->peerstate));
	/* A valid id fits. */
	memcpy(peer->name, pname, strlen(pname) + 1);
	peer->line = p->lineno;
	peer->role = CONFIG_ROLE_CITY;
	p->peerstate[cfg->npeers].line = p->lineno;
	p->peer = cfg->npeers++;
	p->section = SEC_PEER;
}

/*
 * A line starting with '['. Mirrors inih: the name ends at ']', and an
 * inline comment (';' after a blank) before it means there is no ']'.
 */
static void
config_header(struct config_parse *p, char *s)
{
	char	*end, *rest;
	int	 was_space = 0;

	for (end = s + 1; *end != '\0' && *end != ']'; end++) {
		if (was_space && *end == ';')
			break;
		was_space = isspace((unsigned char)*end);
	}
	if (*end != ']') {
		config_error(p, p->lineno, "missing ']' in section header");
		p->section = SEC_IGNORE;
		return;
	}
	for (rest = end + 1; isspace((unsigned char)*rest); rest++)
		;
	if (*rest != '\0' && *rest != ';')
		config_error(p, p->lineno,
		    "unexpected text after section header");
	config_section_begin(p, s + 1, end - (s + 1));
}

/*
 * inih's fgets: one call per line, so this is where lines are counted.
 * Section headers are handled here, as inih keeps neither their line nor
 * sections without keys.
 */
static char *
config_reader(char *str, int num, void *arg)
{
	struct config_parse	*p = arg;
	ssize_t			 len;
	char			*s;

	config_check_pending(p);

	errno = 0;
	if ((len = getline(&p->buf, &p->bufsize, p->f)) == -1) {
		if (ferror(p->f))
			p->read_errno = errno != 0 ? errno : EIO;
		return NULL;
	}
	p->lineno++;

	if (memchr(p->buf, '\0', len) != NULL) {
		config_error(p, p->lineno, "line contains a NUL byte");
		return strcpy(str, "\n");
	}
	if (len >= num) {
		config_error(p, p->lineno, "line too long (at most %d "
		    "characters)", num - 2);
		return strcpy(str, "\n");
	}
	memcpy(str, p->buf, len + 1);

	s = p->buf;
	if (p->lineno == 1 && strncmp(s, "\xef\xbb\xbf", 3) == 0)
		s += 3;		/* UTF-8 BOM, which inih skips too */
	while (isspace((unsigned char)*s))
		s++;
	if (*s == '\0' || *s == ';' || *s == '#')
		return str;
	if (*s == '[')
		config_header(p, s);
	else {
		p->pending = p->lineno;
		p->handled = 0;
	}
	return str;
}

/* One "key = value" line of the current section. */
static int
config_handler(void *arg, const char *section, const char *name,
    const char *value)
{
	struct config_parse	*p = arg;
	struct config_secstate	*st;
	const char		*sname;
	char			 buf[64];
	int			 k, line = p->lineno;

	(void)section;		/* we track sections ourselves */
	p->handled = 1;

	if (p->section == SEC_IGNORE)
		return 1;
	if (p->section == SEC_NONE) {
		config_error(p, line, "key '%s' outside any section", name);
		return 1;
	}

	sname = config_section_name(p, buf, sizeof(buf));
	for (k = 0; k < K_COUNT; k++) {
		if (config_keys[k].section == p->section &&
		    strcmp(config_keys[k].name, name) == 0)
			break;
	}
	if (k == K_COUNT) {
		config_error(p, line, "unknown key '%s' in section [%s]", name,
		    sname);
		return 1;
	}

	st = config_state(p);
	if (st->key_count[k]++ >= config_keys[k].max) {
		if (config_keys[k].max == 1)
			config_error(p, line, "duplicate key '%s' in section "
			    "[%s] (first at line %d)", name, sname,
			    st->key_line[k]);
		else
			config_error(p, line, "too many '%s' lines in section "
			    "[%s] (at most %d)", name, sname,
			    config_keys[k].max);
		return 1;
	}
	if (st->key_count[k] == 1)
		st->key_line[k] = line;

	if (*value == '\0' && !config_keys[k].empty_ok) {
		config_error(p, line, "empty value for '%s' in section [%s]",
		    name, sname);
		st->key_bad[k] = 1;
		return 1;
	}
	if (config_set(p, k, value, line) == -1)
		st->key_bad[k] = 1;
	return 1;
}

/*
 * [http] cors_origin: "*" or one origin as browsers send it: http:// or
 * https://, a host of letters, digits, dots, dashes (or [IPv6]), an
 * optional :port, no path.
 */
static int
config_parse_origin(const char *value)
{
	const char	*h;
	size_t		 n;

	if (strcmp(value, "*") == 0)
		return 0;
	if (strncmp(value, "https://", 8) == 0)
		h = value + 8;
	else if (strncmp(value, "http://", 7) == 0)
		h = value + 7;
	else
		return -1;
	if ((n = strspn(h, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-[]:")) == 0 ||
	    h[n] != '\0' || h[0] == ':' || h[n - 1] == ':')
		return -1;
	return 0;
}

/* [http] listen: PORT (on 127.0.0.1) or HOST:PORT. */
static int
config_parse_http_listen(struct config *cfg, const char *value)
{
	const char	*colon = strrchr(value, ':');
	const char	*port = colon != NULL ? colon + 1 : value;
	size_t		 hostlen = colon != NULL ? (size_t)(colon - value) : 0;
	long long	 n;

	if (config_parse_int(port, 1, 65535, &n) == -1)
		return -1;
	if (colon != NULL && (hostlen == 0 || hostlen > 255))
		return -1;
	free(cfg->http_host);
	if (colon == NULL)
		cfg->http_host = config_xstrdup("127.0.0.1");
	else {
		cfg->http_host = config_xcalloc(1, hostlen + 1);
		memcpy(cfg->http_host, value, hostlen);
	}
	cfg->http_port = (int)n;
	return 0;
}

/* Store one checked value; -1 (error recorded) if it is bad. */
static int
config_set(struct config_parse *p, enum config_keyid k, const char *value,
    int line)
{
	struct config		*cfg = p->cfg;
	struct config_peer	*peer = NULL;
	const char		*name = config_keys[k].name;
	char			 key[CONFIG_KEY_Z85 + 1];
	char			**dst;
	int64_t			*ms, dur;
	long long		 n;
	size_t			 size;
	int			 level;

	if (p->section == SEC_PEER)
		peer = &cfg->peers[p->peer];

	switch (k) {
	case K_NODE_ID:
		if (config_valid_id(value) == -1)
			goto bad_id;
		snprintf(cfg->node_id, sizeof(cfg->node_id), "%s", value);
		return 0;
	case K_NODE_ROLE:
		if (config_parse_role(value, &cfg->role) == -1)
			goto bad_role;
		return 0;
	case K_PEER_ROLE:
		if (config_parse_role(value, &peer->role) == -1)
			goto bad_role;
		return 0;
	case K_NODE_DATABASE:
	case K_NODE_SCHEMA:
	case K_NODE_CONTROL:
	case K_SEC_SECRET_KEY_FILE:
	case K_HTTP_TOKEN_FILE:
	case K_SYNC_PSEUDONYM_KEY_FILE:
		if (k == K_HTTP_TOKEN_FILE)
			dst = &cfg->http_token_file;
		else if (k == K_SYNC_PSEUDONYM_KEY_FILE)
			dst = &cfg->pseudonym_key_file;
		else if (k == K_NODE_DATABASE)
			dst = &cfg->database;
		else if (k == K_NODE_SCHEMA)
			dst = &cfg->schema;
		else if (k == K_NODE_CONTROL)
			dst = &cfg->control;
		else
			dst = &cfg->secret_key_file;
		free(*dst);
		*dst = config_resolve(cfg, value);
		return 0;
	case K_NODE_LOG_LEVEL:
		if ((level = log_level_parse(value)) == -1) {
			config_error(p, line, "bad value '%s' for %s: expected "
			    "error, warning, info or debug", value, name);
			return -1;
		}
		cfg->log_level = level;
		return 0;
	case K_LISTEN_PUBLISH:
	case K_LISTEN_SYNC:
	case K_PEER_PUBLISH:
	case K_PEER_SYNC:
		/* Binding may use a wildcard host; connecting may not. */
		if (config_parse_endpoint(value, peer == NULL, NULL,
		    NULL) == -1) {
			config_error(p, line, "bad value '%s' for %s: "
			    CONFIG_MSG_ENDPOINT, value, name);
			return -1;
		}
		if (k == K_LISTEN_PUBLISH)
			dst = &cfg->listen_publish;
		else if (k == K_LISTEN_SYNC)
			dst = &cfg->listen_sync;
		else if (k == K_PEER_PUBLISH)
			dst = &peer->publish;
		else
			dst = &peer->sync;
		free(*dst);
		*dst = config_xstrdup(value);
		return 0;
	case K_SEC_INSECURE:
		if (config_parse_bool(value, &cfg->insecure) == -1) {
			config_error(p, line, "bad value '%s' for %s: expected "
			    "true or false", value, name);
			return -1;
		}
		return 0;
	case K_PEER_PUBLIC_KEY:
		if (config_parse_key(value) == -1) {
			config_error(p, line, "bad value '%s' for %s: expected "
			    "%d characters of Z85 (a CURVE public key)", value,
			    name, CONFIG_KEY_Z85);
			return -1;
		}
		return config_add_key(p, value, line);
	case K_PEER_PUBLIC_KEY_FILE:
		if (config_read_keyfile(p, value, key, line) == -1)
			return -1;
		return config_add_key(p, key, line);
	case K_SYNC_TABLES:
		return config_parse_tables(p, name, value, line, &cfg->tables,
		    &cfg->ntables, NULL, NULL);
	case K_SYNC_LOCAL:
		cfg->local_line = line;
		return config_parse_tables(p, name, value, line, &cfg->local,
		    &cfg->nlocal, &cfg->local_columns, &cfg->nlocal_columns);
	case K_SYNC_WRITABLE:
		cfg->writable_line = line;
		return config_parse_tables(p, name, value, line,
		    &cfg->writable, &cfg->nwritable, NULL, NULL);
	case K_PEER_WRITABLE:
		peer->writable_line = line;
		return config_parse_tables(p, name, value, line,
		    &peer->writable, &peer->nwritable, NULL, NULL);
	case K_SYNC_PSEUDONYMISE:
		cfg->pseudonymise_line = line;
		return config_parse_tables(p, name, value, line, NULL, NULL,
		    &cfg->pseudonymise, &cfg->npseudonymise);
	case K_SYNC_MAX_CLOCK_SKEW:
	case K_SYNC_HEARTBEAT_INTERVAL:
	case K_SYNC_HEARTBEAT_TIMEOUT:
	case K_SYNC_ANTI_ENTROPY_INTERVAL:
	case K_SYNC_COMPACT_AFTER:
		if (k == K_SYNC_MAX_CLOCK_SKEW)
			ms = &cfg->max_clock_skew_ms;
		else if (k == K_SYNC_HEARTBEAT_INTERVAL)
			ms = &cfg->heartbeat_interval_ms;
		else if (k == K_SYNC_HEARTBEAT_TIMEOUT)
			ms = &cfg->heartbeat_timeout_ms;
		else if (k == K_SYNC_ANTI_ENTROPY_INTERVAL)
			ms = &cfg->anti_entropy_interval_ms;
		else
			ms = &cfg->compact_after_ms;
		/* A bound keeps "now + duration" far from overflowing. */
		if (config_parse_duration(value, &dur) == -1 ||
		    dur > CONFIG_MAX_DURATION) {
			config_error(p, line, "bad value '%s' for %s: "
			    CONFIG_MSG_DURATION, value, name);
			return -1;
		}
		*ms = dur;
		return 0;
	case K_SYNC_MAX_MESSAGE_SIZE:
		if (config_parse_size(value, &size) == -1 ||
		    size < 64 * 1024 || size > 1024 * 1024 * 1024) {
			config_error(p, line, "bad value '%s' for %s: expected "
			    "a size from 64KiB to 1GiB", value, name);
			return -1;
		}
		cfg->max_message_size = size;
		return 0;
	case K_SYNC_CACHE_SIZE:
		/* SQLite wants -KiB in an int: stay well below that. */
		if (config_parse_size(value, &size) == -1 ||
		    size < 1024 * 1024 || size / (1024 * 1024) > 1024 * 1024) {
			config_error(p, line, "bad value '%s' for %s: expected "
			    "a size from 1MiB to 1024GiB", value, name);
			return -1;
		}
		cfg->cache_size_mib = (int)(size / (1024 * 1024));
		return 0;
	case K_SYNC_BATCH_CHANGES:
	case K_SYNC_CATCHUP_CHANGES:
		if (config_parse_int(value, 1, 100000, &n) == -1) {
			config_error(p, line, "bad value '%s' for %s: expected "
			    "an integer from 1 to 100000", value, name);
			return -1;
		}
		if (k == K_SYNC_BATCH_CHANGES)
			cfg->batch_changes = (int)n;
		else
			cfg->catchup_changes = (int)n;
		return 0;
	case K_HTTP_LISTEN:
		if (config_parse_http_listen(cfg, value) == -1) {
			config_error(p, line, "bad value '%s' for %s: expected "
			    "PORT or HOST:PORT", value, name);
			return -1;
		}
		return 0;
	case K_HTTP_CORS_ORIGIN:
		if (config_parse_origin(value) == -1) {
			config_error(p, line, "bad value '%s' for %s: expected "
			    "* or an origin such as https://example.org or "
			    "http://localhost:8080", value, name);
			return -1;
		}
		free(cfg->http_cors_origin);
		cfg->http_cors_origin = config_xstrdup(value);
		return 0;
	case K_COUNT:
		break;
	}
	fatalx("%s: unhandled key %d", __func__, k);

bad_id:
	config_error(p, line, "bad value '%s' for %s: " CONFIG_MSG_ID, value,
	    name);
	return -1;
bad_role:
	config_error(p, line, "bad value '%s' for %s: expected city, "
	    "observer or partner", value, name);
	return -1;
}

/* Read the one Z85 line of a public_key_file into KEY. */
static int
config_read_keyfile(struct config_parse *p, const char *value, char *key,
    int line)
{
	FILE	*f = NULL;
	char	 buf[CONFIG_MAX_KEYFILE], *s, *e, *path;
	size_t	 len;
	int	 bad, ret = -1;

	path = config_resolve(p->cfg, value);
	if ((f = fopen(path, "r")) == NULL) {
		config_error(p, line, "cannot read public_key_file '%s': %s",
		    value, strerror(errno));
		goto done;
	}
	len = fread(buf, 1, sizeof(buf) - 1, f);
	if (ferror(f)) {
		config_error(p, line, "cannot read public_key_file '%s': %s",
		    value, strerror(errno));
		goto done;
	}
	buf[len] = '\0';
	/* Too big, or a NUL byte inside. */
	bad = len == sizeof(buf) - 1 || strlen(buf) != len;
	for (s = buf; isspace((unsigned char)*s); s++)
		;
	for (e = s + strlen(s); e > s && isspace((unsigned char)e[-1]); e--)
		;
	*e = '\0';
	/* Z85 has no blanks, so a second line makes the key too long. */
	if (bad || config_parse_key(s) == -1) {
		config_error(p, line, "bad public key in '%s': expected one "
		    "line of %d Z85 characters", value, CONFIG_KEY_Z85);
		goto done;
	}
	memcpy(key, s, CONFIG_KEY_Z85 + 1);
	ret = 0;
done:
	if (f != NULL)
		fclose(f);
	free(path);
	return ret;
}

static int
config_add_key(struct config_parse *p, const char *key, int line)
{
	struct config_peer	*peer = &p->cfg->peers[p->peer];
	int			 i;

	for (i = 0; i < peer->npublic_keys; i++) {
		if (strcmp(peer->public_keys[i], key) == 0) {
			config_error(p, line, "public key listed twice in "
			    "section [peer:%s]", peer->name);
			return -1;
		}
	}
	if (peer->npublic_keys == CONFIG_MAX_KEYS) {
		config_error(p, line, "too many public keys in section "
		    "[peer:%s] (at most %d)", peer->name, CONFIG_MAX_KEYS);
		return -1;
	}
	memcpy(peer->public_keys[peer->npublic_keys++], key,
	    CONFIG_KEY_Z85 + 1);
	return 0;
}

/*
 * A comma-separated list for KEY: table names into list, and with cols
 * not NULL also "table.column" items into cols (list NULL: only those).
 */
static int
config_parse_tables(struct config_parse *p, const char *key,
    const char *value, int line, char ***list, size_t *n, char ***cols,
    size_t *ncols)
{
	char	*copy, *item, *next, *e, *dot, ***to;
	size_t	 i, *nto;
	int	 ret = 0;

	copy = config_xstrdup(value);
	for (item = copy; item != NULL && *value != '\0'; item = next) {
		if ((next = strchr(item, ',')) != NULL)
			*next++ = '\0';
		while (isspace((unsigned char)*item))
			item++;
		for (e = item + strlen(item);
		    e > item && isspace((unsigned char)e[-1]); e--)
			;
		*e = '\0';

		if (*item == '\0') {
			config_error(p, line, "bad value '%s' for %s: %s",
			    value, key, list == NULL ?
			    "expected a comma-separated list of table.column" :
			    CONFIG_MSG_TABLE);
			ret = -1;
			break;
		}
		dot = cols != NULL ? strchr(item, '.') : NULL;
		if (dot != NULL || list == NULL) {
			if (dot == NULL || !config_is_name(item, dot) ||
			    !config_is_name(dot + 1, e)) {
				config_error(p, line, "bad column '%s' in %s: "
				    "expected table.column, each "
				    "[A-Za-z_][A-Za-z0-9_]*", item, key);
				ret = -1;
				continue;
			}
			to = cols;
			nto = ncols;
		} else {
			if (!config_is_name(item, e))
				goto bad;
			to = list;
			nto = n;
		}
		/* SQLite names ignore case, so the prefixes do too. */
		if (strncasecmp(item, "labsync_", 8) == 0 ||
		    strncasecmp(item, "sqlite_", 7) == 0) {
			config_error(p, line, "bad table name '%s' in %s: "
			    "labsync_ and sqlite_ are reserved prefixes",
			    item, key);
			ret = -1;
			continue;
		}
		for (i = 0; i < *nto; i++)
			if (strcasecmp((*to)[i], item) == 0)
				break;
		if (i < *nto) {
			config_error(p, line, "%s '%s' listed twice in %s",
			    to == list ? "table" : "column", item, key);
			ret = -1;
			continue;
		}
		*to = config_xreallocarray(*to, *nto + 1, sizeof(**to));
		(*to)[(*nto)++] = config_xstrdup(item);
		continue;
bad:
		config_error(p, line, "bad table name '%s' in %s: expected "
		    "[A-Za-z_][A-Za-z0-9_]*", item, key);
		ret = -1;
	}
	free(copy);
	return ret;
}

/* Columns of KEY (at line) must be of synced tables. */
/* writable: only for a partner, and only of synced tables. */
static void
config_check_writable(struct config_parse *p, enum config_role role,
    char **list, size_t n, int line, int seen)
{
	const struct config	*cfg = p->cfg;
	size_t			 i;

	if (seen && role != CONFIG_ROLE_PARTNER) {
		config_error(p, line, "writable is only for role = partner");
		return;
	}
	for (i = 0; i < n; i++)
		if (!config_table_synced(cfg, list[i]))
			config_error(p, line, "writable table '%s' is not in "
			    "[sync] tables", list[i]);
}

static void
config_check_columns(struct config_parse *p, const char *key, char **cols,
    size_t n, int line)
{
	struct config	*cfg = p->cfg;
	size_t		 i, j, tlen;

	for (i = 0; i < n; i++) {
		tlen = strcspn(cols[i], ".");
		for (j = 0; j < cfg->ntables; j++)
			if (strlen(cfg->tables[j]) == tlen &&
			    strncasecmp(cfg->tables[j], cols[i], tlen) == 0)
				break;
		if (j == cfg->ntables)
			config_error(p, line, "column '%s' in %s: table "
			    "'%.*s' is not in tables", cols[i], key,
			    (int)tlen, cols[i]);
	}
}

/* Under insecure = true every endpoint must stay on this machine. */
static void
config_check_insecure(struct config_parse *p, const char *endpoint, int line)
{
	if (endpoint != NULL && !config_endpoint_loopback(endpoint))
		config_error(p, line, "insecure = true needs loopback "
		    "endpoints: '%s' is not loopback", endpoint);
}

/* Checks that need the whole file: required keys and cross-key rules. */
static void
config_check(struct config_parse *p)
{
	struct config		*cfg = p->cfg;
	struct config_secstate	*st, *sec = &p->fixed[SEC_SECURITY];
	struct config_secstate	*syncst = &p->fixed[SEC_SYNC];
	struct config_peer	*peer, *other;
	struct sockaddr_un	 sun;
	size_t			 i, j;
	int			 k, a, b, line;

	for (k = 0; k < SEC_FIXED; k++) {
		if (p->fixed[k].line == 0 && config_section_required[k])
			config_error(p, 1, "missing section [%s]",
			    config_section_names[k]);
	}
	for (k = 0; k < K_COUNT; k++) {
		if (!config_keys[k].required ||
		    config_keys[k].section >= SEC_FIXED)
			continue;
		st = &p->fixed[config_keys[k].section];
		if (st->line != 0 && st->key_count[k] == 0)
			config_error(p, st->line,
			    "missing required key '%s' in [%s]",
			    config_keys[k].name,
			    config_section_names[config_keys[k].section]);
	}

	/* Keys or an explicit insecure; say nothing if either was bad. */
	if (cfg->secret_key_file == NULL && !cfg->insecure &&
	    !sec->key_bad[K_SEC_INSECURE] &&
	    !sec->key_bad[K_SEC_SECRET_KEY_FILE])
		config_error(p, sec->line != 0 ? sec->line : 1,
		    "no secret_key_file in [security] and insecure is not set");
	if (cfg->insecure) {
		st = &p->fixed[SEC_LISTEN];
		config_check_insecure(p, cfg->listen_publish,
		    st->key_line[K_LISTEN_PUBLISH]);
		config_check_insecure(p, cfg->listen_sync,
		    st->key_line[K_LISTEN_SYNC]);
	}
	if (cfg->listen_publish != NULL && cfg->listen_sync != NULL &&
	    strcmp(cfg->listen_publish, cfg->listen_sync) == 0)
		config_error(p, p->fixed[SEC_LISTEN].key_line[K_LISTEN_SYNC],
		    "publish and sync in [listen] must differ");

	for (i = 0; i < cfg->npeers; i++) {
		peer = &cfg->peers[i];
		st = &p->peerstate[i];
		a = st->key_count[K_PEER_PUBLISH] != 0;
		b = st->key_count[K_PEER_SYNC] != 0;
		if (a != b)
			config_error(p, peer->line, "section [peer:%s] needs "
			    "both publish and sync, or neither", peer->name);
		if (strcmp(peer->name, cfg->node_id) == 0)
			config_error(p, peer->line, "section [peer:%s] has "
			    "this node's own id", peer->name);
		if (cfg->insecure) {
			config_check_insecure(p, peer->publish,
			    st->key_line[K_PEER_PUBLISH]);
			config_check_insecure(p, peer->sync,
			    st->key_line[K_PEER_SYNC]);
		} else if (peer->npublic_keys == 0 &&
		    !sec->key_bad[K_SEC_INSECURE] &&
		    !st->key_bad[K_PEER_PUBLIC_KEY] &&
		    !st->key_bad[K_PEER_PUBLIC_KEY_FILE])
			config_error(p, peer->line, "no public_key in section "
			    "[peer:%s] and insecure is not set", peer->name);

		/* The ZAP handler names a peer by its key: keep it unique. */
		for (j = 0; j < i; j++) {
			other = &cfg->peers[j];
			for (a = 0; a < peer->npublic_keys; a++)
				for (b = 0; b < other->npublic_keys; b++)
					if (strcmp(peer->public_keys[a],
					    other->public_keys[b]) == 0)
						config_error(p, peer->line,
						    "section [peer:%s] uses "
						    "the public key of "
						    "[peer:%s]", peer->name,
						    other->name);
		}
	}

	if (cfg->heartbeat_timeout_ms <= cfg->heartbeat_interval_ms) {
		line = syncst->key_line[K_SYNC_HEARTBEAT_TIMEOUT];
		if (line == 0)
			line = syncst->key_line[K_SYNC_HEARTBEAT_INTERVAL];
		config_error(p, line != 0 ? line : syncst->line,
		    "heartbeat_timeout must be greater than "
		    "heartbeat_interval");
	}
	for (i = 0; i < cfg->nlocal; i++)
		for (j = 0; j < cfg->ntables; j++)
			if (strcasecmp(cfg->local[i], cfg->tables[j]) == 0)
				config_error(p, syncst->key_line[K_SYNC_LOCAL],
				    "table '%s' is in both tables and local",
				    cfg->local[i]);
	config_check_columns(p, "local", cfg->local_columns,
	    cfg->nlocal_columns, cfg->local_line);
	config_check_writable(p, cfg->role, cfg->writable, cfg->nwritable,
	    cfg->writable_line, syncst->key_count[K_SYNC_WRITABLE]);
	for (i = 0; i < cfg->npeers; i++)
		config_check_writable(p, cfg->peers[i].role,
		    cfg->peers[i].writable, cfg->peers[i].nwritable,
		    cfg->peers[i].writable_line,
		    p->peerstate[i].key_count[K_PEER_WRITABLE]);
	config_check_columns(p, "pseudonymise", cfg->pseudonymise,
	    cfg->npseudonymise, cfg->pseudonymise_line);
	for (i = 0; i < cfg->npseudonymise; i++)
		for (j = 0; j < cfg->nlocal_columns; j++)
			if (strcasecmp(cfg->pseudonymise[i],
			    cfg->local_columns[j]) == 0)
				config_error(p, cfg->pseudonymise_line,
				    "column '%s' is in both local and "
				    "pseudonymise", cfg->pseudonymise[i]);
	/* an observer writes nothing, so it needs no key */
	if (cfg->npseudonymise > 0 && cfg->role != CONFIG_ROLE_OBSERVER &&
	    cfg->pseudonym_key_file == NULL &&
	    !syncst->key_bad[K_SYNC_PSEUDONYM_KEY_FILE])
		config_error(p, cfg->pseudonymise_line, "pseudonymise needs "
		    "pseudonym_key_file in [sync]");

	if (cfg->schema == NULL)
		cfg->schema = config_xstrdup(LABSYNC_DATADIR "/schema.sql");
	if (cfg->control == NULL && cfg->database != NULL) {
		if (asprintf(&cfg->control, "%s.sock", cfg->database) == -1)
			fatal("%s", __func__);
	}
	if (cfg->control != NULL &&
	    strlen(cfg->control) >= sizeof(sun.sun_path)) {
		st = &p->fixed[SEC_NODE];
		line = st->key_line[K_NODE_CONTROL];
		if (line == 0)
			line = st->key_line[K_NODE_DATABASE];
		config_error(p, line, "control socket path '%s' is too long "
		    "(at most %zu bytes)", cfg->control,
		    sizeof(sun.sun_path) - 1);
	}
}

struct config *
config_load(const char *path, char **errors)
{
	struct config_parse	 p;
	struct config		*cfg;
	struct stat		 sb;
	size_t			 i;
	int			 rc;

	if (errors != NULL)
		*errors = NULL;
	memset(&p, 0, sizeof(p));
	p.path = path;
	p.section = SEC_NONE;
	p.cfg = cfg = config_xcalloc(1, sizeof(*cfg));

	cfg->path = config_xstrdup(path);
	cfg->role = CONFIG_ROLE_CITY;
	cfg->log_level = LOG_LEVEL_INFO;
	cfg->max_clock_skew_ms = 60 * 1000;
	cfg->heartbeat_interval_ms = 1000;
	cfg->heartbeat_timeout_ms = 5 * 1000;
	cfg->anti_entropy_interval_ms = 30 * 1000;
	cfg->compact_after_ms = 30 * 1000;
	cfg->max_message_size = 4 * 1024 * 1024;
	cfg->batch_changes = 2000;
	cfg->catchup_changes = 10000;
	cfg->cache_size_mib = 64;

	if ((p.f = fopen(path, "r")) == NULL) {
		config_error(&p, 0, "cannot open: %s", strerror(errno));
		goto done;
	}
	if (fstat(fileno(p.f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
		config_error(&p, 0, "cannot open: %s", strerror(EISDIR));
		goto done;
	}
	cfg->dir = config_dirname(path);

	/*
	 * Debian builds inih with these as run-time options. A continuation
	 * line would call the handler again for the same key, which reads
	 * as a duplicate here; so one line is one key.
	 */
	ini_allow_multiline = false;
	ini_allow_no_value = false;
	ini_stop_on_first_error = false;
	ini_use_stack = true;
	ini_max_line = CONFIG_MAX_LINE;

	rc = ini_parse_stream(config_reader, &p, config_handler, &p);
	config_check_pending(&p);
	if (p.read_errno != 0) {
		config_error(&p, p.lineno + 1, "cannot read: %s",
		    strerror(p.read_errno));
		goto done;
	}
	/* The reader sees every line inih rejects; this is a safety net. */
	if (rc != 0 && p.nerrors == 0)
		config_error(&p, rc > 0 ? rc : 0, "syntax error");
	config_check(&p);

done:
	if (p.f != NULL)
		fclose(p.f);
	free(p.buf);
	free(p.peerstate);
	if (p.nerrors != 0) {
		if (errors != NULL)
			*errors = config_errors_join(&p);
		config_free(cfg);
		cfg = NULL;
	}
	for (i = 0; i < p.nerrors; i++)
		free(p.errors[i].msg);
	free(p.errors);
	return cfg;
}

static void
config_free_list(char **list, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

void
config_free(struct config *cfg)
{
	size_t	 i;

	if (cfg == NULL)
		return;
	free(cfg->path);
	free(cfg->dir);
	free(cfg->database);
	free(cfg->schema);
	free(cfg->control);
	free(cfg->listen_publish);
	free(cfg->listen_sync);
	free(cfg->secret_key_file);
	free(cfg->http_host);
	free(cfg->http_token_file);
	free(cfg->http_cors_origin);
	for (i = 0; i < cfg->npeers; i++) {
		free(cfg->peers[i].publish);
		free(cfg->peers[i].sync);
		config_free_list(cfg->peers[i].writable,
		    cfg->peers[i].nwritable);
	}
	free(cfg->peers);
	config_free_list(cfg->tables, cfg->ntables);
	config_free_list(cfg->local, cfg->nlocal);
	config_free_list(cfg->writable, cfg->nwritable);
	config_free_list(cfg->local_columns, cfg->nlocal_columns);
	config_free_list(cfg->pseudonymise, cfg->npseudonymise);
	free(cfg->pseudonym_key_file);
	free(cfg);
}

/* Exact match: the config's spelling of a table is the canonical one. */
int
config_table_synced(const struct config *cfg, const char *table)
{
	size_t	 i;

	for (i = 0; i < cfg->ntables; i++)
		if (strcmp(cfg->tables[i], table) == 0)
			return 1;
	return 0;
}

int
config_table_local(const struct config *cfg, const char *table)
{
	size_t	 i;

	for (i = 0; i < cfg->nlocal; i++)
		if (strcmp(cfg->local[i], table) == 0)
			return 1;
	return 0;
}

/* A city writes every table, an observer none, a partner its writable. */
int
config_table_writable(const struct config *cfg, const char *table)
{
	size_t	 i;

	if (cfg->role == CONFIG_ROLE_CITY)
		return 1;
	if (cfg->role == CONFIG_ROLE_OBSERVER)
		return 0;
	for (i = 0; i < cfg->nwritable; i++)
		if (strcmp(cfg->writable[i], table) == 0)
			return 1;
	return 0;
}
