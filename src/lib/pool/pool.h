/*
 * pool/pool.h: fixed worker pool with a bounded queue.
 *
 * N threads take jobs from one FIFO guarded by a mutex.  Submission is
 * batched (the reactor submits everything it parsed in one loop iteration
 * with one lock and at most one wakeup per idle worker needed).  The queue
 * is bounded: a full queue refuses jobs at once (the caller answers
 * "overloaded").  Workers spin briefly before sleeping, so a busy server
 * pays no futex wakeup per request.  See doc/internals/pool.md.
 */
#ifndef WITCH__POOL_POOL_H
#define WITCH__POOL_POOL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"

struct witch__pool;
struct witch__job;

struct witch__job_ops {
	/* Run the job on a worker thread (deliver its reply). */
	void	(*run)(struct witch__job *job);
	/*
	 * The job will not run: reason is WITCH_ETIMEOUT (deadline passed
	 * while queued), WITCH_ECANCELLED (cancelled while queued) or
	 * WITCH_ESHUTTING_DOWN (pool stopped).  Called on whichever thread
	 * made that decision, never with the pool lock held.
	 */
	void	(*drop)(struct witch__job *job, int reason);
	/*
	 * Free the job, after run or drop returned.  Each job gets exactly
	 * one of release and release_defer (below).
	 */
	void	(*release)(struct witch__job *job);
	/*
	 * Optional (NULL: none).  Called on the worker, after run or drop
	 * of this job returned and before its release, when the worker
	 * found the queue empty: the moment to publish what the worker's
	 * jobs left pending (the reactor's jobs batch their replies until
	 * then).  Never with the pool lock held.
	 */
	void	(*idle)(struct witch__job *job);
	/*
	 * Optional (release_defer NULL: release).  A worker releases the
	 * jobs it ran or dropped with release_defer, which may leave part
	 * of the work (a reference to drop, a block to give back) on this
	 * thread, and calls release_flush (if not NULL) on the same thread
	 * to finish it: before a release that would make the run longer
	 * than RELEASE_RUN, before it releases a job of other ops, always
	 * before those jobs are counted out of the pool (so a drain that
	 * returns has seen every flush), and at the end of a batch, before
	 * the worker runs its next batch, spins or sleeps.  So deferred
	 * work may wait behind the later handlers of the same batch.  Jobs
	 * dropped on other threads (cancel, expiry, stop) get release.
	 */
	void	(*release_defer)(struct witch__job *job);
	void	(*release_flush)(void);
};

/*
 * On a worker thread, while it runs a job: when the worker last came
 * back from having no work (the end of its spin, or its wakeup),
 * CLOCK_MONOTONIC ns.  A job that times its own work with a clock read
 * after it (the reactor's reply batching, reactor/job.c) knows from this
 * that it did not start before this moment: the time the worker spent
 * idle or waking is not the job's.  Read on the clock the pool reads
 * anyway at those moments: no read per job.  0 on other threads.
 */
extern _Thread_local uint64_t witch__pool_resumed_ns
    __attribute__((tls_model("initial-exec")));

/* Embed this in your job structure; the pool owns the links while queued. */
struct witch__job {
	const struct witch__job_ops	*ops;
	struct witch__job		*next;	/* pool-private */
	struct witch__job		*prev;	/* pool-private */
	uint64_t			 deadline_ns;	/* CLOCK_MONOTONIC; 0: none */
	atomic_bool			 cancelled;
};

/*
 * Create and start a pool of nworkers (>= 1) threads with room for
 * queue_cap (>= 1) waiting jobs.  Returns 0, WITCH_EINVAL (a zero
 * argument), WITCH_ENOMEM or WITCH_ESYSTEM
 * (threads already started are joined again on failure).
 */
int witch__pool_new(struct witch__pool **ret, unsigned nworkers,
    size_t queue_cap);

/*
 * Tell p's idle workers whether the thread that submits their work is
 * blocked: *asleep true means it is (or is about to be) asleep, so a
 * spinning worker takes no CPU from it and may spin its full adaptive
 * time; false means it is busy, and a worker spins at most a few
 * microseconds more (pool.md, "Spinning").  NULL: no hint, spins stay
 * short.  *asleep must outlive the pool.  Any thread.
 */
void witch__pool_spin_hint(struct witch__pool *p, const atomic_bool *asleep);

/*
 * Queue up to n jobs, in order, with one lock.  Returns how many were
 * accepted (a prefix of jobs); the caller keeps the rest (queue full:
 * queue_cap jobs waiting to start, or pool stopping).  Any thread.
 */
size_t witch__pool_submit(struct witch__pool *p, struct witch__job **jobs,
    size_t n);

/*
 * Cancel every job for which match(job, arg) is true: queued ones (in
 * the queue or waiting in a worker's batch) are removed and dropped with
 * WITCH_ECANCELLED (after the lock is released, on the calling thread,
 * before this returns); running ones get job->cancelled set.  Returns
 * the number of jobs matched.  match runs with the pool lock held: it must
 * be quick and must not call into the pool.  Any thread.
 */
size_t witch__pool_cancel(struct witch__pool *p,
    bool (*match)(const struct witch__job *job, void *arg), void *arg);

/*
 * Drop (WITCH_ETIMEOUT) every queued job (in the queue or a worker's
 * batch) whose deadline is <= now_ns, on the calling thread.
 */
size_t witch__pool_expire(struct witch__pool *p, uint64_t now_ns);

/*
 * Jobs waiting to start (queued, or taken by a worker in a batch behind
 * the job it runs).  Any thread; a snapshot.
 */
size_t witch__pool_depth(struct witch__pool *p);
/*
 * Jobs whose run or drop a worker is inside now: at most the number of
 * workers; from a handler, its own job included.  A job a worker has
 * popped but not yet started (while it finishes the previous one's
 * release) is in neither this nor witch__pool_depth.  Any thread; a
 * snapshot.
 */
size_t witch__pool_running(struct witch__pool *p);

/*
 * Wait until nothing is queued or running, or until deadline_ns
 * (CLOCK_MONOTONIC).  Returns the number of jobs still queued or running.
 */
size_t witch__pool_drain(struct witch__pool *p, uint64_t deadline_ns);

/*
 * Stop: refuse new jobs, drop every queued job with WITCH_ESHUTTING_DOWN,
 * set cancelled on running jobs, and join the workers (waits for running
 * jobs to return).  Idempotent.  Not from a worker.
 */
void witch__pool_stop(struct witch__pool *p);
/* Stop if needed, then free; NULL is a no-op. */
void witch__pool_free(struct witch__pool *p);

#endif
