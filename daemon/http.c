/*
 * http.c: the HTTP API inside the daemon's event loop (evhttp): health,
 * Prometheus metrics, status, and rows of the synced and local tables as
 * JSON (jansson). Writes go through the same capture triggers as every
 * other writer, answer only after their commit, and are published at
 * once. Errors are checked in a fixed order (405, 401, 403, 404, 413,
 * 400) and always carry a JSON body {"error": "..."}. PUT replaces a
 * row, PATCH changes the given columns, DELETE with erase=1 erases the
 * row (erase.c: who asked is "http"); a list takes col=value filters
 * and format=csv; one row carries a strong ETag (a hash of its JSON);
 * [http] cors_origin adds CORS headers and answers preflights.
 *
 * evhttp never blocks the loop on a client: it reads and writes
 * non-blocking, and a timeout closes idle or half-open connections.
 */
#include <sys/queue.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>

#include "clock.h"
#include "config.h"
#include "control.h"
#include "dashboard.h"
#include "feed.h"
#include "http.h"
#include "keys.h"
#include "labsyncd.h"
#include "log.h"
#include "metrics.h"
#include "peer.h"
#include "rows.h"
#include "store.h"
#include "sync.h"
#include "uuid.h"

#define HTTP_MAX_BODY	(1024 * 1024)		/* larger: 413 */
/* evhttp's own cut-off, above which it answers with its own HTML page:
   libevent 2.1 offers no hook between a request's headers and its body,
   so bodies up to this are read to answer 413 as JSON */
#define HTTP_READ_LIMIT	(32 * 1024 * 1024)
#define HTTP_TIMEOUT	10			/* seconds, idle clients */
#define HTTP_PAGE_MAX	1000
#define HTTP_ALLOW_ROWS	"GET, POST"		/* a table's rows */
#define HTTP_ALLOW_ROW	"GET, PUT, PATCH, DELETE"	/* one row */

/*
 * Whether If-None-Match names etag (or is "*"): the client's copy is
 * current. The header is a list of quoted tags, maybe weak (W/).
 */
static int
http_etag_match(struct evhttp_request *req, const char *etag)
{
	const char	*h = evhttp_find_header(
	    evhttp_request_get_input_headers(req), "If-None-Match");
	const char	*p;
	size_t		 n = strlen(etag);

	if (h == NULL)
		return 0;
	if (strcmp(h, "*") == 0)
		return 1;
	for (p = h; (p = strstr(p, etag)) != NULL; p += n)
		if ((p == h || p[-1] == ' ' || p[-1] == ',' || p[-1] == '/') &&
		    (p[n] == '\0' || p[n] == ' ' || p[n] == ','))
			return 1;
	return 0;
}

/* Send body as JSON; with etag set, the reply carries a strong ETag
   (SHA-256 of the bytes sent) and If-None-Match may make it a 304. */
static void
http_json_tagged(struct evhttp_request *req, int code, json_t *body,
    int etag)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	struct evbuffer	*b = evbuffer_new();
	char		*s = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	uint8_t		 h[crypto_hash_sha256_BYTES];
	char		 tag[2 + 2 * 16 + 1];

	json_decref(body);
	if (b == NULL) {
		free(s);
		evhttp_send_error(req, 500, NULL);
		return;
	}
	evbuffer_add_printf(b, "%s\n", s != NULL ? s : "{}");
	if (etag) {
		crypto_hash_sha256(h, evbuffer_pullup(b, -1),
		    evbuffer_get_length(b));
		tag[0] = '"';
		for (int i = 0; i < 16; i++)
			snprintf(tag + 1 + 2 * i, 3, "%02x", h[i]);
		snprintf(tag + 33, 2, "\"");
		evhttp_add_header(out, "ETag", tag);
		if (http_etag_match(req, tag)) {
			evhttp_send_reply(req, 304, "Not Modified", NULL);
			evbuffer_free(b);
			free(s);
			return;
		}
	}
	evhttp_add_header(out, "Content-Type", "application/json");
	evhttp_send_reply(req, code, NULL, b);
	evbuffer_free(b);
	free(s);
}

static void
http_json(struct evhttp_request *req, int code, json_t *body)
{
	http_json_tagged(req, code, body, 0);
}

static void
http_error(struct evhttp_request *req, int code, const char *msg)
{
	if (code == 401)
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "WWW-Authenticate", "Bearer");
	http_json(req, code, json_pack("{s:s}", "error", msg));
}

/* 405 with the Allow header a 405 must carry. */
static void
http_not_allowed(struct evhttp_request *req, const char *allow)
{
	char	 msg[64];

	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
	    allow);
	snprintf(msg, sizeof(msg), "method not allowed: use %s", allow);
	http_error(req, 405, msg);
}

/* Does the request carry our bearer token? Compared in constant time. */
static int
http_authorized(struct labsyncd *env, struct evhttp_request *req)
{
	const char	*h = evhttp_find_header(
	    evhttp_request_get_input_headers(req), "Authorization");
	uint8_t		 hash[32];

	if (!env->has_token || h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return 0;
	crypto_hash_sha256(hash, (const uint8_t *)h + 7, strlen(h + 7));
	return sodium_memcmp(hash, env->token_hash, sizeof(hash)) == 0;
}

/*
 * Delivery: a peer that refuses our changes, or has not confirmed them
 * for longer than heartbeat_timeout while up, makes the node unhealthy;
 * changes a peer keeps waiting (a column it does not know yet) do not.
 */
static void
http_healthz_peers(struct labsyncd *env, struct evhttp_request *req)
{
	json_t		*problems = json_array();
	uint64_t	 now = clock_system_ms();
	char		 detail[256];
	const char	*r;

	for (size_t i = 0; i < env->npeers; i++)
		if ((r = peer_delivery_problem(env->peers[i], now, detail,
		    sizeof(detail))) != NULL)
			json_array_append_new(problems, json_pack(
			    "{s:s, s:s, s:s}", "peer",
			    peer_name(env->peers[i]), "reason", r,
			    "detail", detail));
	if (json_array_size(problems) > 0)
		http_json(req, 503, json_pack("{s:s, s:o}", "status",
		    "unhealthy", "problems", problems));
	else {
		json_decref(problems);
		http_json(req, 200, json_pack("{s:s}", "status", "ok"));
	}
}

static void
http_healthz(struct labsyncd *env, struct evhttp_request *req)
{
	if (store_healthy(env->store) == -1)
		http_error(req, 503, "database is not readable");
	else if (env->phase == PHASE_RECOVERING)
		http_error(req, 503, "fetching this node's own lost changes "
		    "back from its peers");
	else if (env->phase == PHASE_STARTING)
		http_error(req, 503, "starting: asking peers for lost changes");
	else
		http_healthz_peers(env, req);
}

static void
http_metrics(struct labsyncd *env, struct evhttp_request *req)
{
	struct evbuffer	*b = evbuffer_new();

	if (b == NULL) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	metrics_render(env, b);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, 200, NULL, b);
	evbuffer_free(b);
}

static void
http_status(struct labsyncd *env, struct evhttp_request *req)
{
	char		*s = control_status_json(env);
	json_error_t	 jerr;
	json_t		*o = s != NULL ? json_loads(s, 0, &jerr) : NULL;

	free(s);
	if (o == NULL)
		http_error(req, 500, "status unavailable");
	else
		http_json(req, 200, o);
}

/* The request body as JSON; sets the error reply itself on failure. */
static json_t *
http_body(struct evhttp_request *req)
{
	struct evbuffer	*in = evhttp_request_get_input_buffer(req);
	size_t		 len = evbuffer_get_length(in);
	json_error_t	 jerr;
	json_t		*o;
	char		 msg[300];

	if (len > HTTP_MAX_BODY) {
		http_error(req, 413, "body above 1 MiB");
		return NULL;
	}
	o = json_loadb((const char *)evbuffer_pullup(in, -1), len,
	    JSON_REJECT_DUPLICATES, &jerr);
	if (o == NULL) {
		snprintf(msg, sizeof(msg), "bad JSON: %s (line %d)", jerr.text,
		    jerr.line);
		http_error(req, 400, msg);
		return NULL;
	}
	if (!json_is_object(o)) {
		json_decref(o);
		http_error(req, 400, "the body must be a JSON object of columns");
		return NULL;
	}
	return o;
}

/* The HTTP status of a result of rows.c. */
static int
http_status_of(enum reason r)
{
	switch (r) {
	case REASON_OK:
		return 200;
	case REASON_NOT_FOUND:
	case REASON_UNKNOWN_TABLE:
		return 404;
	case REASON_UNKNOWN_COLUMN:
	case REASON_DUPLICATE_COLUMN:
	case REASON_WRONG_TYPE:
	case REASON_BAD_KEY:
	case REASON_VALUE_TOO_LARGE:
	case REASON_NUL_IN_TEXT:
	case REASON_BAD_INPUT:
	case REASON_CONSTRAINT:
		return 400;
	case REASON_READ_ONLY:
	case REASON_NOT_WRITABLE:
		return 403;
	case REASON_RECOVERING:
		return 503;
	case REASON_COMPACTED:
	case REASON_CURSOR_AHEAD:
		return 410;
	default:
		return 500;
	}
}

/* How a write names its row and what it does with the body. */
enum http_write {
	HTTP_POST,		/* a new row, its id made here */
	HTTP_PUT,		/* the row becomes the body (made if absent) */
	HTTP_PATCH,		/* the body's columns of an existing row */
};

/* Location of a row: /v1/tables/T/rows/ID, each part percent-encoded. */
static void
http_location(struct evhttp_request *req, const char *table, const char *id)
{
	char	*t = evhttp_uriencode(table, -1, 0);
	char	*i = evhttp_uriencode(id, -1, 0);
	char	*loc = NULL;

	if (t != NULL && i != NULL &&
	    asprintf(&loc, "/v1/tables/%s/rows/%s", t, i) != -1) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Location", loc);
		free(loc);
	}
	free(t);
	free(i);
}

static void
http_write(struct labsyncd *env, struct evhttp_request *req,
    const char *table, const char *id, enum http_write how)
{
	json_t		*body, *row = NULL;
	char		 err[512];
	int		 created = how == HTTP_POST;
	enum reason	 r;

	if (how == HTTP_PUT) {
		/* 201 when the PUT creates the row, 200 when it replaces */
		created = rows_get_json(store_db(env->store), table, id,
		    &row) == REASON_NOT_FOUND;
		json_decref(row);
		row = NULL;
	} else if (how == HTTP_PATCH) {
		/* a missing row (404) comes before the body (413, 400) */
		if (rows_get_json(store_db(env->store), table, id, &row) ==
		    REASON_NOT_FOUND) {
			http_error(req, 404, "no such row");
			return;
		}
		json_decref(row);
		row = NULL;
	}
	if ((body = http_body(req)) == NULL)
		return;
	store_capture(env->store, 1);
	if (how == HTTP_PUT)
		r = rows_replace_json(store_db(env->store), table, id, body,
		    err, sizeof(err));
	else if (how == HTTP_PATCH)
		r = rows_patch_json(store_db(env->store), table, id, body,
		    err, sizeof(err));
	else
		r = rows_put_json(store_db(env->store), table, id, body, err,
		    sizeof(err));
	store_capture(env->store, 0);
	json_decref(body);
	if (r != REASON_OK) {
		http_error(req, http_status_of(r), err);
		return;
	}
	sync_local(env);	/* publish it now */
	rows_get_json(store_db(env->store), table, id, &row);
	if (created)
		http_location(req, table, id);
	http_json(req, created ? 201 : 200, json_pack("{s:s, s:o*}", "id", id,
	    "row", row));
}

/* erase: the row is erased (rows_erase), not only deleted. */
static void
http_delete(struct labsyncd *env, struct evhttp_request *req,
    const char *table, const char *id, int erase)
{
	char		 err[512];
	enum reason	 r;

	store_capture(env->store, 1);
	if (erase)
		r = rows_erase(env->store, table, id, "http", err,
		    sizeof(err));
	else
		r = rows_delete(store_db(env->store), table, id, err,
		    sizeof(err));
	store_capture(env->store, 0);
	if (r == REASON_NOT_FOUND)
		http_error(req, 404, "no such row");
	else if (r != REASON_OK)
		http_error(req, http_status_of(r), err);
	else {
		sync_local(env);
		http_json(req, 200, json_pack("{s:s, s:b}", "deleted", id,
		    "erased", erase));
	}
}

/* DELETE's ?erase=: 1, 0 (also when absent), -1 if it is bad. */
static int
http_erase_param(struct evhttp_request *req)
{
	struct evkeyvalq q;
	const char	*s, *v;
	int		 ret = 0;

	s = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	if (evhttp_parse_query_str(s != NULL ? s : "", &q) == -1)
		return -1;
	if ((v = evhttp_find_header(&q, "erase")) != NULL)
		ret = strcmp(v, "1") == 0 ? 1 : strcmp(v, "0") == 0 ? 0 : -1;
	evhttp_clear_headers(&q);
	return ret;
}

/* Query parameters that are not filters. */
static int
http_reserved(const char *key)
{
	return strcmp(key, "limit") == 0 || strcmp(key, "after") == 0 ||
	    strcmp(key, "format") == 0 || strcmp(key, "meta") == 0;
}

/* The whole (filtered) table as CSV, as labsyncctl export writes it. */
static void
http_csv(struct labsyncd *env, struct evhttp_request *req, const char *table,
    char *const *where, int nwhere, int meta)
{
	struct evbuffer	*b;
	char		*buf = NULL, err[512] = "";
	size_t		 len = 0;
	FILE		*f;
	enum reason	 r;

	if ((f = open_memstream(&buf, &len)) == NULL) {
		http_error(req, 500, "out of memory");
		return;
	}
	r = rows_export(store_db(env->store), table, ROWS_CSV, where, nwhere,
	    meta, f, err, sizeof(err));
	if (fclose(f) == EOF && r == REASON_OK) {
		snprintf(err, sizeof(err), "%s", strerror(errno));
		r = REASON_NO_MEMORY;
	}
	if (r != REASON_OK)
		http_error(req, http_status_of(r), err);
	else if ((b = evbuffer_new()) == NULL)
		http_error(req, 500, "out of memory");
	else {
		evbuffer_add(b, buf, len);
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Content-Type", "text/csv; charset=utf-8");
		evhttp_send_reply(req, 200, NULL, b);
		evbuffer_free(b);
	}
	free(buf);
}

static void
http_list(struct labsyncd *env, struct evhttp_request *req, const char *table)
{
	struct evkeyvalq q;
	struct evkeyval	*kv;
	const char	*s, *after, *fmt, *meta;
	json_t		*rows = NULL;
	char		*next = NULL, *end, **where = NULL, err[512] = "";
	long		 limit = 100;
	int		 nwhere = 0, n = 0;
	enum reason	 r;

	s = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	if (evhttp_parse_query_str(s != NULL ? s : "", &q) == -1) {
		http_error(req, 400, "bad query string");
		return;
	}
	TAILQ_FOREACH(kv, &q, next)
		n++;
	if ((where = calloc(n + 1, sizeof(*where))) == NULL) {
		http_error(req, 500, "out of memory");
		goto done;
	}
	TAILQ_FOREACH(kv, &q, next) {
		if (http_reserved(kv->key))
			continue;
		if (asprintf(&where[nwhere], "%s=%s", kv->key, kv->value) ==
		    -1) {
			where[nwhere] = NULL;
			http_error(req, 500, "out of memory");
			goto done;
		}
		nwhere++;
	}
	fmt = evhttp_find_header(&q, "format");
	meta = evhttp_find_header(&q, "meta");
	if (fmt != NULL && strcmp(fmt, "csv") != 0 && strcmp(fmt, "json") != 0) {
		http_error(req, 400, "format must be csv or json");
		goto done;
	}
	if (meta != NULL && strcmp(meta, "0") != 0 && strcmp(meta, "1") != 0) {
		http_error(req, 400, "meta must be 0 or 1");
		goto done;
	}
	if (fmt != NULL && strcmp(fmt, "csv") == 0) {
		http_csv(env, req, table, where, nwhere,
		    meta != NULL && meta[0] == '1');
		goto done;
	}
	if ((s = evhttp_find_header(&q, "limit")) != NULL) {
		limit = strtol(s, &end, 10);
		if (*s == '\0' || *end != '\0' || limit < 1 ||
		    limit > HTTP_PAGE_MAX) {
			http_error(req, 400, "limit must be 1 to 1000");
			goto done;
		}
	}
	after = evhttp_find_header(&q, "after");
	if ((r = rows_page_where_json(store_db(env->store), table, after,
	    (int)limit, where, nwhere, &rows, &next, err, sizeof(err))) ==
	    REASON_OK && meta != NULL && meta[0] == '1' &&
	    (r = rows_origins_json(store_db(env->store), table, rows)) !=
	    REASON_OK)
		snprintf(err, sizeof(err), "cannot read the rows' origins");
	if (r != REASON_OK) {
		json_decref(rows);
		http_error(req, http_status_of(r), err);
	} else
		http_json(req, 200, json_pack("{s:o, s:s?}", "rows", rows,
		    "next", next));
done:
	for (int i = 0; where != NULL && i < nwhere; i++)
		free(where[i]);
	free(where);
	free(next);
	evhttp_clear_headers(&q);
}

/* A whole number in [min, max] from a query parameter; -1 if not. */
static int
http_number(const char *s, long long min, long long max, long long *v)
{
	char	*end;

	errno = 0;
	*v = strtoll(s, &end, 10);
	return *s == '\0' || *end != '\0' || errno != 0 || *v < min ||
	    *v > max ? -1 : 0;
}

/*
 * GET /v1/changes?since=CURSOR[&table=T][&limit=N]: the change feed,
 * no token needed. A cursor older than compaction kept answers 410.
 */
static void
http_changes(struct labsyncd *env, struct evhttp_request *req)
{
	struct evkeyvalq q;
	struct evkeyval	*kv;
	const char	*s, *table;
	long long	 since = 0, limit = FEED_LIMIT;
	json_t		*changes;
	int64_t		 next;
	enum reason	 r;

	s = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	if (evhttp_parse_query_str(s != NULL ? s : "", &q) == -1) {
		http_error(req, 400, "bad query string");
		return;
	}
	TAILQ_FOREACH(kv, &q, next) {
		if (strcmp(kv->key, "since") != 0 &&
		    strcmp(kv->key, "table") != 0 &&
		    strcmp(kv->key, "limit") != 0) {
			http_error(req, 400, "unknown parameter: the feed "
			    "takes since, table and limit");
			goto done;
		}
	}
	if ((s = evhttp_find_header(&q, "since")) != NULL &&
	    http_number(s, 0, INT64_MAX, &since) == -1) {
		http_error(req, 400, "since must be a cursor: 0 or the "
		    "\"next\" of an earlier answer");
		goto done;
	}
	if ((s = evhttp_find_header(&q, "limit")) != NULL &&
	    http_number(s, 1, FEED_LIMIT_MAX, &limit) == -1) {
		http_error(req, 400, "limit must be 1 to 1000");
		goto done;
	}
	if ((table = evhttp_find_header(&q, "table")) != NULL &&
	    !config_table_synced(env->conf, table)) {
		http_error(req, 404, "no such synced table");
		goto done;
	}
	/* a catch-up transaction held open is ended first: the feed shows
	   only what is committed, so a cursor is never given twice */
	store_settle(env->store);
	r = feed_read(env->store, since, table, (int)limit, &changes, &next);
	if (r == REASON_COMPACTED || r == REASON_CURSOR_AHEAD)
		http_json(req, 410, json_pack("{s:s, s:s, s:s, s:I}", "error",
		    r == REASON_COMPACTED ? "changes after this cursor were "
		    "compacted away" : "this cursor is beyond the newest "
		    "change of this node's database (restored from a backup, "
		    "or another node's cursor)", "reason", reason_name(r),
		    "hint", "read the tables again (GET /v1/tables/T/rows), "
		    "then follow the feed from since=0",
		    "since", (json_int_t)since));
	else if (r != REASON_OK)
		http_error(req, http_status_of(r), "cannot read the change "
		    "feed");
	else
		http_json(req, 200, json_pack("{s:o, s:I}", "changes",
		    changes, "next", (json_int_t)next));
done:
	evhttp_clear_headers(&q);
}

/* GET /v1/tables: the synced and local tables and their columns. */
static void
http_tables(struct labsyncd *env, struct evhttp_request *req)
{
	const struct config	*c = env->conf;
	json_t			*a = json_array(), *cols, *t;
	enum reason		 r;

	for (size_t i = 0; a != NULL && i < c->ntables + c->nlocal; i++) {
		const char *name = i < c->ntables ? c->tables[i] :
		    c->local[i - c->ntables];

		if ((r = rows_columns_json(store_db(env->store), name,
		    &cols)) == REASON_UNKNOWN_TABLE)
			continue;	/* configured, not in the database */
		if (r != REASON_OK || (t = json_pack("{s:s, s:b, s:b, s:o}",
		    "name", name, "synced", i < c->ntables, "local",
		    i >= c->ntables, "columns", cols)) == NULL ||
		    json_array_append_new(a, t) == -1) {
			json_decref(a);
			a = NULL;
		}
	}
	if (a == NULL)
		http_error(req, 500, "cannot read the tables");
	else
		http_json(req, 200, json_pack("{s:o}", "tables", a));
}

/*
 * /v1/tables/{table}/rows[/{id}]: the checks, in the documented order.
 * parts: table, "rows", id (id may be NULL).
 */
static void
http_rows(struct labsyncd *env, struct evhttp_request *req, const char *table,
    const char *id)
{
	enum evhttp_cmd_type	 m = evhttp_request_get_command(req);
	int			 write, local, synced, erase;
	enum reason		 r;
	char			 newid[UUID_STRLEN + 1];
	json_t			*row;

	if (id == NULL && m != EVHTTP_REQ_GET && m != EVHTTP_REQ_POST) {
		http_not_allowed(req, HTTP_ALLOW_ROWS);
		return;
	}
	if (id != NULL && m != EVHTTP_REQ_GET && m != EVHTTP_REQ_PUT &&
	    m != EVHTTP_REQ_PATCH && m != EVHTTP_REQ_DELETE) {
		http_not_allowed(req, HTTP_ALLOW_ROW);
		return;
	}
	write = m != EVHTTP_REQ_GET;
	synced = config_table_synced(env->conf, table);
	local = config_table_local(env->conf, table);
	/* 401 only for a missing or wrong token; a node without a token
	   takes no writes at all (403) */
	if ((write || local) && !env->has_token) {
		http_error(req, 403, "no token_file configured: writes and "
		    "local tables are disabled on this node");
		return;
	}
	if ((write || local) && !http_authorized(env, req)) {
		http_error(req, 401, "missing or wrong bearer token");
		return;
	}
	if (write && env->conf->role == CONFIG_ROLE_OBSERVER) {
		http_error(req, 403, "this node is an observer: local writes "
		    "are refused");
		return;
	}
	if (write && synced && !config_table_writable(env->conf, table)) {
		http_error(req, 403, "this node is a partner that may not "
		    "write this table: local writes to it are refused");
		return;
	}
	if (!synced && !local) {
		http_error(req, 404, "no such table");
		return;
	}
	switch (m) {
	case EVHTTP_REQ_GET:
		if (id == NULL) {
			http_list(env, req, table);
			return;
		}
		if ((r = rows_get_json(store_db(env->store), table, id,
		    &row)) == REASON_NOT_FOUND)
			http_error(req, 404, "no such row");
		else if (r != REASON_OK)
			http_error(req, http_status_of(r), "cannot read the "
			    "row");
		else
			http_json_tagged(req, 200, row, 1);
		return;
	case EVHTTP_REQ_POST:
		uuid_v7(newid);
		http_write(env, req, table, newid, HTTP_POST);
		return;
	case EVHTTP_REQ_PUT:
		http_write(env, req, table, id, HTTP_PUT);
		return;
	case EVHTTP_REQ_PATCH:
		http_write(env, req, table, id, HTTP_PATCH);
		return;
	case EVHTTP_REQ_DELETE:
		if (evbuffer_get_length(evhttp_request_get_input_buffer(req)) >
		    HTTP_MAX_BODY) {
			/* a missing row (404) comes before the size (413) */
			row = NULL;
			if (rows_get_json(store_db(env->store), table, id,
			    &row) == REASON_NOT_FOUND)
				http_error(req, 404, "no such row");
			else
				http_error(req, 413, "body above 1 MiB");
			json_decref(row);
			return;
		}
		if ((erase = http_erase_param(req)) == -1) {
			http_error(req, 400, "erase must be 0 or 1");
			return;
		}
		http_delete(env, req, table, id, erase);
		return;
	default:
		return;
	}
}

/* With [http] cors_origin: the headers every answer carries. */
static void
http_cors(struct labsyncd *env, struct evhttp_request *req)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);

	if (env->conf->http_cors_origin == NULL)
		return;
	evhttp_add_header(out, "Access-Control-Allow-Origin",
	    env->conf->http_cors_origin);
	evhttp_add_header(out, "Access-Control-Expose-Headers",
	    "ETag, Location");
	if (strcmp(env->conf->http_cors_origin, "*") != 0)
		evhttp_add_header(out, "Vary", "Origin");
}

/* A CORS preflight (OPTIONS) of a path whose methods are allow. */
static void
http_preflight(struct evhttp_request *req, const char *allow)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);

	evhttp_add_header(out, "Allow", allow);
	evhttp_add_header(out, "Access-Control-Allow-Methods", allow);
	evhttp_add_header(out, "Access-Control-Allow-Headers",
	    "Authorization, Content-Type, If-None-Match");
	evhttp_add_header(out, "Access-Control-Max-Age", "600");
	evhttp_send_reply(req, 204, "No Content", NULL);
}

static void
http_cb(struct evhttp_request *req, void *arg)
{
	struct labsyncd	*env = arg;
	const char	*path = evhttp_uri_get_path(
	    evhttp_request_get_evhttp_uri(req));
	const char	*allow = NULL;
	char		*raw, *parts[6], *save, *tok;
	int		 n, nparts = 0;
	size_t		 declen;

	http_cors(env, req);
	if (path == NULL || (raw = strdup(path)) == NULL) {
		http_error(req, 400, "bad path");
		return;
	}
	/* split first, then decode each segment: ids may hold "%2F" */
	for (tok = strtok_r(raw, "/", &save); tok != NULL;
	    tok = strtok_r(NULL, "/", &save)) {
		if (nparts == 6)
			break;	/* too deep: not ours */
		if ((parts[nparts] = evhttp_uridecode(tok, 0, &declen)) ==
		    NULL || strlen(parts[nparts++]) != declen) {	/* %00 */
			http_error(req, 400, "bad path");
			goto done;
		}
	}
	n = tok != NULL ? 0 : nparts;
	/* the methods of each path: 405 and preflights */
	if ((n == 0 && tok == NULL) || (n == 1 && (strcmp(parts[0], "healthz") == 0 ||
	    strcmp(parts[0], "metrics") == 0)) || (n == 2 &&
	    strcmp(parts[0], "v1") == 0 && (strcmp(parts[1], "status") == 0 ||
	    strcmp(parts[1], "tables") == 0 ||
	    strcmp(parts[1], "changes") == 0)))
		allow = "GET";
	else if ((n == 4 || n == 5) && strcmp(parts[0], "v1") == 0 &&
	    strcmp(parts[1], "tables") == 0 && strcmp(parts[3], "rows") == 0)
		allow = n == 4 ? HTTP_ALLOW_ROWS : HTTP_ALLOW_ROW;
	if (allow != NULL && env->conf->http_cors_origin != NULL &&
	    evhttp_request_get_command(req) == EVHTTP_REQ_OPTIONS)
		http_preflight(req, allow);
	else if (allow == NULL)
		http_error(req, 404, "no such resource");
	else if (n == 4 || n == 5)
		http_rows(env, req, parts[2], n == 5 ? parts[4] : NULL);
	else if (evhttp_request_get_command(req) != EVHTTP_REQ_GET)
		http_not_allowed(req, "GET");
	else if (n == 0)
		dashboard_serve(req);
	else if (n == 1 && parts[0][0] == 'h')
		http_healthz(env, req);
	else if (n == 1)
		http_metrics(env, req);
	else if (strcmp(parts[1], "status") == 0)
		http_status(env, req);
	else if (strcmp(parts[1], "changes") == 0)
		http_changes(env, req);
	else
		http_tables(env, req);
done:
	for (int i = 0; i < nparts; i++)
		free(parts[i]);
	free(raw);
}

int
http_open(struct labsyncd *env)
{
	const struct config	*c = env->conf;
	char			 token[512], err[600];

	if (c->http_host == NULL)
		return 0;
	if (c->http_token_file != NULL) {
		if (keys_read_private(c->http_token_file, token, sizeof(token),
		    NULL, err, sizeof(err)) == -1) {
			log_error("%s: token_file %s", c->path, err);
			return -1;
		}
		crypto_hash_sha256(env->token_hash, (const uint8_t *)token,
		    strlen(token));
		sodium_memzero(token, sizeof(token));
		env->has_token = 1;
	} else
		log_warnx("[http] has no token_file: HTTP writes are refused");
	if ((env->http = evhttp_new(env->base)) == NULL)
		return -1;
	evhttp_set_timeout(env->http, HTTP_TIMEOUT);
	evhttp_set_max_body_size(env->http, HTTP_READ_LIMIT);
	evhttp_set_allowed_methods(env->http, EVHTTP_REQ_GET | EVHTTP_REQ_PUT |
	    EVHTTP_REQ_POST | EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_PATCH | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
	    EVHTTP_REQ_CONNECT);
	evhttp_set_gencb(env->http, http_cb, env);
	if (evhttp_bind_socket_with_handle(env->http, c->http_host,
	    (ev_uint16_t)c->http_port) == NULL) {
		fatalx("cannot listen for HTTP on %s:%d", c->http_host,
		    c->http_port);
	}
	log_info("HTTP API on http://%s:%d/", c->http_host, c->http_port);
	return 0;
}

void
http_close(struct labsyncd *env)
{
	if (env->http != NULL)
		evhttp_free(env->http);
	env->http = NULL;
}
