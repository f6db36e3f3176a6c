/*
 * reason.c: the names of the reason codes (reason.h), one table.
 */
#include <stddef.h>

#include "reason.h"

static const struct {
	const char	*name;
	int		 counted;	/* refuses a received message */
} reason_table[REASON_N] = {
	[REASON_OK] =			{ "ok", 0 },
	[REASON_OTHER] =		{ "other", 1 },
	[REASON_MALFORMED] =		{ "malformed", 1 },
	[REASON_VERSION] =		{ "version", 1 },
	[REASON_TOO_LARGE] =		{ "too_large", 1 },
	[REASON_UNKNOWN_PEER] =		{ "unknown_peer", 1 },
	[REASON_OBSERVER] =		{ "observer", 1 },
	[REASON_BAD_ORIGIN] =		{ "bad_origin", 1 },
	[REASON_OWN_ORIGIN] =		{ "own_origin", 1 },
	[REASON_TOO_MANY_ORIGINS] =	{ "too_many_origins", 1 },
	[REASON_BAD_SEQUENCE] =		{ "bad_sequence", 1 },
	[REASON_BAD_CLOCK] =		{ "bad_clock", 1 },
	[REASON_UNKNOWN_TABLE] =	{ "unknown_table", 1 },
	[REASON_BAD_KEY] =		{ "bad_key", 1 },
	[REASON_BAD_OPERATION] =	{ "bad_operation", 1 },
	[REASON_UNKNOWN_COLUMN] =	{ "unknown_column", 1 },
	[REASON_DUPLICATE_COLUMN] =	{ "duplicate_column", 1 },
	[REASON_WRONG_TYPE] =		{ "wrong_type", 1 },
	[REASON_VALUE_TOO_LARGE] =	{ "value_too_large", 1 },
	[REASON_CLOCK_SKEW] =		{ "clock_skew", 0 },
	[REASON_NOT_WRITABLE] =		{ "not_writable", 0 },
	[REASON_DATABASE] =		{ "database", 1 },
	[REASON_NO_MEMORY] =		{ "no_memory", 1 },
	[REASON_READ_ONLY] =		{ "read_only", 0 },
	[REASON_RECOVERING] =		{ "recovering", 0 },
	[REASON_NOT_FOUND] =		{ "not_found", 0 },
	[REASON_BAD_INPUT] =		{ "bad_input", 0 },
	[REASON_CONSTRAINT] =		{ "constraint", 0 },
	[REASON_IO] =			{ "io", 0 },
	[REASON_NUL_IN_TEXT] =		{ "nul_in_text", 0 },
	[REASON_COMPACTED] =		{ "compacted", 0 },
};

const char *
reason_name(enum reason r)
{
	if ((unsigned)r >= REASON_N || reason_table[r].name == NULL)
		return reason_table[REASON_OTHER].name;
	return reason_table[r].name;
}

int
reason_counted(enum reason r)
{
	return (unsigned)r < REASON_N && reason_table[r].counted;
}

enum reason_keep
reason_keep(enum reason r)
{
	switch (r) {
	case REASON_UNKNOWN_TABLE:
	case REASON_UNKNOWN_COLUMN:
	case REASON_CLOCK_SKEW:
		return KEEP_WAITING;
	case REASON_WRONG_TYPE:
	case REASON_VALUE_TOO_LARGE:
	case REASON_NUL_IN_TEXT:
	case REASON_BAD_KEY:
	case REASON_NOT_WRITABLE:
	case REASON_CONSTRAINT:		/* of the receiver's schema */
		return KEEP_REFUSED;
	default:
		return KEEP_NO;
	}
}

const char *
reason_keep_name(enum reason_keep k)
{
	return k == KEEP_WAITING ? "waiting" : k == KEEP_REFUSED ? "refused" :
	    "none";
}
