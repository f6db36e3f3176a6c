/*
 * log.c: logging to stderr, with journald priority prefixes (<3> error,
 * <4> warning, <6> info, <7> debug; see sd-daemon(3)) when stderr is the
 * journal, as systemd tells us through JOURNAL_STREAM.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static const char *log_progname = "labsync";
static int log_level = LOG_LEVEL_INFO;
static int log_journal;

static const char *const log_names[] = { "error", "warning", "info", "debug" };
static const int log_prio[] = { 3, 4, 6, 7 };

void
log_init(const char *progname, int level)
{
	log_progname = progname;
	log_level = level;
	log_journal = getenv("JOURNAL_STREAM") != NULL;
}

void
log_setlevel(int level)
{
	log_level = level;
}

int
log_getlevel(void)
{
	return log_level;
}

int
log_level_parse(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(name, log_names[i]) == 0)
			return i;
	return -1;
}

const char *
log_level_name(int level)
{
	if (level < 0 || level > LOG_LEVEL_DEBUG)
		return "?";
	return log_names[level];
}

static void
log_vwrite(int level, const char *err, const char *fmt, va_list ap)
{
	char	 msg[2048];

	if (level > log_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	flockfile(stderr);	/* one line, whole: the checkpoint thread logs too */
	if (log_journal)
		fprintf(stderr, "<%d>", log_prio[level]);
	else
		fprintf(stderr, "%s: ", log_progname);
	if (err != NULL)
		fprintf(stderr, "%s: %s\n", msg, err);
	else
		fprintf(stderr, "%s\n", msg);
	fflush(stderr);
	funlockfile(stderr);
}

void
log_warn(const char *fmt, ...)
{
	const char	*err = strerror(errno);
	va_list		 ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_WARNING, err, fmt, ap);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_WARNING, NULL, fmt, ap);
	va_end(ap);
}

void
log_error(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERROR, NULL, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_INFO, NULL, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_DEBUG, NULL, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	const char	*err = strerror(errno);
	va_list		 ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERROR, err, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERROR, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
