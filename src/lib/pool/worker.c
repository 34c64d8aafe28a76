/*
 * pool/worker.c: a worker's loop.  It takes a batch of queued jobs under
 * the pool lock (pop_locked) or steals half of another worker's, runs
 * them one after the other without the lock (take_own), and when there
 * is no work spins a little (adaptive, spin) before it sleeps on its own
 * semaphore (sleep_locked).  The locking and memory-ordering rules,
 * batches included, are at the top of pool.c; doc/internals/pool.md
 * tells the why, with the figures.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <witch/error.h>

#include "pool/pool_int.h"

/* pool.h.  initial-exec: a load from %fs, not a __tls_get_addr call. */
_Thread_local uint64_t witch__pool_resumed_ns
    __attribute__((tls_model("initial-exec")));

/*
 * Take the later half (rounded up) of another worker's batch: a worker
 * that finds the queue empty does not leave jobs waiting behind a slow
 * handler.  Returns the list (by next) and its length in *n.  Pool lock
 * held; each batch lock is held alone.
 */
static struct witch__job *
steal_locked(struct witch__pool *p, struct worker *self, size_t *n)
{
	struct witch__job *list = NULL, **pp;
	struct worker *v;
	size_t have, keep, i;
	unsigned k;

	*n = 0;
	for (k = 0; k < p->nslots && list == NULL; k++) {
		if ((v = &p->workers[k]) == self)
			continue;
		blk_lock(v);
		if ((have = nbatch(v)) > 0) {
			keep = have / 2;
			for (pp = &v->batch, i = 0; i < keep; i++)
				pp = &(*pp)->next;
			list = *pp;
			*pp = NULL;
			*n = have - keep;
			set_nbatch(v, keep);
		}
		blk_unlock(v);
	}
	return list;
}

/*
 * Clear w's running slot and give it the next job: the oldest queued
 * job, taking up to BATCH_MAX (the queue's share per worker, rounded
 * up; a pool of one worker takes the whole queue) at once, the first
 * into the running slot, the rest into w's batch, which w then runs
 * without the pool lock (take_own).  With the queue
 * empty, half of another worker's batch.  Returns the job, or NULL.
 * Pool lock held.
 *
 * Taken jobs leave depth and join nrunning here, for the whole batch at
 * once, so drain waits for them; witch__pool_depth counts them as
 * waiting, witch__pool_running not at all (until each starts), and
 * cancel, expire and stop treat them as queued: they find them in the
 * batch and remove them (see
 * witch__pool_cancel).  Only this worker adds to its batch, under the
 * pool lock; it takes from it, and others remove from it, under its
 * batch lock.
 */
/*
 * Start loading the next job's first cache lines (the job and the
 * request behind it, which the reactor wrote on its core) while this
 * one runs: a batch's jobs are scattered blocks, and without this every
 * job began with a chain of misses.  A prefetch is only a hint: it
 * never faults and is no access to the language (nor to the
 * sanitizers), so it may name a job a canceller has just taken away.
 */
static inline void
prefetch_job(const struct witch__job *job)
{
	unsigned i;

	if (job != NULL)
		for (i = 0; i < JOB_PREFETCH_LINES; i++)
			__builtin_prefetch((const char *)job + 64 * i, 0, 3);
}

static struct witch__job *
pop_locked(struct witch__pool *p, struct worker *w)
{
	struct witch__job *job, *last, *rest;
	size_t depth, k, i;

	job = p->head;
	if (job != NULL) {
		depth = atomic_load_explicit(&p->depth, memory_order_relaxed);
		k = (depth + p->nslots - 1) / p->nslots;
		if (k > BATCH_MAX && (p->nslots > 1 || !ONE_TAKES_ALL))
			k = BATCH_MAX;
		/*
		 * The whole queue needs no walk: each step of one is a miss
		 * on a job the reactor just wrote, taken under the mutex
		 * the reactor submits with.
		 */
		if (k == depth)
			last = p->tail;
		else
			for (last = job, i = 1; i < k; i++)
				last = last->next;
		if ((p->head = last->next) != NULL)
			p->head->prev = NULL;
		else
			p->tail = NULL;
		last->next = NULL;
		atomic_fetch_sub_explicit(&p->depth, k, memory_order_relaxed);
		atomic_fetch_add_explicit(&p->nrunning, k,
		    memory_order_relaxed);
		rest = job->next;
		k--;
	} else if ((job = steal_locked(p, w, &k)) != NULL) {
		rest = job->next;
		k--;
	} else
		rest = NULL;
	if (job != NULL)
		job->next = job->prev = NULL;
	blk_lock(w);
	w->running = job;
	w->batch = rest;	/* w's batch is empty here */
	set_nbatch(w, k);
	blk_unlock(w);
	prefetch_job(rest);
	return job;
}

/*
 * The next job of w's own batch into its running slot, or NULL (the
 * slot is left as it is: the next pop_locked clears it).  No pool lock:
 * this is what a batch saves, one pool lock cycle per job.
 */
static struct witch__job *
take_own(struct worker *w)
{
	struct witch__job *job;

	blk_lock(w);
	if ((job = w->batch) != NULL) {
		w->batch = job->next;
		set_nbatch(w, nbatch(w) - 1);
		job->next = NULL;
		w->running = job;
		prefetch_job(w->batch);
	}
	blk_unlock(w);
	return job;
}

/*
 * Decide a popped job's fate and carry it out.  No lock held.  A job that
 * witch__pool_stop flagged before it started is dropped as shutting down:
 * stop sets p->stopping before it sets cancelled (release), so reading
 * cancelled with acquire makes that stopping visible.
 */
static void
execute(struct witch__pool *p, struct witch__job *job)
{
	if (job->deadline_ns != 0 && witch__now_ns() >= job->deadline_ns)
		job->ops->drop(job, WITCH_ETIMEOUT);
	else if (atomic_load_explicit(&job->cancelled, memory_order_acquire))
		job->ops->drop(job, atomic_load_explicit(&p->stopping,
		    memory_order_relaxed) ? WITCH_ESHUTTING_DOWN :
		    WITCH_ECANCELLED);
	else
		job->ops->run(job);
}

/* n jobs were released: count them out and wake drainers.  No lock held. */
static void
finished(struct witch__pool *p, unsigned n)
{
	if (atomic_fetch_sub_explicit(&p->nrunning, n,
	    memory_order_acq_rel) != n)
		return;
	pthread_mutex_lock(&p->mtx);
	check_idle_locked(p);
	pthread_mutex_unlock(&p->mtx);
}

/*
 * Jobs this worker released but has not counted out: a run of one ops
 * (the job ops' release_defer and release_flush).  One flush and one
 * nrunning update per run, not a release's atomics and a fetch_sub per
 * job (c=50 P=16: four of the worker's locked instructions per request;
 * doc/performance.md).
 *
 * Ordering: the run is the worker's own.  release_flush finishes every
 * deferred release before finished() counts the run out with the same
 * acq_rel fetch_sub as before, so a drainer that reads nrunning == 0
 * still finds every release (flush included) done, as pool.c's rules
 * require.  A deferred job is no longer in any running slot or batch
 * (step 3 of a job's life came first), so no other thread can reach it.
 */
struct relrun {
	const struct witch__job_ops	*ops;
	unsigned			 n;
};

static void
rel_flush(struct witch__pool *p, struct relrun *rr)
{
	if (rr->n == 0)
		return;
	if (rr->ops->release_flush != NULL)
		rr->ops->release_flush();
	finished(p, rr->n);
	rr->n = 0;
}

static void
rel_add(struct witch__pool *p, struct relrun *rr, struct witch__job *job)
{
	const struct witch__job_ops *ops = job->ops;

	if (rr->n > 0 && (rr->ops != ops || rr->n >= RELEASE_RUN))
		rel_flush(p, rr);
	rr->ops = ops;
	if (ops->release_defer != NULL)
		ops->release_defer(job);
	else
		ops->release(job);
	rr->n++;
}

/*
 * Poll for new work for at most w->spin_ns if one (the worker ran at
 * most one job since its last spin), else SPIN_SPELL_NS.  No lock held.
 *
 * The spin adapts to the gaps between jobs that this worker sees (the
 * time from going idle to the next job, spin_fit): a gap that a spin
 * would have covered (under SPIN_MAX_NS) sets the spin to 1.5 times that
 * gap, so the next one is caught without a sleep and a wakeup (at one
 * request in flight the gap is the client's round trip); a longer gap
 * halves it, down to SPIN_MIN_NS.  The long spin is only for while the
 * submitter sleeps (the hint, witch__pool_spin_hint): then the worker
 * takes no CPU from the thread that produces its work.  Once the
 * submitter is seen awake, the spin goes on for at most SPIN_MIN_NS
 * more (it is probably reading the next request), so on a busy server
 * with fewer cores than threads a worker never spins long beside the
 * reactor.  And only after a busy spell of one job, the pattern of one
 * request in flight the spin is for: a worker that ran several (many
 * clients, pipelining) only looks a little longer (SPIN_SPELL_NS, 0: it
 * polls depth 16 times between pauses, and the first clock read ends
 * it: about 0.1-1 us), because while the reactor sleeps then it
 * waits for clients, whose CPU on a small machine a spin would take
 * (c=50 P=1 on 2 cores: 0.78 x Redis's requests per second with the
 * long spin after any spell, 0.98 with a 3 us spin; c=1 p50 24 us
 * against 68 us without the long spin after one job).  With many clients
 * the next batch seldom comes within a few microseconds, and the 3 us
 * spin this replaced was paid at every batch: without it, build against
 * build, c=50 P=16 +3.9% and +1.9%, c=50 P=1 +1.8% and +5.7%, c=10 P=4
 * +3.5% and +4.3% requests per second (doc/performance.md).
 * After SPIN_YIELD_NS the loop yields the CPU at every poll.  The clock
 * is read every 16 polls, then at every yield, and once more when work
 * ends the spin: every exit sets witch__pool_resumed_ns (pool.h).
 */
static void
spin(struct witch__pool *p, struct worker *w, bool one)
{
	const atomic_bool *asleep = atomic_load_explicit(&p->asleep,
	    memory_order_acquire);
	uint64_t start = witch__now_ns(), now, awake_ns = 0;
	uint64_t limit = one ? w->spin_ns : SPIN_SPELL_NS;
	bool yield = false;
	unsigned i;

	w->idle_ns = start;
	for (i = 1;; i++) {
		if (atomic_load_explicit(&p->depth, memory_order_relaxed) > 0) {
			witch__pool_resumed_ns = witch__now_ns();
			return;
		}
		if (yield)
			sched_yield();
		else {
			cpu_relax();
			if ((i & 15) != 0)
				continue;
		}
		now = witch__now_ns();
		if (now - start >= limit) {
			witch__pool_resumed_ns = now;
			return;
		}
		if (asleep == NULL ||
		    !atomic_load_explicit(asleep, memory_order_relaxed)) {
			if (awake_ns == 0)
				awake_ns = now;
			else if (now - awake_ns >= SPIN_MIN_NS) {
				witch__pool_resumed_ns = now;
				return;
			}
		} else
			awake_ns = 0;
		yield = now - start >= SPIN_YIELD_NS;
	}
}

static void
spin_fit(struct worker *w)
{
	uint64_t now = witch__now_ns(), gap = now - w->idle_ns;

	witch__pool_resumed_ns = now;	/* woken: back to work */

	if (gap < SPIN_MAX_NS) {
		w->spin_ns = gap + gap / 2 < SPIN_MAX_NS ? gap + gap / 2 :
		    SPIN_MAX_NS;
		if (w->spin_ns < SPIN_MIN_NS)
			w->spin_ns = SPIN_MIN_NS;
	}
	else if (w->spin_ns / 2 > SPIN_MIN_NS)
		w->spin_ns /= 2;
	else
		w->spin_ns = SPIN_MIN_NS;
}

/*
 * Sleep until a submitter claims w or the pool stops.  Lock held (it is
 * dropped while asleep and held again on return).
 *
 * A semaphore per worker, not a condition variable on p->mtx: glibc
 * re-takes the mutex after pthread_cond_wait in its "contended" state, so
 * the worker's next unlock was a futex(FUTEX_WAKE) syscall with nobody to
 * wake, one per sleep (one per request at c=1).  With sem_wait outside the
 * lock, the wake is the poster's sem_post (a futex wake only when the
 * worker really sleeps) and the re-lock is uncontended.
 *
 * Exactly one post per sleep: a worker is posted only by whoever removes
 * it from the idle stack (submit, wake_all_locked) and sets woken, both
 * under the lock, so at most once per push; the loop below waits until
 * woken or stopping, consuming that post (a post that comes before the
 * sem_wait makes it return at once).  So no count is left over for the
 * next sleep.  A worker that finds stopping set under the lock never
 * waits.  woken and stopping are read under the mutex, which also makes
 * the submitter's queue writes visible.
 */
static void
sleep_locked(struct witch__pool *p, struct worker *w)
{
	w->woken = false;
	w->next_idle = p->idle;
	p->idle = w;
	while (!w->woken && !p->stopping) {
		pthread_mutex_unlock(&p->mtx);
		while (sem_wait(&w->sem) == -1 && errno == EINTR)
			;
		pthread_mutex_lock(&p->mtx);
	}
	/* witch__pool_stop empties the idle stack and sets woken. */
	spin_fit(w);
}

void *
witch__pool_worker_main(void *arg)
{
	struct worker *w = arg;
	struct witch__pool *p = w->pool;
	struct witch__job *job = NULL, *next;
	struct relrun rr = { NULL, 0 };
	unsigned ran = 0;	/* jobs run since the last spin */
	bool spun = false;

	pthread_mutex_lock(&p->mtx);
	for (;;) {
		/* Clear the slot of the job just run, take the next ones. */
		next = pop_locked(p, w);
		if (next == NULL && job == NULL) {
			if (p->stopping)
				break;
			if (!spun) {
				pthread_mutex_unlock(&p->mtx);
				spin(p, w, ran <= 1);
				pthread_mutex_lock(&p->mtx);
				spun = true;
				ran = 0;
			} else
				sleep_locked(p, w);
			continue;
		}
		pthread_mutex_unlock(&p->mtx);
		if (job != NULL) {
			/*
			 * Nothing queued behind this job: let it publish
			 * what it batched before it is released, so that
			 * finished() (and a drain) comes after that.
			 */
			if (next == NULL && job->ops->idle != NULL)
				job->ops->idle(job);
			rel_add(p, &rr, job);
			rel_flush(p, &rr);	/* the batch's run, counted out */
		}
		/* The job taken, then the rest of its batch without the lock. */
		while ((job = next) != NULL) {
			/* For witch__pool_running() only (pool.c). */
			atomic_store_explicit(&w->busy, true,
			    memory_order_relaxed);
			execute(p, job);
			atomic_store_explicit(&w->busy, false,
			    memory_order_relaxed);
			spun = false;
			ran++;
			if ((next = take_own(w)) == NULL)
				break;
			rel_add(p, &rr, job);	/* more to run: not idle */
		}
		pthread_mutex_lock(&p->mtx);
	}
	pthread_mutex_unlock(&p->mtx);
	return NULL;
}
