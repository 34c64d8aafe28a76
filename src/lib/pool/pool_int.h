/*
 * pool/pool_int.h: the worker pool's insides, shared by pool.c (the
 * queue, submit, cancel, expire, stop and drain) and worker.c (a
 * worker's loop: its batches, spin and sleep).  The locking and
 * memory-ordering rules are at the top of pool.c.
 */
#ifndef WITCH__POOL_POOL_INT_H
#define WITCH__POOL_POOL_INT_H

#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pool/pool.h"

/*
 * How long an idle worker polls for new work before it sleeps: after one
 * job, adaptive, between SPIN_MIN_NS and SPIN_MAX_NS; after several,
 * SPIN_SPELL_NS (see spin() in worker.c).
 */
#ifndef SPIN_MIN_NS
#define SPIN_MIN_NS	3000
#endif
#ifndef SPIN_MAX_NS
#define SPIN_MAX_NS	50000
#endif
/*
 * The spin after a busy spell of more than one job (many clients or
 * pipelining): 0, one more look (worker.c, spin()).
 */
#ifndef SPIN_SPELL_NS
#define SPIN_SPELL_NS	0
#endif
/* After this long the spin yields the CPU at every poll. */
#ifndef SPIN_YIELD_NS
#define SPIN_YIELD_NS	SPIN_MIN_NS
#endif
/* Workers woken outside the lock per submit; more are woken inside it. */
#define WAKE_BATCH	16

/* Most jobs a worker takes from the queue at once... */
#ifndef BATCH_MAX
#define BATCH_MAX	16
#endif
/*
 * ... unless it is the pool's only worker: then it takes the whole queue
 * (there is nobody to share it with, and taking it all needs no walk of
 * the list).  0 for the experiment without.
 */
#ifndef ONE_TAKES_ALL
#define ONE_TAKES_ALL	1
#endif
/* Cache lines of its next job a worker prefetches (worker.c). */
#ifndef JOB_PREFETCH_LINES
#define JOB_PREFETCH_LINES 6
#endif
/* Most released jobs a worker keeps before it flushes them (worker.c). */
#ifndef RELEASE_RUN
#define RELEASE_RUN	64
#endif

struct worker {
	struct witch__pool	*pool;
	pthread_t		 tid;
	sem_t			 sem;	/* this worker sleeps here */
	bool			 woken;	/* claimed by a submitter */
	struct worker		*next_idle;
	/* Guarded by blk (below), not only by the pool mutex. */
	atomic_bool		 blk;	/* the batch lock: a spinlock */
	struct witch__job	*running;	/* popped, not yet released */
	struct witch__job	*batch;	/* taken, not started: by next */
	atomic_size_t		 nbatch;	/* its length; read unlocked
						 * (relaxed) for snapshots */
	/*
	 * True while this worker is inside a job's run or drop (execute):
	 * written by the worker only, read (relaxed) by
	 * witch__pool_running() for its snapshot, never by drain.
	 */
	atomic_bool		 busy;
	uint64_t		 spin_ns;	/* this worker's spin, adaptive */
	uint64_t		 idle_ns;	/* when it last went idle */
};

struct witch__pool {
	pthread_mutex_t		 mtx;
	pthread_cond_t		 drain_cv;	/* CLOCK_MONOTONIC clock */
	struct witch__job	*head;	/* FIFO: pop here */
	struct witch__job	*tail;	/* push here */
	size_t			 cap;
	atomic_size_t		 depth;	/* jobs queued */
	atomic_size_t		 nrunning;	/* popped, not counted out */
	struct worker		*idle;	/* sleeping workers */
	unsigned		 ndrainers;
	atomic_bool		 stopping;	/* written under mtx */
	bool			 joined;
	unsigned		 nworkers;	/* threads started */
	unsigned		 nslots;	/* workers[] entries: set
						 * before any thread starts */
	struct worker		*workers;
	/* witch__pool_spin_hint: release store, acquire load */
	_Atomic(const atomic_bool *) asleep;
};

static inline void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
	__asm__ __volatile__("yield");
#else
	sched_yield();
#endif
}

/*
 * The batch lock of a worker: a test-and-test-and-set spinlock, held for
 * a few pointer moves (the worker) or a walk of its batch (cancel,
 * expire, stop, a thief): at most BATCH_MAX jobs, or with one worker
 * what the queue held when it took them, which cancel and expiry walked
 * under the pool mutex anyway.  Acquire on taking it, release on
 * dropping it, so whatever one holder wrote is visible to the next.
 */
static inline void
blk_lock(struct worker *w)
{
	unsigned i = 0;

	while (atomic_exchange_explicit(&w->blk, true, memory_order_acquire))
		while (atomic_load_explicit(&w->blk, memory_order_relaxed))
			if (++i < 128)
				cpu_relax();
			else
				sched_yield();	/* the holder was preempted */
}

static inline void
blk_unlock(struct worker *w)
{
	atomic_store_explicit(&w->blk, false, memory_order_release);
}

/*
 * A batch's length: written under its batch lock, read with it held or,
 * for a snapshot, without (relaxed: only a count).
 */
static inline size_t
nbatch(struct worker *w)
{
	return atomic_load_explicit(&w->nbatch, memory_order_relaxed);
}

static inline void
set_nbatch(struct worker *w, size_t n)
{
	atomic_store_explicit(&w->nbatch, n, memory_order_relaxed);
}

static inline void
check_idle_locked(struct witch__pool *p)
{
	if (p->ndrainers > 0 &&
	    atomic_load_explicit(&p->depth, memory_order_relaxed) == 0 &&
	    atomic_load_explicit(&p->nrunning, memory_order_relaxed) == 0)
		pthread_cond_broadcast(&p->drain_cv);
}

/* A worker thread's body (worker.c); arg is its struct worker. */
void *witch__pool_worker_main(void *arg);

#endif
