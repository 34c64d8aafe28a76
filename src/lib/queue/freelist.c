/*
 * queue/freelist.c: a bounded cache of equal-sized blocks (MPSC).
 *
 * Memory ordering
 * ---------------
 * The same argument as the output queue's (oqueue.c), because it is the
 * same structure: givers push a block on fl->returned with a CAS loop
 * whose successful CAS is a release; the owner takes the whole stack with
 * one exchange(returned, NULL) with acquire.  Every modification of
 * fl->returned is a read-modify-write, so each push heads a release
 * sequence that runs through every later push up to the value the
 * exchange reads: the owner synchronizes with every giver whose block it
 * took, and so sees each block's link (and the giver's last writes to the
 * block, e.g. the job's fields it cleared) complete.  A giver never
 * touches a block after its CAS succeeded.  No ABA: nobody pops with a
 * CAS; the owner takes everything with an unconditional exchange, and a
 * giver's CAS only links its own block to the head it verified.
 *
 * fl->count bounds the cache.  It is a heuristic, not a safety property:
 * relaxed increments by givers (a giver that finds the counter at the cap
 * undoes its increment and frees its block instead), relaxed decrements
 * by the owner, in bulk: the blocks it handed out since its last take are
 * subtracted just before the next take.  The counter may briefly exceed
 * cap by what concurrent givers are adding (one each, or a chain's n: a
 * chain that does not fit takes its n back and goes block by block) and
 * reads high by the blocks the owner popped since its last take (givers
 * then free a little sooner); the number of cached blocks never exceeds
 * cap.
 *
 * AddressSanitizer: a cached block is poisoned (all but its link) so that
 * a use after "free" is still reported; the owner unpoisons it when it
 * hands it out.  The giver poisons before its release CAS, the owner
 * unpoisons after its acquire exchange: never concurrently.
 */
#include <stdatomic.h>
#include <stddef.h>

#include "core/alloc.h"
#include "queue/freelist.h"

#define POISON(p, n)	WITCH__POISON(p, n)
#define UNPOISON(p, n)	WITCH__UNPOISON(p, n)

/*
 * Cache lines of the next block the owner prefetches for writing when it
 * takes one, at most the block's (0: none; 8 covers a request job with
 * its largest cached data).  The blocks were last written on other
 * cores (the givers'); the owner fills each at once (a request job:
 * its fields, id and data), and without the prefetch the first locked
 * instruction after those stores waited for all their misses.  Measured
 * in performance.md (2026-12-05, "Prefetching the hand-off").
 */
#ifndef FL_PREFETCH
#define FL_PREFETCH 8
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define FL_X86 1
#endif

/*
 * Whether the CPU has PREFETCHW (CPUID 0x80000001, ECX bit 8).  Built
 * for the x86-64 baseline (no -march), gcc turns a write prefetch into
 * prefetcht0, which brings the line in shared, and the first store then
 * still waits for the other core to give it up; prefetchw asks for it
 * exclusive.  CPUs without it get the compiler's prefetch.
 */
static bool
have_prefetchw(void)
{
#ifdef FL_X86
	unsigned a, b, c, d;

	return __get_cpuid(0x80000001, &a, &b, &c, &d) != 0 &&
	    (c & (1u << 8)) != 0;
#else
	return false;	/* aarch64: __builtin_prefetch(p, 1) is PRFM PST */
#endif
}

/* Prefetch the line at q for writing.  A hint: never faults. */
static inline void
prefetch_w(const struct witch__freelist *fl, const char *q)
{
#ifdef FL_X86
	if (fl->pfw) {
		__asm__ __volatile__("prefetchw %0" : : "m"(*q));
		return;
	}
#else
	(void)fl;
#endif
	__builtin_prefetch(q, 1, 3);
}

void
witch__freelist_init(struct witch__freelist *fl, size_t size, size_t cap)
{
	atomic_init(&fl->returned, NULL);
	atomic_init(&fl->count, 0);
	fl->own = NULL;
	fl->popped = 0;
	fl->size = size < sizeof(struct witch__flnode) ?
	    sizeof(struct witch__flnode) : size;
	fl->cap = cap;
	fl->pfw = have_prefetchw();
}

void *
witch__freelist_get(struct witch__freelist *fl)
{
	struct witch__flnode *n;

	if (fl->own == NULL) {
		if (fl->popped > 0) {
			atomic_fetch_sub_explicit(&fl->count, fl->popped,
			    memory_order_relaxed);
			fl->popped = 0;
		}
		fl->own = atomic_exchange_explicit(&fl->returned, NULL,
		    memory_order_acquire);
	}
	if ((n = fl->own) == NULL)
		return witch__malloc(fl->size);
	fl->own = n->next;
#if FL_PREFETCH
	/* Hints only: never a fault, nor an access to ASan. */
	if (fl->own != NULL) {
		const char *q = (const char *)fl->own;
		size_t off;

		for (off = 0; off < fl->size && off < FL_PREFETCH * 64u;
		    off += 64)
			prefetch_w(fl, q + off);
	}
#endif
	fl->popped++;
	UNPOISON(n, fl->size);
	return n;
}

void
witch__freelist_poison_tail(struct witch__freelist *fl, void *p,
    size_t used)
{
	if (used < fl->size)
		POISON((char *)p + used, fl->size - used);
}

void
witch__freelist_put(struct witch__freelist *fl, void *p)
{
	struct witch__flnode *n = p, *head;

	if (p == NULL)
		return;
	if (atomic_fetch_add_explicit(&fl->count, 1, memory_order_relaxed) >=
	    fl->cap) {
		atomic_fetch_sub_explicit(&fl->count, 1, memory_order_relaxed);
		UNPOISON(p, fl->size);	/* a deferred block comes poisoned */
		witch__free(p);
		return;
	}
	POISON((char *)p + sizeof(*n), fl->size - sizeof(*n));
	head = atomic_load_explicit(&fl->returned, memory_order_relaxed);
	do {
		n->next = head;
	} while (!atomic_compare_exchange_weak_explicit(&fl->returned, &head,
	    n, memory_order_release, memory_order_relaxed));
}

/*
 * A chain is pushed like one block: its links and contents are written
 * before the release CAS that makes its head the stack's, so the
 * owner's acquire exchange sees them all (the argument at the top, for
 * n blocks at once).  The count takes all n or none, so the cap still
 * holds.
 */
void
witch__freelist_put_chain(struct witch__freelist *fl,
    struct witch__flnode *head, struct witch__flnode *tail, size_t n)
{
	struct witch__flnode *top, *next;

	if (n == 0)
		return;
	if (atomic_fetch_add_explicit(&fl->count, n, memory_order_relaxed) +
	    n > fl->cap) {
		atomic_fetch_sub_explicit(&fl->count, n, memory_order_relaxed);
		for (; head != NULL; head = next) {
			next = head->next;
			witch__freelist_put(fl, head);
		}
		return;
	}
#ifdef WITCH__ASAN
	for (next = head; next != NULL; next = next->next)
		POISON((char *)next + sizeof(*next),
		    fl->size - sizeof(*next));
#endif
	top = atomic_load_explicit(&fl->returned, memory_order_relaxed);
	do {
		tail->next = top;
	} while (!atomic_compare_exchange_weak_explicit(&fl->returned, &top,
	    head, memory_order_release, memory_order_relaxed));
}

static void
free_chain(struct witch__freelist *fl, struct witch__flnode *n)
{
	struct witch__flnode *next;

	for (; n != NULL; n = next) {
		next = n->next;
		UNPOISON(n, fl->size);
		witch__free(n);
	}
}

void
witch__freelist_destroy(struct witch__freelist *fl)
{
	free_chain(fl, fl->own);
	fl->own = NULL;
	free_chain(fl, atomic_exchange_explicit(&fl->returned, NULL,
	    memory_order_acquire));
	atomic_store_explicit(&fl->count, 0, memory_order_relaxed);
	fl->popped = 0;
}
