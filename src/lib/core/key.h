/*
 * core/key.h: a project's shared secret key as the library keeps it (a
 * copy inside each configuration that has one).  See
 * doc/internals/auth.md.
 */
#ifndef WITCH__CORE_KEY_H
#define WITCH__CORE_KEY_H

#include <stdbool.h>
#include <stddef.h>

#include <witch/key.h>

struct witch__key {
	size_t		 len;			/* 0: no key */
	unsigned char	 b[WITCH_KEY_MAX];
};

/*
 * Store len bytes of key in k (NULL or len 0: no key).  0, or
 * WITCH_EINVAL for a length outside WITCH_KEY_MIN..WITCH_KEY_MAX (k is
 * then unchanged).  Any thread (k is the caller's).
 */
int witch__key_set(struct witch__key *k, const void *key, size_t len);
/* Forget the key (the bytes are wiped). */
void witch__key_clear(struct witch__key *k);

static inline bool
witch__key_on(const struct witch__key *k)
{
	return k->len != 0;
}

#endif
