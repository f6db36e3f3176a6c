/*
 * config_value.c: the parsers of single configuration values (roles,
 * booleans, numbers, durations, sizes, endpoints, keys, ids and names),
 * shared by config.c and labsyncctl. Each returns 0, or -1 if the value
 * is malformed; none reports: the caller knows the file and line.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zmq.h>

#include "config.h"

/* [A-Za-z0-9_] in ASCII, whatever the locale. */
int
config_is_word(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_';
}

int
config_parse_role(const char *s, enum config_role *role)
{
	if (strcmp(s, "city") == 0)
		*role = CONFIG_ROLE_CITY;
	else if (strcmp(s, "observer") == 0)
		*role = CONFIG_ROLE_OBSERVER;
	else if (strcmp(s, "partner") == 0)
		*role = CONFIG_ROLE_PARTNER;
	else
		return -1;
	return 0;
}

int
config_parse_bool(const char *s, int *v)
{
	if (strcasecmp(s, "true") == 0 || strcasecmp(s, "yes") == 0 ||
	    strcasecmp(s, "on") == 0 || strcmp(s, "1") == 0)
		*v = 1;
	else if (strcasecmp(s, "false") == 0 || strcasecmp(s, "no") == 0 ||
	    strcasecmp(s, "off") == 0 || strcmp(s, "0") == 0)
		*v = 0;
	else
		return -1;
	return 0;
}

/* A plain decimal integer in [min, max]. */
int
config_parse_int(const char *s, long long min, long long max, long long *v)
{
	char	*end;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	*v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || *v < min || *v > max)
		return -1;
	return 0;
}

/* Leading decimal digits of S as an unsigned number; -1 on overflow. */
int
config_parse_digits(const char **s, uint64_t *v)
{
	const char	*q = *s;

	if (!isdigit((unsigned char)*q))
		return -1;
	*v = 0;
	for (; isdigit((unsigned char)*q); q++) {
		if (*v > (UINT64_MAX - (unsigned)(*q - '0')) / 10)
			return -1;
		*v = *v * 10 + (unsigned)(*q - '0');
	}
	*s = q;
	return 0;
}

/*
 * tcp://HOST:PORT, HOST a name, an IPv4 address or a bracketed IPv6
 * address; "*" only if WILDCARD (binding). HOST is returned through
 * host/hostlen if they are not NULL.
 */
int
config_parse_endpoint(const char *s, int wildcard, const char **host,
    size_t *hostlen)
{
	const char	*h, *colon, *q;
	long long	 port;

	if (strncmp(s, "tcp://", 6) != 0)
		return -1;
	h = s + 6;
	if (*h == '[') {
		if ((colon = strchr(h, ']')) == NULL || colon == h + 1)
			return -1;
		for (q = h + 1; q < colon; q++)
			if (!isxdigit((unsigned char)*q) && *q != ':' &&
			    *q != '.')
				return -1;
		colon++;
		if (*colon != ':')
			return -1;
	} else {
		if ((colon = strrchr(h, ':')) == NULL || colon == h)
			return -1;
		for (q = h; q < colon; q++)
			if (!config_is_word(*q) && *q != '.' && *q != '-' &&
			    *q != '*')
				return -1;
		if (memchr(h, '*', colon - h) != NULL &&
		    (!wildcard || colon - h != 1))
			return -1;
	}
	if (config_parse_int(colon + 1, 1, 65535, &port) == -1)
		return -1;
	if (host != NULL) {
		*host = h;
		*hostlen = colon - h;
	}
	return 0;
}

int
config_endpoint_loopback(const char *endpoint)
{
	static const char *const loopback[] = {
		"127.0.0.1", "localhost", "[::1]"
	};
	const char	*host;
	size_t		 len, i;

	if (config_parse_endpoint(endpoint, 1, &host, &len) == -1)
		return 0;
	for (i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++)
		if (strlen(loopback[i]) == len &&
		    strncmp(host, loopback[i], len) == 0)
			return 1;
	return 0;
}

/* A CURVE public key in Z85: 40 characters that decode to 32 bytes. */
int
config_parse_key(const char *s)
{
	uint8_t	 raw[32];

	if (strlen(s) != CONFIG_KEY_Z85 || zmq_z85_decode(raw, s) == NULL)
		return -1;
	return 0;
}

/* NAME: [A-Za-z_][A-Za-z0-9_]* up to end (exclusive). */
int
config_is_name(const char *s, const char *end)
{
	if (s == end || isdigit((unsigned char)*s))
		return 0;
	for (; s < end; s++)
		if (!config_is_word(*s))
			return 0;
	return 1;
}

const char *
config_role_name(enum config_role role)
{
	switch (role) {
	case CONFIG_ROLE_CITY:
		return "city";
	case CONFIG_ROLE_OBSERVER:
		return "observer";
	case CONFIG_ROLE_PARTNER:
		return "partner";
	}
	return "?";
}

/* An integer and a unit (ms, s, m, h; none: seconds), greater than 0. */
int
config_parse_duration(const char *s, int64_t *ms)
{
	uint64_t	 v, mult;

	if (config_parse_digits(&s, &v) == -1)
		return -1;
	if (*s == '\0' || strcmp(s, "s") == 0)
		mult = 1000;
	else if (strcmp(s, "ms") == 0)
		mult = 1;
	else if (strcmp(s, "m") == 0)
		mult = 60 * 1000;
	else if (strcmp(s, "h") == 0)
		mult = 60 * 60 * 1000;
	else
		return -1;
	if (v == 0 || v > (uint64_t)INT64_MAX / mult)
		return -1;
	*ms = (int64_t)(v * mult);
	return 0;
}

/* An integer and a unit (B, KiB, MiB, GiB, K, KB, ...: all 1024-based). */
int
config_parse_size(const char *s, size_t *bytes)
{
	static const struct {
		const char	*unit;
		uint64_t	 mult;
	} units[] = {
		{ "", 1 }, { "B", 1 },
		{ "K", 1 << 10 }, { "KB", 1 << 10 }, { "KiB", 1 << 10 },
		{ "M", 1 << 20 }, { "MB", 1 << 20 }, { "MiB", 1 << 20 },
		{ "G", 1 << 30 }, { "GB", 1 << 30 }, { "GiB", 1 << 30 },
	};
	uint64_t	 v;
	size_t		 i;

	if (config_parse_digits(&s, &v) == -1)
		return -1;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(s, units[i].unit) != 0)
			continue;
		if (v > SIZE_MAX / units[i].mult)
			return -1;
		*bytes = (size_t)(v * units[i].mult);
		return 0;
	}
	return -1;
}

/* Node and peer ids: [a-z0-9_-]{1,32}. */
int
config_valid_id(const char *s)
{
	size_t	 len = strlen(s), i;

	if (len == 0 || len > CONFIG_ID_MAX)
		return -1;
	/* Not islower(): ids must not depend on the locale. */
	for (i = 0; i < len; i++)
		if ((s[i] < 'a' || s[i] > 'z') && (s[i] < '0' || s[i] > '9') &&
		    s[i] != '-' && s[i] != '_')
			return -1;
	return 0;
}
