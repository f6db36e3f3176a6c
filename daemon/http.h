/*
 * http.h: the HTTP API inside the daemon's event loop (http.c).
 */
#ifndef LABSYNC_HTTP_H
#define LABSYNC_HTTP_H

struct labsyncd;

/* Listen as [http] says (nothing without a host); -1 if that fails. */
int	http_open(struct labsyncd *);
void	http_close(struct labsyncd *);

#endif
