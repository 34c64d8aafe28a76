/*
 * queue/blkcache.c: a one-thread cache of equal-sized blocks.
 *
 * A stack: the block given back last is handed out first (warm in the
 * cache).  low is the fewest blocks the stack held since the last trim;
 * the blocks below that mark were never handed out during the period, so
 * a trim frees exactly those, and a cache under steady use (emptied each
 * turn) keeps everything while an idle one is empty after two periods.
 *
 * AddressSanitizer: a cached block is poisoned whole, unpoisoned when it
 * is handed out, so a use after it was given back is reported.
 */
#include <stddef.h>

#include "core/alloc.h"
#include "queue/blkcache.h"

void
witch__blkcache_init(struct witch__blkcache *bc, size_t size)
{
	bc->size = size;
	bc->n = 0;
	bc->low = 0;
}

void *
witch__blkcache_get(struct witch__blkcache *bc)
{
	void *p;

	if (bc->n == 0)
		return witch__malloc(bc->size);
	if (witch__alloc_fail_due())
		return NULL;		/* the failure tests: an allocation */
	p = bc->blk[--bc->n];
	if (bc->n < bc->low)
		bc->low = bc->n;
	WITCH__UNPOISON(p, bc->size);
	return p;
}

void
witch__blkcache_put(struct witch__blkcache *bc, void *p)
{
	if (p == NULL)
		return;
	if (bc->n == WITCH__BLKCACHE_MAX) {
		witch__free(p);
		return;
	}
	WITCH__POISON(p, bc->size);
	bc->blk[bc->n++] = p;
}

void
witch__blkcache_trim(struct witch__blkcache *bc)
{
	size_t i, unused = bc->low;

	for (i = 0; i < unused; i++) {
		WITCH__UNPOISON(bc->blk[i], bc->size);
		witch__free(bc->blk[i]);
	}
	bc->n -= unused;
	for (i = 0; i < bc->n; i++)
		bc->blk[i] = bc->blk[i + unused];
	bc->low = bc->n;
}

void
witch__blkcache_destroy(struct witch__blkcache *bc)
{
	bc->low = bc->n;
	witch__blkcache_trim(bc);
}
