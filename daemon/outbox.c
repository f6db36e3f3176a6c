/*
 * outbox.c: committed changes on their way to our live feed, local ones
 * (changelog_take_local) and applied ones relayed (changelog_append),
 * packed one after another in one buffer: thousands of small copies
 * would fragment the heap. The daemon drains it after each commit; a
 * rollback cuts it back to where the transaction began.
 */
#include <stdlib.h>
#include <string.h>

#include "store.h"

#include "store_private.h"

/* Add one packed change of origin (an id); -1 when out of memory. */
int
outbox_add(struct store *s, int64_t origin, const uint8_t *data,
    size_t len)
{
	if (s->noutbox == s->outbox_cap) {
		size_t cap = s->outbox_cap ? s->outbox_cap * 2 : 256;
		struct outbuf *n = reallocarray(s->outbox, cap, sizeof(*n));

		if (n == NULL)
			return -1;
		s->outbox = n;
		s->outbox_cap = cap;
	}
	if (s->outbox_size - s->outbox_used < len) {
		size_t size = s->outbox_size ? s->outbox_size : 65536;
		uint8_t *n;

		while (size - s->outbox_used < len)
			size *= 2;
		if ((n = realloc(s->outbox_bytes, size)) == NULL)
			return -1;
		s->outbox_bytes = n;
		s->outbox_size = size;
	}
	memcpy(s->outbox_bytes + s->outbox_used, data, len);
	s->outbox[s->noutbox].off = s->outbox_used;
	s->outbox[s->noutbox].len = len;
	s->outbox[s->noutbox].origin = origin;
	s->outbox_used += len;
	s->noutbox++;
	return 0;
}

/* Hand every change in the outbox to cb, then empty it. */
int
outbox_drain(struct store *s, store_change_cb cb, void *arg)
{
	int	 ret = 0;

	for (size_t i = 0; i < s->noutbox; i++) {
		struct origin *o = vector_origin_byid(s, s->outbox[i].origin);

		if (ret == 0 && cb(arg, o != NULL ? o->name : "",
		    s->outbox_bytes + s->outbox[i].off, s->outbox[i].len) == -1)
			ret = -1;
	}
	s->noutbox = 0;
	s->outbox_used = 0;
	/* a bulk load's outbox is not kept for the trickle that follows */
	if (s->outbox_size > STORE_OUTBOX_KEEP) {
		free(s->outbox_bytes);
		free(s->outbox);
		s->outbox_bytes = NULL;
		s->outbox = NULL;
		s->outbox_size = s->outbox_cap = 0;
	}
	return ret;
}

size_t
outbox_len(const struct store *s)
{
	return s->noutbox;
}

/* Forget what was added since the outbox had mark changes. */
void
outbox_rollback(struct store *s, size_t mark)
{
	if (mark < s->noutbox) {
		s->outbox_used = s->outbox[mark].off;
		s->noutbox = mark;
	}
}

/* Free the outbox (store_free). */
void
outbox_clear(struct store *s)
{
	free(s->outbox);
	free(s->outbox_bytes);
	s->outbox = NULL;
	s->outbox_bytes = NULL;
	s->noutbox = s->outbox_cap = 0;
	s->outbox_used = s->outbox_size = 0;
}
