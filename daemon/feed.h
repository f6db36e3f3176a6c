/*
 * feed.h: the change feed as JSON (GET /v1/changes, labsyncctl watch).
 */
#ifndef LABSYNC_FEED_H
#define LABSYNC_FEED_H

#include <stdint.h>

#include <jansson.h>

#include "reason.h"
#include "store.h"

#define FEED_LIMIT	100	/* changes per read unless told */
#define FEED_LIMIT_MAX	1000

/*
 * The changes after cursor since (0: from the oldest held), of table
 * (NULL: all), at most limit, as an array of {"cursor", "table", "id",
 * "op", "origin", "hlc", "columns"} in commit order; *next: the cursor
 * to ask from next time. REASON_COMPACTED if since is older than what
 * compaction kept (the reader must read the tables again).
 */
enum reason	feed_read(struct store *, int64_t since, const char *table,
		    int limit, json_t **changes, int64_t *next);

#endif
