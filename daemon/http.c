/*
 * http.c: the HTTP API inside the daemon's event loop (evhttp): health,
 * Prometheus metrics, status, and rows of the synced and local tables as
 * JSON (jansson). Writes go through the same capture triggers as every
 * other writer, answer only after their commit, and are published at
 * once. Errors are checked in a fixed order (405, 401, 403, 404, 413,
 * 400) and always carry a JSON body {"error": "..."}.
 *
 * evhttp never blocks the loop on a client: it reads and writes
 * non-blocking, and a timeout closes idle or half-open connections.
 */
#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>

#include "config.h"
#include "control.h"
#include "http.h"
#include "keys.h"
#include "labsyncd.h"
#include "log.h"
#include "metrics.h"
#include "rows.h"
#include "store.h"
#include "sync.h"
#include "uuid.h"

#define HTTP_MAX_BODY	(1024 * 1024)		/* larger: 413 */
#define HTTP_READ_LIMIT	(HTTP_MAX_BODY * 2)	/* evhttp's own cut-off */
#define HTTP_TIMEOUT	10			/* seconds, idle clients */
#define HTTP_PAGE_MAX	1000

static void
http_json(struct evhttp_request *req, int code, json_t *body)
{
	struct evbuffer	*b = evbuffer_new();
	char		*s = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);

	json_decref(body);
	if (b == NULL) {
		free(s);
		evhttp_send_error(req, 500, NULL);
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "application/json");
	evbuffer_add_printf(b, "%s\n", s != NULL ? s : "{}");
	evhttp_send_reply(req, code, NULL, b);
	evbuffer_free(b);
	free(s);
}

static void
http_error(struct evhttp_request *req, int code, const char *msg)
{
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
		http_json(req, 200, json_pack("{s:s}", "status", "ok"));
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
		return 403;
	case REASON_RECOVERING:
		return 503;
	default:
		return 500;
	}
}

static void
http_put(struct labsyncd *env, struct evhttp_request *req,
    const char *table, const char *id, int created)
{
	json_t		*body, *row = NULL;
	char		 err[512];
	enum reason	 r;

	if ((body = http_body(req)) == NULL)
		return;
	store_capture(env->store, 1);
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
	http_json(req, created ? 201 : 200, json_pack("{s:s, s:o*}", "id", id,
	    "row", row));
}

static void
http_delete(struct labsyncd *env, struct evhttp_request *req,
    const char *table, const char *id)
{
	char		 err[512];
	enum reason	 r;

	store_capture(env->store, 1);
	r = rows_delete(store_db(env->store), table, id, err, sizeof(err));
	store_capture(env->store, 0);
	if (r == REASON_NOT_FOUND)
		http_error(req, 404, "no such row");
	else if (r != REASON_OK)
		http_error(req, http_status_of(r), err);
	else {
		sync_local(env);
		http_json(req, 200, json_pack("{s:s}", "deleted", id));
	}
}

static void
http_list(struct labsyncd *env, struct evhttp_request *req, const char *table)
{
	struct evkeyvalq q;
	const char	*s, *after;
	json_t		*rows;
	char		*next, *end;
	long		 limit = 100;
	enum reason	 r;

	s = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	evhttp_parse_query_str(s != NULL ? s : "", &q);
	if ((s = evhttp_find_header(&q, "limit")) != NULL) {
		limit = strtol(s, &end, 10);
		if (*s == '\0' || *end != '\0' || limit < 1 ||
		    limit > HTTP_PAGE_MAX) {
			evhttp_clear_headers(&q);
			http_error(req, 400, "limit must be 1 to 1000");
			return;
		}
	}
	after = evhttp_find_header(&q, "after");
	if ((r = rows_page_json(store_db(env->store), table, after,
	    (int)limit, &rows, &next)) != REASON_OK)
		http_error(req, http_status_of(r), "cannot read rows");
	else
		http_json(req, 200, json_pack("{s:o, s:s?}", "rows", rows,
		    "next", next));
	free(next);
	evhttp_clear_headers(&q);
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
	int			 write, local, synced;
	enum reason		 r;
	char			 newid[UUID_STRLEN + 1];
	json_t			*row;

	if (id == NULL && m != EVHTTP_REQ_GET && m != EVHTTP_REQ_POST) {
		http_not_allowed(req, "GET, POST");
		return;
	}
	if (id != NULL && m != EVHTTP_REQ_GET && m != EVHTTP_REQ_PUT &&
	    m != EVHTTP_REQ_DELETE) {
		http_not_allowed(req, "GET, PUT, DELETE");
		return;
	}
	write = m != EVHTTP_REQ_GET;
	synced = config_table_synced(env->conf, table);
	local = config_table_local(env->conf, table);
	if ((write || local) && !http_authorized(env, req)) {
		http_error(req, 401, env->has_token ? "missing or wrong bearer "
		    "token" : "no token_file configured: writes are disabled");
		return;
	}
	if (write && env->conf->role == CONFIG_ROLE_OBSERVER) {
		http_error(req, 403, "this node is an observer: local writes "
		    "are refused");
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
			http_json(req, 200, row);
		return;
	case EVHTTP_REQ_POST:
		uuid_v7(newid);
		http_put(env, req, table, newid, 1);
		return;
	case EVHTTP_REQ_PUT:
		/* 201 when the PUT creates the row, 200 when it updates */
		row = NULL;
		r = rows_get_json(store_db(env->store), table, id, &row);
		json_decref(row);
		http_put(env, req, table, id, r == REASON_NOT_FOUND);
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
		http_delete(env, req, table, id);
		return;
	default:
		return;
	}
}

static void
http_cb(struct evhttp_request *req, void *arg)
{
	struct labsyncd	*env = arg;
	const char	*path = evhttp_uri_get_path(
	    evhttp_request_get_evhttp_uri(req));
	char		*raw, *parts[6], *save, *tok;
	int		 n, nparts = 0;
	size_t		 declen;

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
	if (n == 1 && (strcmp(parts[0], "healthz") == 0 ||
	    strcmp(parts[0], "metrics") == 0)) {
		if (evhttp_request_get_command(req) != EVHTTP_REQ_GET)
			http_not_allowed(req, "GET");
		else if (parts[0][0] == 'h')
			http_healthz(env, req);
		else
			http_metrics(env, req);
	} else if (n == 2 && strcmp(parts[0], "v1") == 0 &&
	    strcmp(parts[1], "status") == 0) {
		if (evhttp_request_get_command(req) != EVHTTP_REQ_GET)
			http_not_allowed(req, "GET");
		else
			http_status(env, req);
	} else if ((n == 4 || n == 5) && strcmp(parts[0], "v1") == 0 &&
	    strcmp(parts[1], "tables") == 0 && strcmp(parts[3], "rows") == 0)
		http_rows(env, req, parts[2], n == 5 ? parts[4] : NULL);
	else
		http_error(req, 404, "no such resource");
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
