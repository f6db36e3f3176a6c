/*
 * keys.h: this node's CURVE keypair and the socket options that use it.
 */
#ifndef LABSYNC_KEYS_H
#define LABSYNC_KEYS_H

#include <stddef.h>

struct config;

struct keys {
	int	 enabled;		/* 0: insecure mode */
	char	 public[41];		/* Z85 */
	char	 secret[41];
	char	*path;			/* where the secret key came from */
};

/*
 * Load the secret key named by [security] secret_key_file, refusing a
 * missing, empty, malformed, or group- or world-readable file (a file in
 * $CREDENTIALS_DIRECTORY is accepted as systemd wrote it). 0 or -1 with
 * the reason in err.
 */
int	keys_load(const struct config *, struct keys *, char *err,
	    size_t errlen);
void	keys_clear(struct keys *);
/*
 * Read the first line of a private file (a key or a token) into buf,
 * with the same rules; *used (if not NULL) gets the path actually read.
 */
int	keys_read_private(const char *file, char *buf, size_t len,
	    char **used, char *err, size_t errlen);
/*
 * The pseudonym key ([sync] pseudonym_key_file): one line of 64 hex
 * digits (32 bytes), read with keys_read_private's rules. 0 or -1 (err).
 */
int	keys_read_pseudonym(const char *file, unsigned char out[32],
	    char *err, size_t errlen);
/*
 * Make a new CURVE keypair: BASE.key (the secret, mode 0600) and BASE.pub
 * (mode 0644), one line of 40 Z85 characters each, each written whole or
 * not at all. An existing file is replaced only with force. The public
 * key goes to pub. 0 or -1 with the reason in err.
 */
int	keys_generate(const char *base, int force, char pub[41], char *err,
	    size_t errlen);
/* CURVE server on a bound socket, client pinning server_key on a
   connecting one; no-ops when keys are disabled. */
int	keys_server(void *zsock, const struct keys *);
int	keys_client(void *zsock, const struct keys *, const char *server_key);

#endif
