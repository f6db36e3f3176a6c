/*
 * main.h: what labsyncd's main.c offers the rest of the daemon.
 */
#ifndef LABSYNC_MAIN_H
#define LABSYNC_MAIN_H

struct labsyncd;

/* The store's schema or layout changed (a reload, an ALTER TABLE by
   another writer): recompute what the daemon derives from it. */
void	main_schema_changed(struct labsyncd *);

#endif
