/*
 * core/buf.h: a growable byte buffer with a hard cap.
 *
 * Owned by one thread at a time.  Appends past the cap fail with
 * WITCH_ETOO_LARGE and leave the buffer as it was.
 */
#ifndef WITCH__CORE_BUF_H
#define WITCH__CORE_BUF_H

#include <stddef.h>

struct witch__buf {
	unsigned char	*data;
	size_t		 len;
	size_t		 cap;		/* allocated bytes */
	size_t		 limit;		/* never grow past this; 0 = SIZE_MAX */
};

/* Initialise an empty buffer (no allocation). */
void witch__buf_init(struct witch__buf *b, size_t limit);
/* Make room for extra more bytes.  0, WITCH_ENOMEM or WITCH_ETOO_LARGE. */
int witch__buf_reserve(struct witch__buf *b, size_t extra);
/* Append n bytes.  0, WITCH_ENOMEM or WITCH_ETOO_LARGE. */
int witch__buf_append(struct witch__buf *b, const void *p, size_t n);
/* Append a NUL-terminated string (without the NUL). */
int witch__buf_append_str(struct witch__buf *b, const char *s);
/*
 * Give an empty buffer (no storage: just initialised, freed or stolen
 * from) p as its storage: cap bytes from witch__malloc, now the buffer's.
 */
void witch__buf_adopt(struct witch__buf *b, void *p, size_t cap);
/* Take the bytes (caller frees with witch__free); the buffer is reset. */
unsigned char *witch__buf_steal(struct witch__buf *b, size_t *len);
/*
 * Give back the unused part when more than half of a block over 512
 * bytes is unused (for buffers that will be held a while).
 */
void witch__buf_fit(struct witch__buf *b);
/* Release the memory; the buffer is empty again. */
void witch__buf_free(struct witch__buf *b);
/*
 * Release the memory and make every later reserve or append fail with
 * WITCH_ENOMEM until witch__buf_init(): a buffer whose first bytes were
 * lost must never go on to hold the bytes after them.
 */
void witch__buf_fail(struct witch__buf *b);

#endif
