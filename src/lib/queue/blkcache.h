/*
 * queue/blkcache.h: a one-thread cache of equal-sized blocks that gives
 * back what it did not use.
 *
 * For buffers one thread allocates and frees in bursts: the reactor's
 * reply buffers, allocated as a turn's replies are built and freed as the
 * turn's batched writes complete.  Without it, freeing a few dozen 4 KiB
 * blocks together makes the allocator return the top of the thread's heap
 * to the kernel, only to ask for it again on the next turn.  Not shared:
 * every call is from the owner's thread.  See doc/internals/output-queue.md.
 */
#ifndef WITCH__QUEUE_BLKCACHE_H
#define WITCH__QUEUE_BLKCACHE_H

#include <stddef.h>

/* Most blocks kept (4 MiB of 4 KiB blocks: a turn of 1024 connections). */
#define WITCH__BLKCACHE_MAX 1024

struct witch__blkcache {
	size_t	 size;		/* bytes per block */
	size_t	 n;		/* blocks cached */
	size_t	 low;		/* fewest cached since the last trim */
	void	*blk[WITCH__BLKCACHE_MAX];
};

/* An empty cache of blocks of size bytes. */
void witch__blkcache_init(struct witch__blkcache *bc, size_t size);
/*
 * A block of bc->size bytes, cached or new (witch__malloc); NULL: ENOMEM
 * (or, cached, an injected failure: witch__alloc_fail_due).
 */
void *witch__blkcache_get(struct witch__blkcache *bc);
/*
 * Give back a block of bc->size bytes allocated with witch__malloc (from
 * get or not): kept if there is room, else freed.
 */
void witch__blkcache_put(struct witch__blkcache *bc, void *p);
/*
 * Free the blocks that stayed cached since the last trim: a cache
 * trimmed periodically keeps only what a period actually used.
 */
void witch__blkcache_trim(struct witch__blkcache *bc);
/* Free every cached block. */
void witch__blkcache_destroy(struct witch__blkcache *bc);

#endif
