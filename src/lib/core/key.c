/*
 * core/key.c: the shared secret key: read from a file whose permissions
 * keep it secret, copied into configurations, wiped when dropped.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <witch/error.h>

#include "core/key.h"

static int
why_set(char *why, size_t whylen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && whylen > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* Read the key file at path (see witch/key.h). */
int
witch_key_load(const char *path, unsigned char *buf, size_t cap,
    size_t *len, char *why, size_t whylen)
{
	unsigned char tmp[WITCH_KEY_MAX + 64];
	struct stat st;
	size_t n = 0;
	ssize_t got;
	int fd, err;

	if (path == NULL || buf == NULL || len == NULL || cap < WITCH_KEY_MAX)
		return why_set(why, whylen, WITCH_EINVAL, "invalid arguments");
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
		return why_set(why, whylen, WITCH_ESYSTEM,
		    "key file %s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return why_set(why, whylen, WITCH_EINVAL,
		    "key file %s: not a regular file", path);
	}
	if ((st.st_mode & 077) != 0) {
		close(fd);
		return why_set(why, whylen, WITCH_EINVAL,
		    "key file %s: mode %04o lets group or others read it; "
		    "chmod 600 %s", path, (unsigned)(st.st_mode & 07777),
		    path);
	}
	while (n < sizeof(tmp)) {
		got = read(fd, tmp + n, sizeof(tmp) - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			err = errno;
			close(fd);
			explicit_bzero(tmp, sizeof(tmp));
			return why_set(why, whylen, WITCH_ESYSTEM,
			    "key file %s: %s", path, strerror(err));
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	close(fd);
	while (n > 0 && (tmp[n - 1] == '\n' || tmp[n - 1] == '\r' ||
	    tmp[n - 1] == ' ' || tmp[n - 1] == '\t'))
		n--;
	if (n < WITCH_KEY_MIN || n > WITCH_KEY_MAX) {
		explicit_bzero(tmp, sizeof(tmp));
		if (n == 0)
			return why_set(why, whylen, WITCH_EINVAL,
			    "key file %s is empty; make one with: openssl "
			    "rand -hex 32 > %s", path, path);
		return why_set(why, whylen, WITCH_EINVAL,
		    "key file %s holds %s%zu bytes; a key has %d to %d "
		    "(make one with: openssl rand -hex 32 > %s)", path,
		    n > WITCH_KEY_MAX ? "more than " : "",
		    n > WITCH_KEY_MAX ? (size_t)WITCH_KEY_MAX : n,
		    WITCH_KEY_MIN, WITCH_KEY_MAX, path);
	}
	memcpy(buf, tmp, n);
	*len = n;
	explicit_bzero(tmp, sizeof(tmp));
	return 0;
}

int
witch__key_set(struct witch__key *k, const void *key, size_t len)
{
	if (key == NULL || len == 0) {
		witch__key_clear(k);
		return 0;
	}
	if (len < WITCH_KEY_MIN || len > WITCH_KEY_MAX)
		return WITCH_EINVAL;
	witch__key_clear(k);
	memcpy(k->b, key, len);
	k->len = len;
	return 0;
}

void
witch__key_clear(struct witch__key *k)
{
	explicit_bzero(k->b, sizeof(k->b));
	k->len = 0;
}
