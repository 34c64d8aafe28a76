/*
 * core/buf.c: growable byte buffer with a cap.
 */
#include <stdint.h>
#include <string.h>

#include <witch/error.h>

#include "core/alloc.h"
#include "core/buf.h"

void
witch__buf_init(struct witch__buf *b, size_t limit)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->limit = limit ? limit : SIZE_MAX;
}

int
witch__buf_reserve(struct witch__buf *b, size_t extra)
{
	size_t need, ncap;
	unsigned char *p;

	if (b->limit == 0)
		return WITCH_ENOMEM;	/* witch__buf_fail() */
	if (extra > b->limit - b->len)
		return WITCH_ETOO_LARGE;
	need = b->len + extra;
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? SIZE_MAX : ncap * 2;
	if (ncap > b->limit)
		ncap = b->limit;
	if ((p = witch__realloc(b->data, ncap)) == NULL)
		return WITCH_ENOMEM;
	b->data = p;
	b->cap = ncap;
	return 0;
}

int
witch__buf_append(struct witch__buf *b, const void *p, size_t n)
{
	int rc;

	if (n == 0)
		return 0;
	if ((rc = witch__buf_reserve(b, n)) != 0)
		return rc;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int
witch__buf_append_str(struct witch__buf *b, const char *s)
{
	return witch__buf_append(b, s, strlen(s));
}

void
witch__buf_adopt(struct witch__buf *b, void *p, size_t cap)
{
	b->data = p;
	b->len = 0;
	b->cap = cap;
}

unsigned char *
witch__buf_steal(struct witch__buf *b, size_t *len)
{
	unsigned char *p = b->data;

	if (len != NULL)
		*len = b->len;
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}

void
witch__buf_fit(struct witch__buf *b)
{
	unsigned char *p;

	if (b->data == NULL || b->len == 0 || b->cap / 2 < b->len ||
	    b->cap <= 512)
		return;
	if ((p = witch__realloc(b->data, b->len)) != NULL) {
		b->data = p;	/* a failed shrink keeps the larger block */
		b->cap = b->len;
	}
}

void
witch__buf_free(struct witch__buf *b)
{
	witch__free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void
witch__buf_fail(struct witch__buf *b)
{
	witch__buf_free(b);
	b->limit = 0;		/* witch__buf_init() never sets 0 */
}
