/*
 * pool/pool.c: fixed worker pool with a bounded FIFO queue.
 *
 * Locking and memory ordering
 * ---------------------------
 * One mutex, p->mtx, protects: the queue links (p->head, p->tail and each
 * queued job's next/prev), the idle-worker stack and each worker's
 * `woken' flag (a sleeping worker waits on its own semaphore, outside
 * the mutex: sleep_locked), p->stopping, p->joined and p->ndrainers;
 * each worker's `running' slot and batch are under its own batch lock
 * (below, "Batches").  Every write to p->depth happens under it too, and
 * nrunning is incremented under it.  Job fields other than the links and
 * `cancelled' (ops, deadline_ns, the caller's own data) are written by the
 * submitter before witch__pool_submit(); the mutex hand-off (submit unlocks,
 * the worker locks to pop) makes them visible to the worker.
 *
 * p->stopping is written only under the mutex; it is atomic so that a
 * worker can read it without the lock when it drops a job stop flagged.
 *
 * p->depth is atomic only so that it can be read without the lock:
 * witch__pool_depth() returns a snapshot, and a spinning worker polls
 * depth (relaxed) to notice new work without touching the mutex.  A
 * relaxed read is enough there because the spinner takes the mutex
 * before it touches the queue; the value only tells it when to do so.
 * p->nrunning is atomic because workers lower it without the lock; it is
 * read under the lock (drain's predicate).  It is decremented after
 * release() returned (a worker counts a run of jobs out at once, after
 * their release_defer() calls and the run's release_flush() returned:
 * worker.c, struct relrun); the worker that brings it to zero then takes
 * the mutex to wake drainers, and drainers test their predicate under the
 * mutex, so that wakeup cannot be lost.  The decrement is acq_rel and the
 * drainer's read acquire, so a drain that returns 0 happens-after every
 * release() returned: the caller may then free or reuse the jobs.
 *
 * Each worker's busy flag (set around execute(), relaxed, by that worker
 * only) serves witch__pool_running()'s snapshot and nothing else: no
 * decision in the pool reads it.
 *
 * job->cancelled is an atomic_bool because it is written by a canceller
 * (or witch__pool_stop) while the job's handler may be reading it on a
 * worker without any lock.  It is stored with release ordering and only
 * ever goes from false to true.  A handler that loads it (acquire) may
 * assume: if it reads true, the job was cancelled and everything the
 * canceller wrote before calling witch__pool_cancel is visible; if it
 * reads false, nothing -- the cancel may land a moment later, so a
 * handler that wants to stop early must poll.  The pool itself checks it
 * once just before run(), so a job cancelled between being popped and
 * starting is dropped with WITCH_ECANCELLED instead of run.
 *
 * Batches: a worker takes up to BATCH_MAX jobs (the only worker: all)
 * from the queue under one lock (pop_locked) and runs them one after
 * the other without taking the mutex again.  Each worker's `running'
 * slot and its batch (the jobs taken, not started, linked by next, and
 * their count) are guarded by that worker's batch lock w->blk, a
 * spinlock: its exchange acquires
 * and its store releases, so each holder sees everything the previous
 * holder wrote (the job links, the slot), as with a mutex.  Lock order:
 * p->mtx, then one w->blk; nobody holds two batch locks at once.  The
 * worker takes its next job from its batch holding only its own blk
 * (take_own); everyone else (cancel, expire, stop, a thief) takes p->mtx
 * first, then the blk.  Only the worker adds to its batch, and only
 * when it is empty, under p->mtx and its blk; the job fields the
 * submitter wrote became visible to it through p->mtx at that pop.
 * Jobs stay in a batch only between two of the worker's own steps, so
 * cancel (under p->mtx, then each blk) finds every job that is queued,
 * in a batch or running, each in exactly one of those places.
 *
 * A batch's jobs were counted out of depth and into nrunning when they
 * were taken (one atomic each for the whole batch), so drain waits for
 * them; witch__pool_depth() adds the batches back (they wait to start),
 * and witch__pool_running() does not count them.  Cancel, expire and stop treat
 * them as queued (they have not started): they remove them from the
 * batch under its lock, subtract them from nrunning under p->mtx (an
 * acq_rel read-modify-write, so it continues the release sequence of the
 * workers' decrements that a drainer's acquire load reads), and drop and
 * release them on the calling thread before returning.  So a queued job
 * cancelled is dropped on the canceller's thread before cancel returns,
 * wherever it waits.
 *
 * Lifetime: a worker clears or replaces its running slot under its
 * batch lock before it calls release() of the job that was there, and
 * cancel, expire and stop only look at jobs through the queue (under
 * p->mtx), or the batches and running slots (under p->mtx and the
 * batch lock), so they never touch a job that may have been freed.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <witch/error.h>

#include "core/alloc.h"
#include "pool/pool_int.h"

/* Unlink job from the queue.  Lock held. */
static void
unlink_job(struct witch__pool *p, struct witch__job *job)
{
	if (job->prev != NULL)
		job->prev->next = job->next;
	else
		p->head = job->next;
	if (job->next != NULL)
		job->next->prev = job->prev;
	else
		p->tail = job->prev;
	job->next = job->prev = NULL;
	atomic_fetch_sub_explicit(&p->depth, 1, memory_order_relaxed);
}

/*
 * Jobs waiting in the workers' batches: a snapshot.  With the pool lock
 * held it is an upper bound that can only fall (batches grow only under
 * the lock; their workers take from them without it).
 */
static size_t
batched(struct witch__pool *p)
{
	size_t n = 0;
	unsigned i;

	for (i = 0; i < p->nslots; i++)
		n += nbatch(&p->workers[i]);
	return n;
}

/*
 * Move the jobs of w's batch for which match(job, arg) is true onto
 * *tailp (linked by next); returns how many.  Pool lock held.
 */
static size_t
batch_remove(struct worker *w, bool (*match)(const struct witch__job *,
    void *), void *arg, struct witch__job ***tailp)
{
	struct witch__job *job, **pp;
	size_t n = 0;

	blk_lock(w);
	for (pp = &w->batch; (job = *pp) != NULL;) {
		if (!match(job, arg)) {
			pp = &job->next;
			continue;
		}
		*pp = job->next;
		job->next = NULL;
		**tailp = job;
		*tailp = &job->next;
		n++;
	}
	set_nbatch(w, nbatch(w) - n);
	blk_unlock(w);
	return n;
}

/*
 * Jobs queued or running.  Lock held.  nrunning is read with acquire: it
 * is decremented outside the lock after release() returned (acq_rel; for
 * a worker's run of deferred releases, after release_flush() returned),
 * so a drainer that reads 0 knows every release has returned and may
 * free or reuse the jobs' memory.
 */
static size_t
pending_locked(struct witch__pool *p)
{
	return atomic_load_explicit(&p->depth, memory_order_relaxed) +
	    atomic_load_explicit(&p->nrunning, memory_order_acquire);
}

/* Drop and release every job of a private list linked by next. */
static void
drop_list(struct witch__job *job, int reason)
{
	struct witch__job *next;

	for (; job != NULL; job = next) {
		next = job->next;
		job->next = job->prev = NULL;
		job->ops->drop(job, reason);
		job->ops->release(job);
	}
}

/* Set stopping and wake every sleeping worker.  Lock held. */
static void
wake_all_locked(struct witch__pool *p)
{
	struct worker *w;

	p->stopping = true;
	for (w = p->idle; w != NULL; w = w->next_idle) {
		w->woken = true;
		sem_post(&w->sem);
	}
	p->idle = NULL;
}

void
witch__pool_spin_hint(struct witch__pool *p, const atomic_bool *asleep)
{
	atomic_store_explicit(&p->asleep, asleep, memory_order_release);
}

/* Join and destroy the first n workers; called once. */
static void
join_workers(struct witch__pool *p, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		pthread_join(p->workers[i].tid, NULL);
}

/* Start p->workers[0 .. n) with all signals blocked in them. */
static int
start_workers(struct witch__pool *p, unsigned n)
{
	sigset_t all, old;
	int rc = 0;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (p->nworkers = 0; p->nworkers < n; p->nworkers++) {
		p->workers[p->nworkers].spin_ns = SPIN_MIN_NS;
		if (pthread_create(&p->workers[p->nworkers].tid, NULL,
		    witch__pool_worker_main, &p->workers[p->nworkers]) != 0) {
			rc = WITCH_ESYSTEM;
			break;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

/* Destroy synchronisation objects and free; workers already joined. */
static void
destroy(struct witch__pool *p, unsigned ncv, bool have_mtx, bool have_drain)
{
	unsigned i;

	for (i = 0; i < ncv; i++)
		sem_destroy(&p->workers[i].sem);
	if (have_drain)
		pthread_cond_destroy(&p->drain_cv);
	if (have_mtx)
		pthread_mutex_destroy(&p->mtx);
	witch__free(p->workers);
	witch__free(p);
}

/*
 * Create a pool of nworkers threads with room for queue_cap queued jobs
 * and store it in *ret.  Returns 0, WITCH_EINVAL (nworkers or queue_cap is
 * 0), WITCH_ENOMEM or WITCH_ESYSTEM; on failure every thread already
 * started has been joined and nothing is leaked.  Worker threads start
 * with all signals blocked.  Any thread.
 */
int
witch__pool_new(struct witch__pool **ret, unsigned nworkers,
    size_t queue_cap)
{
	struct witch__pool *p = NULL;
	pthread_condattr_t ca;
	unsigned ncv = 0;
	bool have_mtx = false, have_drain = false;
	int rc = WITCH_ENOMEM;

	*ret = NULL;
	if (nworkers == 0 || queue_cap == 0)
		return WITCH_EINVAL;
	if ((p = witch__calloc(1, sizeof(*p))) == NULL)
		goto fail;
	if ((p->workers = witch__calloc(nworkers, sizeof(*p->workers))) ==
	    NULL)
		goto fail;
	p->cap = queue_cap;
	p->nslots = nworkers;
	atomic_init(&p->stopping, false);
	atomic_init(&p->depth, 0);
	atomic_init(&p->asleep, NULL);
	atomic_init(&p->nrunning, 0);
	rc = WITCH_ESYSTEM;
	if (pthread_mutex_init(&p->mtx, NULL) != 0)
		goto fail;
	have_mtx = true;
	if (pthread_condattr_init(&ca) != 0)
		goto fail;
	if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&p->drain_cv, &ca) != 0) {
		pthread_condattr_destroy(&ca);
		goto fail;
	}
	pthread_condattr_destroy(&ca);
	have_drain = true;
	for (; ncv < nworkers; ncv++) {
		p->workers[ncv].pool = p;
		atomic_init(&p->workers[ncv].blk, false);
		atomic_init(&p->workers[ncv].nbatch, 0);
		atomic_init(&p->workers[ncv].busy, false);
		if (sem_init(&p->workers[ncv].sem, 0, 0) != 0)
			goto fail;
	}
	if ((rc = start_workers(p, nworkers)) != 0) {
		pthread_mutex_lock(&p->mtx);
		wake_all_locked(p);
		pthread_mutex_unlock(&p->mtx);
		join_workers(p, p->nworkers);
		goto fail;
	}
	*ret = p;
	return 0;
fail:
	if (p != NULL && p->workers != NULL)
		destroy(p, ncv, have_mtx, have_drain);
	else
		witch__free(p);
	return rc;
}

/*
 * Queue up to n jobs in order with one lock; returns how many were
 * accepted (a prefix of jobs; the caller keeps the rest: queue full or
 * pool stopping).  Wakes at most one sleeping worker per accepted job.
 * The pool owns the next/prev links of accepted jobs until they are
 * popped; `cancelled' is left as the caller set it.  Any thread.
 */
size_t
witch__pool_submit(struct witch__pool *p, struct witch__job **jobs,
    size_t n)
{
	struct worker *wake[WAKE_BATCH], *w;
	size_t i, k, room, waiting, nwake = 0;

	pthread_mutex_lock(&p->mtx);
	if (p->stopping) {
		pthread_mutex_unlock(&p->mtx);
		return 0;
	}
	/* Jobs in batches have not started: they count against cap. */
	waiting = atomic_load_explicit(&p->depth, memory_order_relaxed) +
	    batched(p);
	room = waiting < p->cap ? p->cap - waiting : 0;
	k = n < room ? n : room;
	for (i = 0; i < k; i++) {
		jobs[i]->next = NULL;
		jobs[i]->prev = p->tail;
		if (p->tail != NULL)
			p->tail->next = jobs[i];
		else
			p->head = jobs[i];
		p->tail = jobs[i];
	}
	atomic_fetch_add_explicit(&p->depth, k, memory_order_relaxed);
	/* Claim one sleeping worker per job; spinners find work alone. */
	for (i = 0; i < k && (w = p->idle) != NULL; i++) {
		p->idle = w->next_idle;
		w->woken = true;
		if (nwake < WAKE_BATCH)
			wake[nwake++] = w;
		else
			sem_post(&w->sem);
	}
	pthread_mutex_unlock(&p->mtx);
	/*
	 * Post outside the lock, so the woken worker does not block on the
	 * mutex at once.  Each claimed worker gets exactly one post
	 * (sleep_locked).
	 */
	for (i = 0; i < nwake; i++)
		sem_post(&wake[i]->sem);
	return k;
}

/*
 * Cancel every job for which match(job, arg) is true.  Queued ones are
 * removed, then dropped (WITCH_ECANCELLED) and released on this thread
 * after the lock is released; running ones get job->cancelled set
 * (release).  Returns the number of jobs matched.  match runs under the
 * pool lock.  Any thread but a worker's own match callback.
 */
size_t
witch__pool_cancel(struct witch__pool *p,
    bool (*match)(const struct witch__job *job, void *arg), void *arg)
{
	struct witch__job *job, *next, *list = NULL, **tailp = &list;
	struct witch__job *r;
	struct worker *w;
	size_t n = 0, taken = 0;
	unsigned i;

	pthread_mutex_lock(&p->mtx);
	for (job = p->head; job != NULL; job = next) {
		next = job->next;
		if (!match(job, arg))
			continue;
		unlink_job(p, job);
		*tailp = job;
		tailp = &job->next;
		n++;
	}
	for (i = 0; i < p->nworkers; i++) {
		w = &p->workers[i];
		taken += batch_remove(w, match, arg, &tailp);
		blk_lock(w);
		if ((r = w->running) != NULL && match(r, arg)) {
			atomic_store_explicit(&r->cancelled, true,
			    memory_order_release);
			n++;
		}
		blk_unlock(w);
	}
	n += taken;
	if (taken > 0)
		atomic_fetch_sub_explicit(&p->nrunning, taken,
		    memory_order_acq_rel);
	if (list != NULL)
		check_idle_locked(p);
	pthread_mutex_unlock(&p->mtx);
	drop_list(list, WITCH_ECANCELLED);
	return n;
}

/* Is job's deadline set and at or before *(uint64_t *)now? */
static bool
expired(const struct witch__job *job, void *now)
{
	return job->deadline_ns != 0 &&
	    job->deadline_ns <= *(const uint64_t *)now;
}

/*
 * Remove every queued job with a deadline (deadline_ns != 0) at or before
 * now_ns, then drop (WITCH_ETIMEOUT) and release each on this thread.
 * Returns how many.  Running jobs are not affected.  Any thread.
 */
size_t
witch__pool_expire(struct witch__pool *p, uint64_t now_ns)
{
	struct witch__job *job, *next, *list = NULL, **tailp = &list;
	size_t n = 0, taken = 0;
	unsigned i;

	pthread_mutex_lock(&p->mtx);
	for (job = p->head; job != NULL; job = next) {
		next = job->next;
		if (!expired(job, &now_ns))
			continue;
		unlink_job(p, job);
		*tailp = job;
		tailp = &job->next;
		n++;
	}
	for (i = 0; i < p->nworkers; i++)
		taken += batch_remove(&p->workers[i], expired, &now_ns,
		    &tailp);
	n += taken;
	if (taken > 0)
		atomic_fetch_sub_explicit(&p->nrunning, taken,
		    memory_order_acq_rel);
	if (list != NULL)
		check_idle_locked(p);
	pthread_mutex_unlock(&p->mtx);
	drop_list(list, WITCH_ETIMEOUT);
	return n;
}

/*
 * Jobs waiting to start, in the queue or in a worker's batch: a
 * snapshot.  Any thread.
 */
size_t
witch__pool_depth(struct witch__pool *p)
{
	return atomic_load_explicit(&p->depth, memory_order_relaxed) +
	    batched(p);
}

/*
 * Jobs whose run or drop a worker is inside now: a snapshot, at most
 * the number of workers.  Any thread.  Each worker's busy flag is set
 * and cleared by that worker around execute() (relaxed stores, read
 * relaxed here): a handler that asks sees its own worker busy (its own
 * store came before, on the same thread); other workers' flags may be a
 * moment old.  Not nrunning, which also holds the jobs taken in batches
 * and those released but not yet counted out (a worker's run of
 * deferred releases) until their flush: that count is for drain.
 */
size_t
witch__pool_running(struct witch__pool *p)
{
	size_t n = 0;
	unsigned i;

	for (i = 0; i < p->nslots; i++)
		n += atomic_load_explicit(&p->workers[i].busy,
		    memory_order_relaxed);
	return n;
}

/*
 * Wait until nothing is queued or running (every taken job's release()
 * has returned), or until deadline_ns (CLOCK_MONOTONIC) passes.  Returns
 * the number of jobs still queued or running (0: drained).  Jobs removed
 * by a concurrent cancel/expire/stop count as gone once removed, even if
 * that thread is still dropping them.  Any thread but a worker.
 */
size_t
witch__pool_drain(struct witch__pool *p, uint64_t deadline_ns)
{
	struct timespec ts;
	size_t left;

	ts.tv_sec = (time_t)(deadline_ns / 1000000000u);
	ts.tv_nsec = (long)(deadline_ns % 1000000000u);
	pthread_mutex_lock(&p->mtx);
	p->ndrainers++;
	while ((left = pending_locked(p)) != 0)
		if (pthread_cond_timedwait(&p->drain_cv, &p->mtx, &ts) ==
		    ETIMEDOUT) {
			left = pending_locked(p);
			break;
		}
	p->ndrainers--;
	pthread_mutex_unlock(&p->mtx);
	return left;
}

/*
 * Stop the pool: refuse new jobs, remove every queued job, set cancelled
 * on the running ones, wake all workers, drop (WITCH_ESHUTTING_DOWN) and
 * release the removed jobs on this thread, then join the workers (which
 * waits for running jobs to return).  Idempotent; if two threads call it
 * at once, only the first joins.  Not from a worker thread.
 */
void
witch__pool_stop(struct witch__pool *p)
{
	struct witch__job *list, *job, **tailp;
	struct worker *w;
	size_t taken = 0;
	unsigned i;
	bool join;

	pthread_mutex_lock(&p->mtx);
	join = !p->joined;
	p->joined = true;
	wake_all_locked(p);	/* stopping before cancelled: execute() */
	list = p->head;
	p->head = p->tail = NULL;
	atomic_store_explicit(&p->depth, 0, memory_order_relaxed);
	for (tailp = &list; *tailp != NULL; tailp = &(*tailp)->next)
		;
	for (i = 0; i < p->nworkers; i++) {
		w = &p->workers[i];
		blk_lock(w);
		if ((job = w->running) != NULL)
			atomic_store_explicit(&job->cancelled, true,
			    memory_order_release);
		/* A batch's jobs were not started: dropped here too. */
		if (w->batch != NULL) {
			*tailp = w->batch;
			while (*tailp != NULL)
				tailp = &(*tailp)->next;
			taken += nbatch(w);
			w->batch = NULL;
			set_nbatch(w, 0);
		}
		blk_unlock(w);
	}
	if (taken > 0)
		atomic_fetch_sub_explicit(&p->nrunning, taken,
		    memory_order_acq_rel);
	check_idle_locked(p);
	pthread_mutex_unlock(&p->mtx);
	drop_list(list, WITCH_ESHUTTING_DOWN);
	if (join)
		join_workers(p, p->nworkers);
}

/*
 * Stop the pool if needed, then free it.  NULL is a no-op.  No other
 * thread may use p any more.  Not from a worker thread.
 */
void
witch__pool_free(struct witch__pool *p)
{
	if (p == NULL)
		return;
	witch__pool_stop(p);
	destroy(p, p->nworkers, true, true);
}
