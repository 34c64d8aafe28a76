/*
 * witch/key.h: the shared secret key of a witch project (authentication
 * and signed discovery; witch-protocol(7), doc/internals/auth.md).
 */
#ifndef WITCH_KEY_H
#define WITCH_KEY_H

#include <stddef.h>

#include <witch/export.h>

WITCH_BEGIN_DECLS

/* A key holds WITCH_KEY_MIN..WITCH_KEY_MAX bytes. */
#define WITCH_KEY_MIN 32
#define WITCH_KEY_MAX 1024

/*
 * Read the key in the file at path into buf (cap bytes, at least
 * WITCH_KEY_MAX) and store its length in *len.  The file must be a
 * regular file that neither its group nor others may read, write or
 * execute (mode 0600 or 0400), holding WITCH_KEY_MIN..WITCH_KEY_MAX bytes
 * once trailing white space (a final newline) is removed; its bytes are
 * the key as they are (e.g. the output of `openssl rand -hex 32`).
 * Returns 0, or WITCH_EINVAL (bad arguments, loose permissions, too
 * short or too long; nothing stored) or WITCH_ESYSTEM (cannot be read), with
 * the reason in why (whylen bytes; may be NULL).  Any thread.
 */
WITCH_EXTERN int witch_key_load(const char *path, unsigned char *buf,
    size_t cap, size_t *len, char *why, size_t whylen);

WITCH_END_DECLS

#endif /* WITCH_KEY_H */
