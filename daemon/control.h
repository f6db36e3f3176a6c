/*
 * control.h: the local control socket of labsyncctl (control.c).
 */
#ifndef LABSYNC_CONTROL_H
#define LABSYNC_CONTROL_H

struct labsyncd;

int	control_open(struct labsyncd *);
/* The node as labsyncctl status shows it (JSON, to free), or NULL. */
char	*control_status_json(struct labsyncd *);

#endif
