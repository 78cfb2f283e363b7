/*
 * libthinp jobs: the control handle of a long-running workflow (migration,
 * merge, hydration, replication).
 *
 * ABI tier: stable (version nodes LIBTHINP_1.N).
 *
 * A workflow runs in the thread that calls it (for example
 * thinp_migrate(..., job)); the library starts no thread of its own for it.
 * Other threads hold the same handle to read its progress, pause it, resume
 * it, cancel it or change its rate limit, at any time.
 *
 * A workflow looks at its job only at consistent points: between steps whose
 * effects are either committed or harmless to repeat. A pause or a cancel
 * therefore takes effect at the next such point, never in the middle of a
 * step. A cancelled workflow returns -ECANCELED and leaves a state from which
 * running it again finishes the work (each workflow's header says how).
 *
 * One job runs one workflow at a time; once that run ended (THINP_JOB_DONE)
 * the same handle may run another, and its progress starts again from zero.
 * A cancel requested while no run is in progress applies to the next run;
 * every request is consumed when the run it applied to ends.
 */
#ifndef LIBTHINP_JOB_H
#define LIBTHINP_JOB_H

#include <stddef.h>
#include <stdint.h>
#include <libthinp/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A job. Opaque. */
typedef struct thinp_job thinp_job;

/* thinp_job_progress.state */
#define THINP_JOB_IDLE 0    /* no run yet */
#define THINP_JOB_RUNNING 1 /* a workflow is running */
#define THINP_JOB_PAUSED 2  /* a workflow waits at a consistent point for thinp_job_resume */
#define THINP_JOB_DONE 3    /* the last run ended; .result is what it returned */

/*
 * What a job has done. Output struct: set struct_size to
 * sizeof(thinp_job_progress) before the call; the library sets it to what it
 * filled. Byte counts are of device data (virtual blocks times block size)
 * unless a workflow's header says otherwise.
 */
typedef struct thinp_job_progress {
	uint32_t struct_size;
	uint32_t state;       /* THINP_JOB_* */
	uint64_t done;        /* bytes done in this run; never decreases during it */
	uint64_t total;       /* bytes the run expects in all, as far as it knows now:
			       * it may grow (another incremental round) */
	uint64_t round;       /* rounds completed (migration, replication); else 0 */
	uint64_t rate_limit;  /* bytes per second, 0 when unlimited */
	uint64_t lag_ns;      /* replication: age of the newest acknowledged replica
			       * (the recovery point); else 0 */
	uint64_t in_flight;   /* replication: bytes sent and not yet acknowledged; else 0 */
	int32_t result;       /* THINP_JOB_DONE: the run's return (0 or -errno) */
	uint32_t phase;       /* THINP_JOB_PHASE_* */
	/* Fields added later go here. */
} thinp_job_progress;

/* thinp_job_progress.phase: what the run does now. */
#define THINP_JOB_PHASE_NONE 0
#define THINP_JOB_PHASE_COPY 1     /* copying data (a full or first round) */
#define THINP_JOB_PHASE_CATCH_UP 2 /* an incremental round */
#define THINP_JOB_PHASE_FINAL 3    /* the last round, the source quiesced */
#define THINP_JOB_PHASE_SWITCH 4   /* publishing the result (one commit) */
#define THINP_JOB_PHASE_CLEANUP 5  /* removing what the result made unneeded */
#define THINP_JOB_PHASE_WAIT 6     /* waiting for the next interval (replication) */

/* A progress callback: runs in the workflow's thread, with no library lock
 * held, when the state or phase changes and at most every 200 ms in between.
 * It must not free the job; it may call any other thinp_job_* function. */
typedef void (*thinp_job_progress_fn)(const thinp_job_progress *progress, void *ctx);

/*
 * thinp_job_new - a new job, THINP_JOB_IDLE, unlimited rate, no callback.
 * Errors: -EINVAL (out NULL), -ENOMEM. Since 1.0.
 */
THINP_API int thinp_job_new(thinp_job **out);

/*
 * thinp_job_free - free a job no workflow is running on (undefined
 * otherwise: wait for the workflow's return first). NULL is a no-op.
 * Since 1.0.
 */
THINP_API void thinp_job_free(thinp_job *job);

/*
 * thinp_job_pause - ask the running workflow to stop at its next consistent
 * point and wait there (THINP_JOB_PAUSED) until thinp_job_resume or
 * thinp_job_cancel. Pausing a paused job, or one with no run in progress
 * (the next run then starts paused), is allowed.
 * Errors: -EINVAL (job NULL). Thread safety: any thread. Since 1.0.
 */
THINP_API int thinp_job_pause(thinp_job *job);

/*
 * thinp_job_resume - undo thinp_job_pause: a paused workflow goes on.
 * Errors: -EINVAL (job NULL). Thread safety: any thread. Since 1.0.
 */
THINP_API int thinp_job_resume(thinp_job *job);

/*
 * thinp_job_cancel - ask the workflow to stop at its next consistent point
 * and return -ECANCELED (a paused one stops too). Allowed when no run is in
 * progress: the next run then stops at its first consistent point.
 * Errors: -EINVAL (job NULL). Thread safety: any thread. Since 1.0.
 */
THINP_API int thinp_job_cancel(thinp_job *job);

/*
 * thinp_job_set_rate_limit - limit the data the workflow moves to
 * @bytes_per_second on average (0: unlimited, the default). Takes effect at
 * the next consistent point; the workflow then sleeps as needed, and a pause
 * or a cancel still wakes it.
 * Errors: -EINVAL (job NULL). Thread safety: any thread. Since 1.0.
 */
THINP_API int thinp_job_set_rate_limit(thinp_job *job, uint64_t bytes_per_second);

/*
 * thinp_job_get_progress - a consistent copy of the job's progress.
 * Errors: -EINVAL (job or out NULL, out->struct_size too small).
 * Thread safety: any thread. Since 1.0.
 */
THINP_API int thinp_job_get_progress(const thinp_job *job, thinp_job_progress *out);

/*
 * thinp_job_set_progress_fn - call @fn(progress, @ctx) as the type above
 * says, in the thread of each later run; NULL to stop. Set it before the
 * run starts: a change during a run is seen at its next consistent point.
 * Errors: -EINVAL (job NULL). Since 1.0.
 */
THINP_API int thinp_job_set_progress_fn(thinp_job *job, thinp_job_progress_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif
#endif
