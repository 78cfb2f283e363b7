/*
 * The workflows' side of a job (include/libthinp/job.h): what a workflow
 * calls to report progress and to honour pause, cancel and the rate limit.
 * Every function accepts a NULL job (a workflow run without a handle): it
 * then does nothing and never fails.
 */
#ifndef THINP_WORKFLOW_JOB_H
#define THINP_WORKFLOW_JOB_H

#include "os/os.h"
#include <libthinp/job.h>

/* Start a run: THINP_JOB_RUNNING (or PAUSED if a pause is pending), progress
 * zeroed. -EBUSY if a run is in progress on this job. */
int job_begin(thinp_job *job, uint32_t phase);

/* End the run with its return value: THINP_JOB_DONE, pending pause and
 * cancel requests consumed. Returns rc, so `return job_end(job, r);`. */
int job_end(thinp_job *job, int rc);

/* Progress facts; each is seen by the next thinp_job_get_progress. */
void job_set_phase(thinp_job *job, uint32_t phase);
void job_add_total(thinp_job *job, uint64_t bytes);
void job_set_round(thinp_job *job, uint64_t round);
void job_set_replication(thinp_job *job, uint64_t lag_ns, uint64_t in_flight);

/*
 * job_checkpoint - the workflow is at a consistent point, having moved
 * @bytes more since the last call: count them, sleep as the rate limit
 * requires, wait while paused, and return -ECANCELED if a cancel was
 * requested (the workflow then stops and returns it), else 0.
 */
int job_checkpoint(thinp_job *job, uint64_t bytes);

/*
 * job_sleep - wait @ns (an interval between replication cycles) as a
 * consistent point: a pause extends the wait, a cancel ends it early with
 * -ECANCELED. 0 otherwise.
 */
int job_sleep(thinp_job *job, uint64_t ns);

#endif
