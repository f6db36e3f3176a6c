/*
 * feed.c: the change feed as JSON, for partners' analysis tools: every
 * change this node holds, its own and received, in the order it
 * committed them, each with its cursor. Read from the change log
 * (changelog_read_feed), as each change is sent to peers: a local
 * column is never there, a pseudonymised one of ours is its HMAC.
 * GET /v1/changes (http.c) and `labsyncctl watch` (ctl.c) share it.
 */
#include <stdlib.h>

#include <jansson.h>
#include <sodium.h>

#include "feed.h"
#include "proto/labsync.pb-c.h"

struct feed_read {
	json_t		*changes;
	int64_t		 last;
	int		 failed;
};

/* A value as the row API shows it; blobs as {"base64": "..."}. */
static json_t *
feed_value(const Labsync__Value *v)
{
	json_t	*o;
	char	*enc;
	size_t	 elen;

	switch (v != NULL ? v->kind_case : LABSYNC__VALUE__KIND_NULL) {
	case LABSYNC__VALUE__KIND_INTEGER:
		return json_integer(v->integer);
	case LABSYNC__VALUE__KIND_REAL:
		return json_real(v->real);
	case LABSYNC__VALUE__KIND_TEXT:
		o = json_string(v->text);
		return o != NULL ? o : json_string("(invalid UTF-8)");
	case LABSYNC__VALUE__KIND_BLOB:
		elen = sodium_base64_encoded_len(v->blob.len,
		    sodium_base64_VARIANT_ORIGINAL);
		if ((enc = malloc(elen)) == NULL)
			return NULL;
		sodium_bin2base64(enc, elen, v->blob.data, v->blob.len,
		    sodium_base64_VARIANT_ORIGINAL);
		o = json_pack("{s:s}", "base64", enc);
		free(enc);
		return o;
	default:
		return json_null();
	}
}

/* One change as its feed object; NULL if it does not decode or no
   memory. */
static json_t *
feed_object(int64_t cursor, const uint8_t *data, size_t len)
{
	Labsync__Change	*c;
	json_t		*cols = NULL, *o = NULL;

	if ((c = labsync__change__unpack(NULL, len, data)) == NULL)
		return NULL;
	if ((cols = json_object()) == NULL)
		goto done;
	for (size_t i = 0; i < c->n_columns; i++) {
		if (c->columns[i]->name == NULL ||
		    json_object_set_new(cols, c->columns[i]->name,
		    feed_value(c->columns[i]->value)) == -1)
			goto done;
	}
	/* an erasure is a delete that also took the row's old values out
	   of every log, this feed's included */
	o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:O}",
	    "cursor", (json_int_t)cursor,
	    "table", c->table != NULL ? c->table : "",
	    "id", c->pk != NULL ? c->pk : "",
	    "op", c->op == LABSYNC__OP__OP_UPSERT ? "upsert" : "delete",
	    "origin", c->origin != NULL ? c->origin : "",
	    "hlc", (json_int_t)c->hlc,
	    "columns", cols);
	if (o != NULL && c->op == LABSYNC__OP__OP_ERASE &&
	    json_object_set_new(o, "erased", json_true()) == -1) {
		json_decref(o);
		o = NULL;
	}
done:
	json_decref(cols);
	labsync__change__free_unpacked(c, NULL);
	return o;
}

static int
feed_add(void *arg, int64_t cursor, const uint8_t *data, size_t len)
{
	struct feed_read *fr = arg;
	json_t		*o = feed_object(cursor, data, len);

	fr->last = cursor;
	if (o == NULL)
		return 0;	/* not one of ours to show; its cursor counts */
	if (json_array_append_new(fr->changes, o) == -1) {
		fr->failed = 1;
		return -1;
	}
	return 0;
}

enum reason
feed_read(struct store *s, int64_t since, const char *table, int limit,
    json_t **changes, int64_t *next)
{
	struct feed_read fr = { NULL, since, 0 };
	int64_t		 floor;

	*changes = NULL;
	*next = since;
	if ((floor = changelog_feed_mark(s, 1)) == -1)
		return REASON_DATABASE;
	if (since > 0 && since < floor)
		return REASON_COMPACTED;
	if ((fr.changes = json_array()) == NULL)
		return REASON_NO_MEMORY;
	if (changelog_read_feed(s, since, table, limit, feed_add, &fr) == -1) {
		json_decref(fr.changes);
		return fr.failed ? REASON_NO_MEMORY : REASON_DATABASE;
	}
	*changes = fr.changes;
	*next = fr.last;
	return REASON_OK;
}
