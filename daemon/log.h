/*
 * log.h: the OpenBSD-style log API. Everything goes to stderr; under
 * systemd (JOURNAL_STREAM set) each line carries a <N> priority prefix
 * for journald, otherwise lines are plain.
 */
#ifndef LABSYNC_LOG_H
#define LABSYNC_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARNING,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

void	log_init(const char *progname, int level);
void	log_setlevel(int level);
int	log_getlevel(void);
int	log_level_parse(const char *name);	/* -1 if unknown */
const char *log_level_name(int level);

void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_error(const char *, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif
