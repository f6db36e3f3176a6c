/*
 * keys.c: the node's CURVE secret key. It is read once at start-up; its
 * file must be readable by the owner only, unless systemd handed it over
 * with LoadCredential= (then $CREDENTIALS_DIRECTORY holds a copy that
 * systemd made private to the service; its mode is systemd's business).
 * It also makes new keypairs (labsyncctl keygen and setup).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <zmq.h>

#include "config.h"
#include "keys.h"

static void keys_err(char *, size_t, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static void
keys_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* The credential systemd passed under the key file's name, if any. */
static char *
keys_credential(const char *path)
{
	const char	*dir = getenv("CREDENTIALS_DIRECTORY");
	const char	*base = strrchr(path, '/');
	char		*cred;
	struct stat	 sb;

	if (dir == NULL || dir[0] == '\0')
		return NULL;
	base = base != NULL ? base + 1 : path;
	if (asprintf(&cred, "%s/%s", dir, base) == -1)
		return NULL;
	if (stat(cred, &sb) == 0)
		return cred;
	free(cred);
	return NULL;
}

int
keys_read_private(const char *file, char *buf, size_t len, char **used,
    char *err, size_t errlen)
{
	struct stat	 sb;
	char		*cred = NULL;
	const char	*path = file;
	ssize_t		 n;
	int		 fd = -1, ret = -1;

	buf[0] = '\0';
	if ((cred = keys_credential(file)) != NULL)
		path = cred;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		keys_err(err, errlen, "%s: %s", path, strerror(errno));
		goto done;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		keys_err(err, errlen, "%s: not a regular file", path);
		goto done;
	}
	if (cred == NULL && (sb.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		keys_err(err, errlen, "%s is readable by group or others "
		    "(mode %04o): chmod 600 it", path,
		    (unsigned)(sb.st_mode & 07777));
		goto done;
	}
	if ((n = read(fd, buf, len - 1)) < 0) {
		keys_err(err, errlen, "%s: %s", path, strerror(errno));
		goto done;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (buf[0] == '\0') {
		keys_err(err, errlen, "%s is empty", path);
		goto done;
	}
	if (used != NULL)
		*used = strdup(path);
	ret = 0;
done:
	if (ret == -1)
		sodium_memzero(buf, len);
	if (fd != -1)
		close(fd);
	free(cred);
	return ret;
}

int
keys_read_pseudonym(const char *file, unsigned char out[32], char *err,
    size_t errlen)
{
	char	 buf[128];
	size_t	 n = 0;
	int	 ret = -1;

	if (keys_read_private(file, buf, sizeof(buf), NULL, err,
	    errlen) == -1)
		return -1;
	if (strlen(buf) != 64 || sodium_hex2bin(out, 32, buf, 64, NULL, &n,
	    NULL) != 0 || n != 32)
		keys_err(err, errlen, "%s: expected one line of 64 hex "
		    "digits (32 random bytes)", file);
	else
		ret = 0;
	sodium_memzero(buf, sizeof(buf));
	return ret;
}

int
keys_load(const struct config *conf, struct keys *k, char *err, size_t errlen)
{
	char		 buf[128], why[256];
	uint8_t		 raw[32];
	int		 ret = -1;

	memset(k, 0, sizeof(*k));
	if (conf->insecure)
		return 0;
	if (conf->secret_key_file == NULL) {
		keys_err(err, errlen, "%s: no secret_key_file and insecure is "
		    "not set", conf->path);
		return -1;
	}
	if (keys_read_private(conf->secret_key_file, buf, sizeof(buf),
	    &k->path, why, sizeof(why)) == -1) {
		keys_err(err, errlen, "secret key %s", why);
		return -1;
	}
	if (strlen(buf) != 40 || zmq_z85_decode(raw, buf) == NULL) {
		keys_err(err, errlen, "secret key %s: not one line of 40 Z85 "
		    "characters (make one with labsyncctl keygen)", k->path);
		goto done;
	}
	memcpy(k->secret, buf, 41);
	if (zmq_curve_public(k->public, k->secret) != 0) {
		keys_err(err, errlen, "secret key %s: %s", k->path,
		    zmq_strerror(zmq_errno()));
		goto done;
	}
	k->enabled = 1;
	ret = 0;
done:
	sodium_memzero(buf, sizeof(buf));
	sodium_memzero(raw, sizeof(raw));
	if (ret == -1)
		keys_clear(k);
	return ret;
}

/*
 * Write LINE to PATH with MODE through a temporary file in the same
 * folder: renamed over PATH with force, else linked, so an existing file
 * stays untouched.
 */
static int
keys_write(const char *path, mode_t mode, const char *line, int force,
    char *err, size_t errlen)
{
	char	*tmp = NULL;
	int	 fd = -1, ret = -1;

	if (asprintf(&tmp, "%s.XXXXXX", path) == -1) {
		tmp = NULL;
		keys_err(err, errlen, "%s: out of memory", path);
		goto done;
	}
	if ((fd = mkstemp(tmp)) == -1) {
		keys_err(err, errlen, "%s: %s", tmp, strerror(errno));
		free(tmp);
		tmp = NULL;
		goto done;
	}
	if (fchmod(fd, mode) == -1 || dprintf(fd, "%s\n", line) < 0 ||
	    fsync(fd) == -1) {
		keys_err(err, errlen, "%s: %s", tmp, strerror(errno));
		goto done;
	}
	if (close(fd) == -1) {
		fd = -1;
		keys_err(err, errlen, "%s: %s", tmp, strerror(errno));
		goto done;
	}
	fd = -1;
	if (force ? rename(tmp, path) == -1 : link(tmp, path) == -1) {
		keys_err(err, errlen, "%s: %s", path, errno == EEXIST ?
		    "exists (--force replaces it)" : strerror(errno));
		goto done;
	}
	ret = 0;
done:
	if (fd != -1)
		close(fd);
	if (tmp != NULL && (ret == -1 || !force))
		unlink(tmp);
	free(tmp);
	return ret;
}

int
keys_generate(const char *base, int force, char pub[41], char *err,
    size_t errlen)
{
	char	 sec[41], *kpath = NULL, *ppath = NULL;
	int	 ret = -1;

	if (asprintf(&kpath, "%s.key", base) == -1 ||
	    asprintf(&ppath, "%s.pub", base) == -1) {
		keys_err(err, errlen, "%s: out of memory", base);
		goto done;
	}
	if (!force && (access(kpath, F_OK) == 0 || access(ppath, F_OK) == 0)) {
		keys_err(err, errlen, "%s: exists (--force replaces it)",
		    access(kpath, F_OK) == 0 ? kpath : ppath);
		goto done;
	}
	if (zmq_curve_keypair(pub, sec) != 0) {
		keys_err(err, errlen, "keypair: %s", zmq_strerror(zmq_errno()));
		goto done;
	}
	if (keys_write(kpath, 0600, sec, force, err, errlen) == -1)
		goto done;
	if (keys_write(ppath, 0644, pub, force, err, errlen) == -1) {
		unlink(kpath);
		goto done;
	}
	ret = 0;
done:
	sodium_memzero(sec, sizeof(sec));
	free(kpath);
	free(ppath);
	return ret;
}

void
keys_clear(struct keys *k)
{
	free(k->path);
	sodium_memzero(k, sizeof(*k));
}

int
keys_server(void *z, const struct keys *k)
{
	int	 one = 1;

	if (!k->enabled)
		return 0;
	if (zmq_setsockopt(z, ZMQ_CURVE_SERVER, &one, sizeof(one)) == -1 ||
	    zmq_setsockopt(z, ZMQ_CURVE_SECRETKEY, k->secret, 40) == -1 ||
	    zmq_setsockopt(z, ZMQ_ZAP_DOMAIN, "labsync", 7) == -1)
		return -1;
	return 0;
}

int
keys_client(void *z, const struct keys *k, const char *server_key)
{
	if (!k->enabled)
		return 0;
	if (zmq_setsockopt(z, ZMQ_CURVE_SERVERKEY, server_key, 40) == -1 ||
	    zmq_setsockopt(z, ZMQ_CURVE_PUBLICKEY, k->public, 40) == -1 ||
	    zmq_setsockopt(z, ZMQ_CURVE_SECRETKEY, k->secret, 40) == -1)
		return -1;
	return 0;
}
