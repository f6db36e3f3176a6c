/*
 * checkpoint.c: WAL checkpoints on a thread of their own.
 *
 * A checkpoint copies the WAL back into the database file and syncs it:
 * 100 ms and more on a busy disk. Run by SQLite's autocheckpoint it would
 * stall the event loop, and every change waiting behind it, so the
 * daemon's connection has autocheckpoint off and its WAL hook wakes this
 * thread instead, which checkpoints (PASSIVE: it never blocks a reader or
 * a writer) with a connection of its own. Local changes are committed by
 * other connections (the capture triggers run in the writer's
 * transaction), so the daemon also nudges this thread when it reads new
 * ones, at most every CHECKPOINT_NUDGE_MS: the WAL is copied back in
 * small steps, off the writers' commits. (Under a writer that commits
 * without pause the WAL may still not start over, and the writer's own
 * autocheckpoint then runs: see tests/bench/RESULTS.md.)
 *
 * The WAL starts over only when a write transaction begins with all of
 * it copied back. The daemon's own commits (applying a catch-up, one
 * answer after the other) leave no such moment: catching up on 1,000,000
 * random-id changes grew the WAL to 7 GB and its index to 13 MiB of
 * mapped memory. So once the WAL passes CHECKPOINT_BOUND_PAGES, the
 * daemon's next transaction first waits for a RESTART checkpoint (the
 * rest copied back, then the WAL starts over).
 *
 * A WAL that started over keeps its size on disk. Cutting it back at a
 * commit (journal_size_limit) put the ftruncate in the event loop: on a
 * file system mounted with `discard`, freeing 190 MiB took the commit 120
 * to 190 ms. So this thread cuts it back instead (a TRUNCATE checkpoint),
 * once the WAL is larger than CHECKPOINT_TRIM_BYTES and nothing has woken
 * the thread for CHECKPOINT_IDLE_MS, and without waiting for anyone: it
 * holds off writers only while the file is cut, and if a reader or a
 * writer was in the way it tries again after the next quiet spell.
 *
 * After an erasure (erase.c) the WAL still holds the pages as they were
 * before it, erased values included: checkpoint_truncate asks for a
 * TRUNCATE at once, which, with someone in the way, is tried again every
 * CHECKPOINT_CUT_RETRY_MS until it succeeds.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "clock.h"
#include "log.h"
#include "store_private.h"

#define CHECKPOINT_NUDGE_MS	100
#define CHECKPOINT_BOUND_PAGES	65536	/* 256 MiB of WAL (4 KiB pages) */
#define CHECKPOINT_BUSY_MS	2000	/* a RESTART waits this for readers */
#define CHECKPOINT_TRIM_BYTES	(64 * 1024 * 1024) /* a WAL cut back when idle */
#define CHECKPOINT_IDLE_MS	2000	/* ... after this long without a wake */
#define CHECKPOINT_CUT_RETRY_MS	1000	/* a wanted TRUNCATE tried again */

struct checkpointer {
	pthread_t	 thread;
	pthread_mutex_t	 lock;
	pthread_cond_t	 wake;
	sqlite3		*db;		/* the thread's own connection */
	const char	*wal_path;	/* the WAL file (SQLite's string) */
	int		 pages;		/* checkpoint once the WAL has this many */
	int		 wanted;
	int		 restart;	/* a RESTART is wanted, then done */
	int		 stop;
	int		 trim_due;	/* the WAL file is larger than wanted */
	int		 wal_pages;	/* the WAL's size at the last commit */
	int		 tried_at;	/* ... when a RESTART last failed */
	int		 cut;		/* a TRUNCATE is wanted until done */
	unsigned	 cut_asked;	/* requests for it, counted */
	uint64_t	 cut_at_us;	/* ... not tried before this time */
	uint64_t	 nudged_us;	/* the event loop's last nudge */
};

static int
checkpoint_wal_big(const struct checkpointer *c)
{
	struct stat	 st;

	return stat(c->wal_path, &st) == 0 &&
	    st.st_size > CHECKPOINT_TRIM_BYTES;
}

/* Wait for a wake; 1 if instead CHECKPOINT_IDLE_MS passed with a trim due. */
static int
checkpoint_wait(struct checkpointer *c)
{
	struct timespec	 until;

	if (!c->trim_due) {
		pthread_cond_wait(&c->wake, &c->lock);
		return 0;
	}
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += CHECKPOINT_IDLE_MS / 1000;
	until.tv_nsec += CHECKPOINT_IDLE_MS % 1000 * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	return pthread_cond_timedwait(&c->wake, &c->lock, &until) ==
	    ETIMEDOUT;
}

/* Wait for a wake until the monotonic time us. */
static void
checkpoint_wait_until(struct checkpointer *c, uint64_t us)
{
	struct timespec	 until;

	until.tv_sec = (time_t)(us / 1000000);
	until.tv_nsec = (long)(us % 1000000) * 1000L;
	pthread_cond_timedwait(&c->wake, &c->lock, &until);
}

/* A wanted TRUNCATE is due now. */
static int
checkpoint_cut_due(const struct checkpointer *c)
{
	return c->cut && clock_mono_us() >= c->cut_at_us;
}

static void *
checkpoint_main(void *arg)
{
	struct checkpointer	*c = arg;
	int			 nlog, ndone, rc, mode, big;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		int		 restart, trim = 0, cut;
		unsigned	 asked;

		while (!c->wanted && !c->restart && !c->stop && !trim &&
		    !checkpoint_cut_due(c)) {
			if (c->cut)
				checkpoint_wait_until(c, c->cut_at_us);
			else
				trim = checkpoint_wait(c);
		}
		if (c->stop)
			break;
		restart = c->restart;
		cut = !restart && checkpoint_cut_due(c);
		asked = c->cut_asked;
		trim = (trim || cut) && !restart && (cut || !c->wanted);
		c->wanted = 0;
		pthread_mutex_unlock(&c->lock);
		/* PASSIVE never waits; RESTART waits for readers (busy
		   timeout) while the event loop waits for it; the idle
		   TRUNCATE and the one after an erasure wait for nobody */
		mode = restart ? SQLITE_CHECKPOINT_RESTART : trim ?
		    SQLITE_CHECKPOINT_TRUNCATE : SQLITE_CHECKPOINT_PASSIVE;
		if (trim)
			sqlite3_busy_timeout(c->db, 0);
		rc = sqlite3_wal_checkpoint_v2(c->db, NULL, mode, &nlog,
		    &ndone);
		if (rc != SQLITE_OK && rc != SQLITE_BUSY)
			log_warnx("checkpoint: %s", sqlite3_errmsg(c->db));
		if (trim) {
			sqlite3_busy_timeout(c->db, CHECKPOINT_BUSY_MS);
			log_debug("checkpoint: WAL file %s", rc == SQLITE_OK ?
			    "cut back" : "not cut back (in use)");
		}
		if (cut && rc == SQLITE_OK)
			log_info("checkpoint: WAL cut back after an erasure");
		/* a trim that a reader or writer was in the way of is
		   tried again after the next quiet spell */
		big = (!trim || rc == SQLITE_BUSY) && checkpoint_wal_big(c);
		pthread_mutex_lock(&c->lock);
		c->trim_due = big;
		/* asked again meanwhile: once more, at once */
		if (cut && rc == SQLITE_OK && asked == c->cut_asked)
			c->cut = 0;
		else if (cut && rc != SQLITE_OK)
			c->cut_at_us = clock_mono_us() +
			    CHECKPOINT_CUT_RETRY_MS * 1000ULL;
		if (restart) {
			if (rc == SQLITE_OK)
				c->wal_pages = c->tried_at = 0;
			else
				c->tried_at = c->wal_pages;
			c->restart = 0;
			pthread_cond_broadcast(&c->wake);
		}
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static void
checkpoint_want(struct checkpointer *c)
{
	pthread_mutex_lock(&c->lock);
	c->wanted = 1;
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
}

/* SQLite calls this after each commit of the daemon's connection. */
static int
checkpoint_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct checkpointer	*c = arg;

	(void)db;
	(void)name;
	pthread_mutex_lock(&c->lock);
	c->wal_pages = pages;
	if (pages < c->tried_at)
		c->tried_at = 0;	/* it started over meanwhile */
	if (pages >= c->pages) {
		c->wanted = 1;
		pthread_cond_signal(&c->wake);
	}
	pthread_mutex_unlock(&c->lock);
	return SQLITE_OK;
}

/*
 * Before the daemon's next write transaction: past the bound, wait for
 * the WAL to start over. After a RESTART that readers kept from finishing,
 * wait for as much again before the next try.
 */
void
checkpoint_bound(struct store *s)
{
	struct checkpointer	*c = s->checkpointer;
	uint64_t		 t0;
	int			 pages;

	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	if ((pages = c->wal_pages) - c->tried_at < CHECKPOINT_BOUND_PAGES) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	t0 = clock_mono_us();
	c->restart = 1;
	pthread_cond_broadcast(&c->wake);
	while (c->restart)
		pthread_cond_wait(&c->wake, &c->lock);
	log_debug("checkpoint: WAL of %d pages %s in %llu us", pages,
	    c->wal_pages == 0 ? "started over" : "not started over (readers)",
	    (unsigned long long)(clock_mono_us() - t0));
	pthread_mutex_unlock(&c->lock);
}

/* After an erasure's commit: TRUNCATE now, and until it succeeds. */
void
checkpoint_truncate(struct store *s)
{
	struct checkpointer	*c = s->checkpointer;

	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	c->cut = 1;
	c->cut_asked++;
	c->cut_at_us = 0;
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
}

/* Another connection committed local changes. */
void
checkpoint_nudge(struct store *s)
{
	struct checkpointer	*c = s->checkpointer;
	uint64_t		 now = clock_mono_us();

	if (c == NULL || now - c->nudged_us < CHECKPOINT_NUDGE_MS * 1000)
		return;
	c->nudged_us = now;
	checkpoint_want(c);
}

int
checkpoint_start(struct store *s, int pages)
{
	struct checkpointer	*c;
	const char		*path = sqlite3_db_filename(s->db, "main");
	pthread_condattr_t	 attr;

	if (path == NULL || path[0] == '\0')
		return 0;	/* in memory: nothing to checkpoint */
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -1;
	c->pages = pages;
	c->wal_path = sqlite3_filename_wal(path);
	if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(c->db, CHECKPOINT_BUSY_MS) != SQLITE_OK ||
	    sqlite3_exec(c->db, "PRAGMA synchronous = NORMAL;"
	    "PRAGMA cache_size = 16", NULL, NULL, NULL) != SQLITE_OK) {
		log_warnx("checkpoint: %s: %s", path, c->db != NULL ?
		    sqlite3_errmsg(c->db) : "out of memory");
		sqlite3_close(c->db);
		free(c);
		return -1;
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&c->wake, &attr);
	pthread_condattr_destroy(&attr);
	if (pthread_create(&c->thread, NULL, checkpoint_main, c) != 0) {
		log_warnx("checkpoint: cannot start its thread");
		pthread_cond_destroy(&c->wake);
		pthread_mutex_destroy(&c->lock);
		sqlite3_close(c->db);
		free(c);
		return -1;
	}
	/* replaces the autocheckpoint, which is a WAL hook too */
	sqlite3_wal_hook(s->db, checkpoint_hook, c);
	s->checkpointer = c;
	return 0;
}

void
checkpoint_stop(struct store *s)
{
	struct checkpointer	*c = s->checkpointer;

	if (c == NULL)
		return;
	sqlite3_wal_hook(s->db, NULL, NULL);
	pthread_mutex_lock(&c->lock);
	c->stop = 1;
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->thread, NULL);
	pthread_cond_destroy(&c->wake);
	pthread_mutex_destroy(&c->lock);
	sqlite3_close(c->db);
	free(c);
	s->checkpointer = NULL;
}
