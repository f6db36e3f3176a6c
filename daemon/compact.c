/*
 * compact.c: log compaction. What a node must keep is the state: each
 * row's newest values, every column's clock and the newest tombstone
 * (key and clock), in the tables and labsync_row / labsync_rowid. A log
 * entry is only the way to a peer that lacks it; once every configured
 * peer has confirmed holding it, it is superseded, and it goes, in small
 * steps, once it is older than [sync] compact_after (partners reading
 * the change feed get that long to follow).
 *
 * Per origin o the horizon H(o) is the least of what each configured
 * peer confirmed of o (its committed vector: heartbeats, Hello, Ack) and
 * of what we committed of o. Entries of o up to H(o) may go; then
 * labsync_origin.floor says the log lacks o up to there, and
 * labsync_state.at_floor that the change feed lacks its cursors up to
 * the highest one dropped. What peers confirmed is kept in
 * labsync_peer_seen, so a peer that is down holds the log across our
 * restarts; a configured peer never heard from holds all of it, and one
 * removed from the configuration nothing.
 */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "clock.h"
#include "log.h"
#include "store.h"

#include "store_private.h"

/* What a peer confirmed of one origin. */
struct compact_seen {
	char		*origin;
	uint64_t	 seq;		/* confirmed */
	uint64_t	 saved;		/* ... as labsync_peer_seen has it */
};

struct compact_peer {
	char			*name;
	struct compact_seen	*seen;
	size_t			 nseen;
};

struct compact {
	struct compact_peer	*peers;	/* configured, in config order */
	size_t			 npeers;
	sqlite3_stmt		*st_seen_put, *st_range, *st_drop;
	sqlite3_stmt		*st_floor, *st_at_floor;
};

static void
compact_peer_clear(struct compact_peer *p)
{
	for (size_t i = 0; i < p->nseen; i++)
		free(p->seen[i].origin);
	free(p->seen);
	free(p->name);
	memset(p, 0, sizeof(*p));
}

void
compact_free(struct store *s)
{
	struct compact	*c = s->compact;

	if (c == NULL)
		return;
	for (size_t i = 0; i < c->npeers; i++)
		compact_peer_clear(&c->peers[i]);
	free(c->peers);
	sqlite3_finalize(c->st_seen_put);
	sqlite3_finalize(c->st_range);
	sqlite3_finalize(c->st_drop);
	sqlite3_finalize(c->st_floor);
	sqlite3_finalize(c->st_at_floor);
	free(c);
	s->compact = NULL;
}

static struct compact_peer *
compact_peer_find(struct compact *c, const char *name)
{
	for (size_t i = 0; c != NULL && i < c->npeers; i++)
		if (strcmp(c->peers[i].name, name) == 0)
			return &c->peers[i];
	return NULL;
}

static struct compact_seen *
compact_seen_find(const struct compact_peer *p, const char *origin)
{
	for (size_t i = 0; i < p->nseen; i++)
		if (strcmp(p->seen[i].origin, origin) == 0)
			return &p->seen[i];
	return NULL;
}

/* Raise what p confirmed of origin to seq (never lowers it). */
static int
compact_seen_raise(struct compact_peer *p, const char *origin, uint64_t seq,
    int saved)
{
	struct compact_seen	*e;

	if ((e = compact_seen_find(p, origin)) == NULL) {
		if ((e = reallocarray(p->seen, p->nseen + 1,
		    sizeof(*p->seen))) == NULL)
			return -1;
		p->seen = e;
		e = &p->seen[p->nseen];
		if ((e->origin = strdup(origin)) == NULL)
			return -1;
		e->seq = e->saved = 0;
		p->nseen++;
	}
	if (seq > e->seq)
		e->seq = seq;
	if (saved && seq > e->saved)
		e->saved = seq;
	return 0;
}

/* What peer confirmed of origin: 0 if it never said. */
static uint64_t
compact_seen_seq(const struct compact_peer *p, const char *origin)
{
	const struct compact_seen *e = compact_seen_find(p, origin);

	return e != NULL ? e->seq : 0;
}

static int
compact_prepare(struct store *s, struct compact *c)
{
	if (store_prepare(s, &c->st_seen_put, "INSERT INTO labsync_peer_seen"
	    "(peer, origin, seq) VALUES (?, ?, ?) ON CONFLICT(peer, origin)"
	    " DO UPDATE SET seq = max(seq, excluded.seq)") == -1 ||
	    store_prepare(s, &c->st_range, "SELECT key, hlc, at FROM"
	    " labsync_log WHERE key > ? AND key <= ? ORDER BY key LIMIT ?") ==
	    -1 ||
	    store_prepare(s, &c->st_drop, "DELETE FROM labsync_log WHERE"
	    " key > ? AND key <= ?") == -1 ||
	    store_prepare(s, &c->st_floor, "UPDATE labsync_origin SET floor ="
	    " max(floor, ?) WHERE id = ?") == -1 ||
	    store_prepare(s, &c->st_at_floor, "UPDATE labsync_state SET"
	    " at_floor = max(at_floor, ?)") == -1)
		return -1;
	return 0;
}

/* Load what labsync_peer_seen says peer confirmed. */
static int
compact_peer_load(struct store *s, struct compact_peer *p)
{
	sqlite3_stmt	*st;
	int		 rc, ret = 0;

	if (sqlite3_prepare_v2(s->db, "SELECT origin, seq FROM"
	    " labsync_peer_seen WHERE peer = ?", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, p->name, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (compact_seen_raise(p, (const char *)sqlite3_column_text(st,
		    0), (uint64_t)sqlite3_column_int64(st, 1), 1) == -1) {
			ret = -1;
			break;
		}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		ret = -1;
	sqlite3_finalize(st);
	return ret;
}

/*
 * Forget what peers no longer configured confirmed (in the database too:
 * they no longer hold the log), and load what the configured ones did.
 */
static int
compact_forget_others(struct store *s, struct compact *c)
{
	sqlite3_stmt	*st;
	char		**gone = NULL, **g;
	size_t		 ngone = 0;
	int		 rc, ret = -1;

	if (sqlite3_prepare_v2(s->db, "SELECT DISTINCT peer FROM"
	    " labsync_peer_seen", -1, &st, NULL) != SQLITE_OK)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);

		if (name == NULL || compact_peer_find(c, name) != NULL)
			continue;
		if ((g = reallocarray(gone, ngone + 1, sizeof(*gone))) ==
		    NULL)
			goto done;
		gone = g;
		if ((gone[ngone] = strdup(name)) == NULL)
			goto done;
		ngone++;
	}
	if (rc != SQLITE_DONE)
		goto done;
	for (size_t i = 0; i < ngone; i++) {
		char *sql = store_sql("DELETE FROM labsync_peer_seen WHERE"
		    " peer = %Q", gone[i]);

		rc = store_exec(s, sql);
		sqlite3_free(sql);
		if (rc == -1)
			goto done;
		log_info("compaction: %s is no longer a peer: it no longer "
		    "holds the log", gone[i]);
	}
	ret = 0;
done:
	sqlite3_finalize(st);
	for (size_t i = 0; i < ngone; i++)
		free(gone[i]);
	free(gone);
	return ret;
}

/*
 * The configured peers (at start and on reload): each holds the log
 * from what it confirmed on; peers no longer among them are forgotten.
 */
int
compact_peers(struct store *s, char *const *names, size_t n)
{
	struct compact	*c, *old = s->compact;
	int		 ret = -1;

	store_settle(s);
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->peers = calloc(n + 1, sizeof(*c->peers))) == NULL) {
		free(c);
		log_warn("compaction");
		return -1;
	}
	if (compact_prepare(s, c) == -1)
		goto done;
	for (size_t i = 0; i < n; i++) {
		struct compact_peer *p = &c->peers[c->npeers];
		struct compact_peer *was = compact_peer_find(old, names[i]);

		if ((p->name = strdup(names[i])) == NULL)
			goto done;
		c->npeers++;
		if (compact_peer_load(s, p) == -1)
			goto done;
		/* what it said and is not saved yet */
		for (size_t j = 0; was != NULL && j < was->nseen; j++)
			if (compact_seen_raise(p, was->seen[j].origin,
			    was->seen[j].seq, 0) == -1)
				goto done;
	}
	if (compact_forget_others(s, c) == -1)
		goto done;
	ret = 0;
done:
	if (ret == -1) {
		log_warnx("compaction: cannot read what peers hold: %s",
		    sqlite3_errmsg(s->db));
		s->compact = c;
		compact_free(s);
		s->compact = old;
		return -1;
	}
	compact_free(s);
	s->compact = c;
	return 0;
}

/* A configured peer's vector, as it committed it. */
void
compact_heard(struct store *s, const char *peer, const Labsync__Vector *v)
{
	struct compact_peer	*p = compact_peer_find(s->compact, peer);

	for (size_t i = 0; p != NULL && i < v->n_entries; i++) {
		const Labsync__VectorEntry *e = v->entries[i];

		/* origins we know only: a peer's vector cannot grow ours */
		if (e->origin == NULL || vector_origin_find(s, e->origin) ==
		    NULL)
			continue;
		if (compact_seen_raise(p, e->origin, e->seq, 0) == -1) {
			log_warnx("compaction: peer %s: out of memory", peer);
			return;
		}
	}
}

/* H(o): the entries of o every configured peer holds, and we committed. */
static uint64_t
compact_horizon(struct store *s, const struct origin *o)
{
	struct compact	*c = s->compact;
	uint64_t	 h = o->committed;

	/* with no peer, nobody confirmed anything: a peer added later
	   catches up from the log */
	if (c->npeers == 0)
		return 0;
	if (o == s->self && s->published < h)
		h = s->published;	/* ours not read to publish yet */
	for (size_t i = 0; i < c->npeers; i++) {
		uint64_t seen = compact_seen_seq(&c->peers[i], o->name);

		if (seen < h)
			h = seen;
	}
	return h;
}

/* Save what peers confirmed since the last step. */
static int
compact_save_seen(struct store *s)
{
	struct compact	*c = s->compact;

	for (size_t i = 0; i < c->npeers; i++) {
		struct compact_peer *p = &c->peers[i];

		for (size_t j = 0; j < p->nseen; j++) {
			if (p->seen[j].seq <= p->seen[j].saved)
				continue;
			sqlite3_bind_text(c->st_seen_put, 1, p->name, -1,
			    SQLITE_STATIC);
			sqlite3_bind_text(c->st_seen_put, 2,
			    p->seen[j].origin, -1, SQLITE_STATIC);
			sqlite3_bind_int64(c->st_seen_put, 3,
			    (int64_t)p->seen[j].seq);
			if (store_step_done(s, c->st_seen_put) == -1)
				return -1;
		}
	}
	return 0;
}

/*
 * Drop up to max entries of o above its floor, up to h and older than
 * cutoff (an HLC): the entries dropped go in *n, the new floor in *floor,
 * the highest feed cursor dropped in *at.
 */
static int
compact_origin(struct store *s, const struct origin *o, uint64_t h,
    uint64_t cutoff, int max, int *n, uint64_t *floor, int64_t *at)
{
	struct compact	*c = s->compact;
	uint64_t	 base = (uint64_t)o->id << ORIGIN_SHIFT, last = o->floor;
	int		 rc;

	*n = 0;
	sqlite3_bind_int64(c->st_range, 1, (int64_t)(base | o->floor));
	sqlite3_bind_int64(c->st_range, 2, (int64_t)(base | h));
	sqlite3_bind_int64(c->st_range, 3, max);
	while ((rc = sqlite3_step(c->st_range)) == SQLITE_ROW) {
		uint64_t seq = (uint64_t)sqlite3_column_int64(c->st_range, 0) &
		    ORIGIN_SEQ_MAX;

		/* in key order: everything up to here is old enough (a
		   hole, an entry some other path removed, is passed over) */
		if ((uint64_t)sqlite3_column_int64(c->st_range, 1) >= cutoff)
			break;
		if (sqlite3_column_type(c->st_range, 2) != SQLITE_NULL &&
		    sqlite3_column_int64(c->st_range, 2) > *at)
			*at = sqlite3_column_int64(c->st_range, 2);
		last = seq;
		(*n)++;
	}
	sqlite3_reset(c->st_range);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		log_warnx("compaction: %s", sqlite3_errmsg(s->db));
		return -1;
	}
	*floor = last;
	if (*n == 0)
		return 0;
	sqlite3_bind_int64(c->st_drop, 1, (int64_t)(base | o->floor));
	sqlite3_bind_int64(c->st_drop, 2, (int64_t)(base | last));
	if (store_step_done(s, c->st_drop) == -1)
		return -1;
	sqlite3_bind_int64(c->st_floor, 1, (int64_t)last);
	sqlite3_bind_int64(c->st_floor, 2, o->id);
	return store_step_done(s, c->st_floor);
}

/* Whether o's oldest entry in the log is below its horizon and older
   than cutoff: a read, so that a step with nothing to do writes nothing. */
static int
compact_due(struct store *s, const struct origin *o, uint64_t cutoff)
{
	struct compact	*c = s->compact;
	uint64_t	 base = (uint64_t)o->id << ORIGIN_SHIFT;
	uint64_t	 h = compact_horizon(s, o);
	int		 due = 0;

	if (h <= o->floor)
		return 0;
	sqlite3_bind_int64(c->st_range, 1, (int64_t)(base | o->floor));
	sqlite3_bind_int64(c->st_range, 2, (int64_t)(base | h));
	sqlite3_bind_int64(c->st_range, 3, 1);
	if (sqlite3_step(c->st_range) == SQLITE_ROW)
		due = (uint64_t)sqlite3_column_int64(c->st_range, 1) < cutoff;
	sqlite3_reset(c->st_range);
	return due;
}

/*
 * One step, in a short transaction of its own: save what peers
 * confirmed, drop at most max entries every peer holds that are older
 * than after_ms. Never inside another transaction (the apply one held
 * open): then it waits for the next step. *dropped: how many went.
 */
int
compact_step(struct store *s, uint64_t now_ms, uint64_t after_ms, int max,
    int *dropped)
{
	struct compact	*c = s->compact;
	uint64_t	*floors = NULL, cutoff;
	int64_t		 at = 0;
	int		 left = max, dirty = 0, due = 0, ret = -1;

	*dropped = 0;
	if (c == NULL || s->held != NULL || sqlite3_get_autocommit(s->db) == 0)
		return 0;
	cutoff = now_ms > after_ms ? CLOCK_MAKE(now_ms - after_ms, 0) : 0;
	for (size_t i = 0; i < c->npeers; i++)
		for (size_t j = 0; j < c->peers[i].nseen; j++)
			if (c->peers[i].seen[j].seq > c->peers[i].seen[j].saved)
				dirty = 1;
	for (size_t i = 0; i < s->norigins && !due; i++)
		due = compact_due(s, &s->origins[i], cutoff);
	if (!dirty && !due)
		return 0;
	if ((floors = calloc(s->norigins + 1, sizeof(*floors))) == NULL) {
		log_warn("compaction");
		return -1;
	}
	if (store_begin(s) == -1)
		goto done;
	if (compact_save_seen(s) == -1)
		goto rollback;
	for (size_t i = 0; i < s->norigins; i++) {
		struct origin *o = &s->origins[i];
		uint64_t h = compact_horizon(s, o);
		int n = 0;

		floors[i] = o->floor;
		if (left <= 0 || h <= o->floor)
			continue;
		if (compact_origin(s, o, h, cutoff, left, &n, &floors[i],
		    &at) == -1)
			goto rollback;
		left -= n;
		*dropped += n;
	}
	if (at > 0) {
		sqlite3_bind_int64(c->st_at_floor, 1, at);
		if (store_step_done(s, c->st_at_floor) == -1)
			goto rollback;
	}
	if (store_exec(s, "COMMIT") == -1)
		goto rollback;
	for (size_t i = 0; i < s->norigins; i++)
		s->origins[i].floor = floors[i];
	for (size_t i = 0; i < c->npeers; i++)
		for (size_t j = 0; j < c->peers[i].nseen; j++)
			c->peers[i].seen[j].saved = c->peers[i].seen[j].seq;
	if (*dropped > 0)
		checkpoint_nudge(s);
	ret = 0;
	goto done;
rollback:
	log_warnx("compaction: step rolled back; will retry");
	if (sqlite3_get_autocommit(s->db) == 0)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	*dropped = 0;
done:
	free(floors);
	return ret;
}

/*
 * What peer holds back in our log: the entries it has not confirmed
 * (above the floor), and when the oldest of them was made (ms; 0: none).
 */
uint64_t
compact_held_back(struct store *s, const char *peer, uint64_t *oldest_ms)
{
	struct compact		*c = s->compact;
	struct compact_peer	*p = compact_peer_find(c, peer);
	uint64_t		 n = 0;

	*oldest_ms = 0;
	if (p == NULL)
		return 0;
	for (size_t i = 0; i < s->norigins; i++) {
		struct origin *o = &s->origins[i];
		uint64_t from = compact_seen_seq(p, o->name);
		uint64_t ms;

		if (from < o->floor)
			from = o->floor;
		if (o->committed <= from)
			continue;
		n += o->committed - from;
		/* its first entry it lacks: the oldest of o's (o's clock
		   never goes back) */
		sqlite3_bind_int64(c->st_range, 1, (int64_t)((uint64_t)o->id <<
		    ORIGIN_SHIFT | from));
		sqlite3_bind_int64(c->st_range, 2, (int64_t)((uint64_t)o->id <<
		    ORIGIN_SHIFT | o->committed));
		sqlite3_bind_int64(c->st_range, 3, 1);
		if (sqlite3_step(c->st_range) == SQLITE_ROW) {
			ms = CLOCK_MS((uint64_t)sqlite3_column_int64(
			    c->st_range, 1));
			if (ms > 0 && (*oldest_ms == 0 || ms < *oldest_ms))
				*oldest_ms = ms;
		}
		sqlite3_reset(c->st_range);
	}
	return n;
}

/* What peer confirmed of origin (0: nothing, or no configured peer). */
uint64_t
compact_confirmed(struct store *s, const char *peer, const char *origin)
{
	struct compact_peer	*p = compact_peer_find(s->compact, peer);

	return p != NULL ? compact_seen_seq(p, origin) : 0;
}
