/*
 * queue/freelist.h: a bounded cache of equal-sized blocks.  Any thread
 * gives a block back; one thread, the owner, takes blocks out.
 *
 * For objects that one thread allocates and others free (request jobs:
 * the reactor makes them, workers finish them), so that the memory goes
 * back to the thread that reuses it instead of migrating between the
 * allocator's per-thread caches.  See the memory-ordering argument in
 * freelist.c and doc/internals/pool.md.
 */
#ifndef WITCH__QUEUE_FREELIST_H
#define WITCH__QUEUE_FREELIST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct witch__flnode {
	struct witch__flnode	*next;
};

/*
 * The givers' fields get a cache line of their own: every release writes
 * them, and they must not evict the owner's busy fields (nor those of the
 * struct that embeds the cache) from the owner's core.  Padding, not
 * alignas: the embedding struct may come from malloc, which does not honour
 * 64-byte alignment.  64 bytes on each side keep any other field off the
 * line(s) the two atomics sit on, wherever the struct starts.
 */
struct witch__freelist {
	char				 pad0[64];
	_Atomic(struct witch__flnode *)	 returned;	/* pushed by anyone */
	atomic_size_t			 count;		/* cached, both lists */
	char				 pad1[64];
	struct witch__flnode		*own;		/* owner's private list */
	size_t				 popped;	/* owner: not yet counted */
	size_t				 size;		/* block size, bytes */
	size_t				 cap;		/* most blocks cached */
	bool				 pfw;		/* x86 PREFETCHW */
};

/* An empty cache of blocks of size bytes (>= a pointer), at most cap. */
void witch__freelist_init(struct witch__freelist *fl, size_t size,
    size_t cap);
/* Owner only: a block of fl->size bytes (cached or new), or NULL. */
void *witch__freelist_get(struct witch__freelist *fl);
/*
 * Owner, AddressSanitizer builds: poison a block's bytes from used to its
 * end, so reads past what the caller filled in are reported as they
 * would be with an exact-size malloc.  A no-op otherwise.
 */
void witch__freelist_poison_tail(struct witch__freelist *fl, void *p,
    size_t used);
/* Any thread: give back a block from witch__freelist_get(). */
void witch__freelist_put(struct witch__freelist *fl, void *p);
/*
 * Any thread: give back n blocks from witch__freelist_get(), linked
 * from head to tail through their first pointer (struct witch__flnode;
 * tail's link NULL):
 * one push for all of them while they fit under the cap, else one by one.
 */
void witch__freelist_put_chain(struct witch__freelist *fl,
    struct witch__flnode *head, struct witch__flnode *tail, size_t n);
/* Free every cached block; once no thread can put any more.  Idempotent. */
void witch__freelist_destroy(struct witch__freelist *fl);

#endif
