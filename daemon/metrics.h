/*
 * metrics.h: the Prometheus text of GET /metrics (metrics.c).
 */
#ifndef LABSYNC_METRICS_H
#define LABSYNC_METRICS_H

struct evbuffer;
struct labsyncd;

void	metrics_render(struct labsyncd *, struct evbuffer *);

#endif
