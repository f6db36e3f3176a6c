/*
 * dashboard.h: the read-only dashboard page that GET / serves (dashboard.c).
 */
#ifndef LABSYNC_DASHBOARD_H
#define LABSYNC_DASHBOARD_H

struct evhttp_request;

/* Answers 200 with the page built into the binary. */
void	dashboard_serve(struct evhttp_request *);

#endif
