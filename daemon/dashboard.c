/*
 * dashboard.c: the partners' page at GET /: one HTML file with inline
 * CSS and JavaScript (daemon/dashboard.html), built into the binary as a
 * C array by the Makefile, so it works offline and needs no files at run
 * time. The page reads the JSON API like any other client and polls it;
 * the daemon only hands the page out. Its Content-Security-Policy lets it
 * talk to this listener only.
 */
#include <stddef.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "dashboard.h"

/* build/dashboard_html.c, generated from daemon/dashboard.html */
extern const unsigned char dashboard_html[];
extern const size_t dashboard_html_len;

void
dashboard_serve(struct evhttp_request *req)
{
	struct evkeyvalq	*h = evhttp_request_get_output_headers(req);
	struct evbuffer		*b = evbuffer_new();

	if (b == NULL ||
	    evbuffer_add_reference(b, dashboard_html, dashboard_html_len,
	    NULL, NULL) == -1) {
		evbuffer_free(b);
		evhttp_send_error(req, 500, NULL);
		return;
	}
	evhttp_add_header(h, "Content-Type", "text/html; charset=utf-8");
	evhttp_add_header(h, "Cache-Control", "no-cache");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "Content-Security-Policy", "default-src 'none'; "
	    "script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
	    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
	    "form-action 'none'; frame-ancestors 'none'");
	evhttp_send_reply(req, 200, NULL, b);
	evbuffer_free(b);
}
