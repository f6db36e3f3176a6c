/*
 * zap.h: admission of peers by public key (zap.c).
 */
#ifndef LABSYNC_ZAP_H
#define LABSYNC_ZAP_H

struct labsyncd;

/* Bind the ZAP handler; before any other socket. */
int	zap_open(struct labsyncd *);

#endif
