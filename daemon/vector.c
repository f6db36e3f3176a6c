/*
 * vector.c: the origins this node holds changes of (labsync_origin), each
 * with the highest sequence held without a gap, in memory between
 * commits; the version vector built from them for peers, and what it
 * says: our own sequence, and how far a peer's vector is ahead of ours.
 */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "log.h"
#include "store.h"

#include "store_private.h"

/* The statements that register origins and keep their sequences. */
int
vector_prepare(struct store *s)
{
	if (store_prepare(s, &s->st_origin_new,
	    "INSERT INTO labsync_origin(name) VALUES (?)") == -1 ||
	    store_prepare(s, &s->st_origin_seq,
	    "UPDATE labsync_origin SET seq = max(seq, ?) WHERE id = ?") ==
	    -1 ||
	    store_prepare(s, &s->st_state_seq,
	    "UPDATE labsync_state SET seq = max(seq, ?)") == -1)
		return -1;
	return 0;
}

/* Forget the origins in memory. */
void
vector_clear(struct store *s)
{
	for (size_t i = 0; i < s->norigins; i++)
		free(s->origins[i].name);
	free(s->origins);
	s->origins = NULL;
	s->norigins = 0;
	s->self = NULL;
}

/* The origins and their sequences as committed (again, after a rollback). */
int
vector_load(struct store *s)
{
	sqlite3_stmt	*st = NULL;
	int		 rc, ret = -1;

	vector_clear(s);
	/* our own sequence: counted by the triggers in labsync_state */
	if (sqlite3_prepare_v2(s->db, "SELECT o.id, o.name, CASE o.id WHEN"
	    " st.self THEN max(o.seq, st.seq) ELSE o.seq END, o.floor FROM"
	    " labsync_origin AS o, labsync_state AS st ORDER BY o.id", -1, &st,
	    NULL) != SQLITE_OK)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct origin *o;

		if ((o = reallocarray(s->origins, s->norigins + 1,
		    sizeof(*s->origins))) == NULL)
			goto done;
		s->origins = o;
		o = &s->origins[s->norigins];
		o->id = sqlite3_column_int64(st, 0);
		o->seq = o->committed = sqlite3_column_int64(st, 2);
		o->floor = sqlite3_column_int64(st, 3);
		o->floor_said = 0;
		if ((o->name = strdup((const char *)
		    sqlite3_column_text(st, 1))) == NULL)
			goto done;
		s->norigins++;
	}
	if (rc != SQLITE_DONE)
		goto done;
	for (size_t i = 0; i < s->norigins; i++)
		if (strcmp(s->origins[i].name, s->node_id) == 0)
			s->self = &s->origins[i];
	ret = 0;
done:
	if (ret == -1)
		log_warnx("origins: %s", rc == SQLITE_ROW ? "out of memory" :
		    sqlite3_errmsg(s->db));
	sqlite3_finalize(st);
	return ret;
}

/* An origin by name; NULL if none is registered. */
struct origin *
vector_origin_find(struct store *s, const char *name)
{
	for (size_t i = 0; i < s->norigins; i++)
		if (strcmp(s->origins[i].name, name) == 0)
			return &s->origins[i];
	return NULL;
}

/* An origin by its id in labsync_origin. */
struct origin *
vector_origin_byid(struct store *s, int64_t id)
{
	for (size_t i = 0; i < s->norigins; i++)
		if (s->origins[i].id == id)
			return &s->origins[i];
	return NULL;
}

/* Find or register an origin (inside the caller's transaction). */
struct origin *
vector_origin_get(struct store *s, const char *name)
{
	struct origin	*o;
	char		*selfname = s->self != NULL ? s->self->name : NULL;

	if ((o = vector_origin_find(s, name)) != NULL)
		return o;
	sqlite3_bind_text(s->st_origin_new, 1, name, -1, SQLITE_TRANSIENT);
	if (store_step_done(s, s->st_origin_new) == -1)
		return NULL;
	/* out of memory: the caller rolls back, which forgets the row */
	if ((o = reallocarray(s->origins, s->norigins + 1,
	    sizeof(*s->origins))) == NULL) {
		log_warnx("origin %s: out of memory", name);
		return NULL;
	}
	s->origins = o;
	/* realloc moved the array: find ourselves again */
	s->self = NULL;
	if (selfname != NULL)
		s->self = vector_origin_find(s, s->node_id);
	o = &s->origins[s->norigins];
	if ((o->name = strdup(name)) == NULL) {
		log_warnx("origin %s: out of memory", name);
		return NULL;
	}
	o->id = sqlite3_last_insert_rowid(s->db);
	o->seq = o->committed = o->floor = 0;
	o->floor_said = 0;
	s->norigins++;
	return o;
}

/* Persist the sequences that moved in memory (store_commit). */
int
vector_save(struct store *s)
{
	for (size_t i = 0; i < s->norigins; i++) {
		struct origin *o = &s->origins[i];

		if (o->seq == o->committed)
			continue;
		sqlite3_bind_int64(s->st_origin_seq, 1, (int64_t)o->seq);
		sqlite3_bind_int64(s->st_origin_seq, 2, o->id);
		if (store_step_done(s, s->st_origin_seq) == -1)
			return -1;
		/* our own changes, fetched back: the triggers go on after */
		if (o == s->self) {
			sqlite3_bind_int64(s->st_state_seq, 1, (int64_t)o->seq);
			if (store_step_done(s, s->st_state_seq) == -1)
				return -1;
		}
	}
	return 0;
}

/* The transaction vector_save wrote in has committed. */
void
vector_committed(struct store *s)
{
	for (size_t i = 0; i < s->norigins; i++)
		s->origins[i].committed = s->origins[i].seq;
}

/* Our version vector: each origin we hold changes of, with its seq
   (committed: as committed, leaving out an apply transaction held open). */
static Labsync__Vector *
vector_build(struct store *s, int committed)
{
	Labsync__Vector	*v;

	if ((v = calloc(1, sizeof(*v))) == NULL)
		return NULL;
	labsync__vector__init(v);
	if ((v->entries = calloc(s->norigins + 1, sizeof(*v->entries))) ==
	    NULL)
		goto fail;
	for (size_t i = 0; i < s->norigins; i++) {
		Labsync__VectorEntry *e;

		uint64_t seq = committed ? s->origins[i].committed :
		    s->origins[i].seq;

		if (seq == 0)
			continue;
		if ((e = calloc(1, sizeof(*e))) == NULL)
			goto fail;
		labsync__vector_entry__init(e);
		v->entries[v->n_entries++] = e;
		if ((e->origin = strdup(s->origins[i].name)) == NULL)
			goto fail;
		e->seq = seq;
	}
	return v;
fail:
	log_warnx("version vector: out of memory");
	vector_free(v);
	return NULL;
}

Labsync__Vector *
vector_new(struct store *s)
{
	return vector_build(s, 0);
}

/*
 * What we tell peers we hold (heartbeats, Hello, Ack): only what is
 * committed. A peer takes it as confirmed and may compact its log: a
 * change in a transaction still open would be lost to us both if this
 * node died before the commit.
 */
Labsync__Vector *
vector_new_committed(struct store *s)
{
	return vector_build(s, 1);
}

/* Advance v over one change, if it follows origin's entry without a gap. */
int
vector_advance(Labsync__Vector *v, const char *origin, uint64_t seq)
{
	Labsync__VectorEntry	*e = NULL, **n;

	for (size_t j = 0; j < v->n_entries && e == NULL; j++)
		if (strcmp(v->entries[j]->origin, origin) == 0)
			e = v->entries[j];
	if (e == NULL) {
		if (seq != 1)
			return 0;
		if ((n = reallocarray(v->entries, v->n_entries + 1,
		    sizeof(*n))) == NULL)
			return -1;
		v->entries = n;
		if ((e = calloc(1, sizeof(*e))) == NULL)
			return -1;
		labsync__vector_entry__init(e);
		if ((e->origin = strdup(origin)) == NULL) {
			free(e);
			return -1;
		}
		v->entries[v->n_entries++] = e;
	} else if (seq != e->seq + 1)
		return 0;
	e->seq = seq;
	return 0;
}

void
vector_free(Labsync__Vector *v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < v->n_entries; i++) {
		free(v->entries[i]->origin);
		free(v->entries[i]);
	}
	free(v->entries);
	free(v);
}

/* v's sequence of origin; 0 if it has none. */
uint64_t
vector_entry_seq(const Labsync__Vector *v, const char *origin)
{
	for (size_t i = 0; v != NULL && i < v->n_entries; i++)
		if (v->entries[i]->origin != NULL &&
		    strcmp(v->entries[i]->origin, origin) == 0)
			return v->entries[i]->seq;
	return 0;
}

uint64_t
vector_origin_seq(struct store *s, const char *origin)
{
	struct origin	*o = vector_origin_find(s, origin);

	return o != NULL ? o->seq : 0;
}

uint64_t
vector_own_seq(struct store *s)
{
	return s->self != NULL ? s->self->seq : 0;
}

uint64_t
vector_lag_behind(struct store *s, const Labsync__Vector *v)
{
	uint64_t	 lag = 0;

	for (size_t i = 0; v != NULL && i < v->n_entries; i++) {
		uint64_t mine;

		if (v->entries[i]->origin == NULL)
			continue;
		mine = vector_origin_seq(s, v->entries[i]->origin);
		if (v->entries[i]->seq > mine)
			lag += v->entries[i]->seq - mine;
	}
	return lag;
}
