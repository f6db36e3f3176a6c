/*
 * config.h: the INI configuration of one node (see config/labsync.conf).
 */
#ifndef LABSYNC_CONFIG_H
#define LABSYNC_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CONFIG_ID_MAX		32	/* [a-z0-9_-]{1,32} */
#define CONFIG_KEY_Z85		40	/* a CURVE key in Z85 */
#define CONFIG_MAX_KEYS		2	/* public keys per peer (rotation) */
#define EX_CONFIG		78	/* sysexits.h: configuration error */

enum config_role {
	CONFIG_ROLE_CITY = 0,
	CONFIG_ROLE_OBSERVER = 1,
	CONFIG_ROLE_PARTNER = 2,	/* writes only its writable tables */
};

struct config_peer {
	char		 name[CONFIG_ID_MAX + 1];	/* the peer's [node] id */
	int		 line;		/* line of its [peer:NAME] header */
	char		*publish;	/* NULL: the peer only connects in */
	char		*sync;
	enum config_role role;
	char		 public_keys[CONFIG_MAX_KEYS][CONFIG_KEY_Z85 + 1];
	int		 npublic_keys;
	char		**writable;	/* a partner's writable tables */
	size_t		 nwritable;
	int		 writable_line;
};

struct config {
	char		*path;		/* the file as given */
	char		*dir;		/* its folder, for relative paths */

	/* [node] */
	char		 node_id[CONFIG_ID_MAX + 1];
	enum config_role role;
	char		*database;	/* absolute or relative to dir, resolved */
	char		*schema;	/* resolved path */
	char		*control;	/* control socket path, resolved;
					   default: database + ".sock" */
	int		 log_level;	/* enum log_level */

	/* [listen] */
	char		*listen_publish;
	char		*listen_sync;

	/* [security] */
	int		 insecure;
	char		*secret_key_file;	/* resolved; NULL if unset */

	/* [http] */
	char		*http_host;	/* NULL: no HTTP server */
	int		 http_port;
	char		*http_token_file;	/* resolved; NULL: no writes */
	char		*http_cors_origin;	/* NULL: no CORS headers */

	/* [peer:NAME] */
	struct config_peer *peers;
	size_t		 npeers;

	/* [sync] */
	char		**tables;	/* synced tables, in config order */
	size_t		 ntables;
	char		**local;	/* tables that never leave the node */
	size_t		 nlocal;
	char		**local_columns;	/* "table.column": never sent */
	size_t		 nlocal_columns;
	char		**writable;	/* a partner: the tables it writes */
	size_t		 nwritable;
	int		 writable_line;
	char		**pseudonymise;	/* "table.column": sent as an HMAC */
	size_t		 npseudonymise;
	char		*pseudonym_key_file;	/* resolved; NULL if unset */
	int		 local_line;	/* lines of those keys, for messages */
	int		 pseudonymise_line;
	int64_t		 max_clock_skew_ms;
	int64_t		 heartbeat_interval_ms;
	int64_t		 heartbeat_timeout_ms;
	int64_t		 anti_entropy_interval_ms;
	int64_t		 compact_after_ms;	/* log entries every peer
						   holds go once this old */
	size_t		 max_message_size;	/* bytes */
	int		 batch_changes;		/* max changes per live message */
	int		 catchup_changes;	/* max per catch-up answer */
	int		 cache_size_mib;	/* SQLite page cache */
};

/*
 * Parse and check PATH. On success returns the config; on failure NULL,
 * and *errors (if not NULL) holds every error, one "file:line: message"
 * per line (malloc'd, caller frees).
 */
struct config	*config_load(const char *path, char **errors);
void		 config_free(struct config *);
int		 config_table_synced(const struct config *, const char *table);
int		 config_table_local(const struct config *, const char *table);
/* 1 if this node takes local writes to TABLE (city; partner: writable) */
int		 config_table_writable(const struct config *, const char *table);

/* --- config_value.c: single values; 0 on success, -1 if malformed --- */

int		 config_parse_duration(const char *, int64_t *ms);
int		 config_parse_size(const char *, size_t *bytes);
int		 config_valid_id(const char *);
const char	*config_role_name(enum config_role);
int		 config_parse_role(const char *, enum config_role *);
int		 config_parse_bool(const char *, int *);
/* A plain decimal integer in [min, max]. */
int		 config_parse_int(const char *, long long min, long long max,
		    long long *);
/* Leading decimal digits, *s moved past them; -1 also on overflow. */
int		 config_parse_digits(const char **s, uint64_t *);
/* tcp://HOST:PORT ("*" as HOST only with wildcard); HOST through host
   and hostlen unless they are NULL. */
int		 config_parse_endpoint(const char *, int wildcard,
		    const char **host, size_t *hostlen);
/* 1 if the endpoint's host is a loopback address or name. */
int		 config_endpoint_loopback(const char *);
/* A CURVE public key in Z85. */
int		 config_parse_key(const char *);
/* [A-Za-z0-9_] in ASCII; [A-Za-z_][A-Za-z0-9_]* from s up to end. */
int		 config_is_word(char);
int		 config_is_name(const char *s, const char *end);

#endif
