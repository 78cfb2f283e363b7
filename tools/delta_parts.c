/*
 * delta_parts_run(): the parts' iterators on threads, their runs queued in
 * chunks and handed on by the calling thread in virtual order.
 *
 * The calling thread reads the first part itself and hands its runs on as
 * they come, then drains the other parts' queues in turn. Threads and the
 * handles they read through cost more than a small delta takes (a handle's
 * open alone is a few milliseconds; a 1 M-block pool with 0.1 % changed
 * took 10 ms with one thread and 14 with two), so the other parts may
 * start, each on its thread with its own handle and iterator, only once the
 * calling thread has been reading for plan->start_after_ms; a delta done
 * sooner reads every part on the calling thread, one after the other.
 *
 * A part's thread stops reading when its queue is full
 * (DELTA_PARTS_QUEUE_BYTES), so memory stays bounded whatever the delta's
 * size, at the price of parallelism when a later part is far ahead. An
 * error or a stop from the callback sets `stop`; the threads see it at
 * their next chunk and end.
 *
 * Seams. Each part's iterator clips runs at its part's edges, so a run that
 * crosses a seam arrives as two pieces. The last run handed on is held back
 * one step: when the next part's first run continues it (same kind,
 * adjacent virtually and on each data side it has) the two are joined, and
 * the output is what one iterator over the whole range gives.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "delta_parts.h"

#define BATCH 256
#define MAX_PARTS 16
#define CHUNK_RUNS BATCH

struct chunk {
	struct chunk *next;
	size_t n;
	thinp_delta_run runs[CHUNK_RUNS];
};

struct shared {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* a chunk queued or taken, a part done, stop set */
	bool stop;
	size_t max_queued; /* chunks per part */
};

struct part {
	thinp_delta_options o; /* its range */
	thinp_delta *d;        /* NULL until the part starts */
	thinp_meta *own;       /* its handle from open_more, or NULL */
	struct shared *sh;
	pthread_t th;
	bool threaded; /* read by its own thread (else by the caller's, in turn) */
	/* Under sh->lock when threaded: */
	struct chunk *head, *tail;
	size_t queued;
	bool done;
	int err;
};

/* The runs handed on so far, the last one held back (see the top). */
struct join {
	delta_parts_fn fn;
	void *ctx;
	bool holding;
	thinp_delta_run held;
};

/* ---- a part's thread ------------------------------------------------------- */

/* Queue c, waiting while the queue is full; false if stopped meanwhile. */
static bool enqueue(struct part *p, struct chunk *c)
{
	struct shared *sh = p->sh;
	bool ok;

	pthread_mutex_lock(&sh->lock);
	while (p->queued >= sh->max_queued && !sh->stop)
		pthread_cond_wait(&sh->cond, &sh->lock);
	ok = !sh->stop;
	if (ok) {
		c->next = NULL;
		if (p->tail)
			p->tail->next = c;
		else
			p->head = c;
		p->tail = c;
		p->queued++;
		pthread_cond_broadcast(&sh->cond);
	}
	pthread_mutex_unlock(&sh->lock);
	return ok;
}

static void *part_main(void *arg)
{
	struct part *p = arg;
	struct chunk *c;
	int e = 0;

	for (;;) {
		if (!(c = malloc(sizeof(*c)))) {
			e = -ENOMEM;
			break;
		}
		e = thinp_delta_next(p->d, c->runs, CHUNK_RUNS, &c->n);
		if (e || !c->n || !enqueue(p, c)) {
			free(c);
			break;
		}
	}
	pthread_mutex_lock(&p->sh->lock);
	p->done = true;
	p->err = e;
	pthread_cond_broadcast(&p->sh->cond);
	pthread_mutex_unlock(&p->sh->lock);
	return NULL;
}

/* ---- handing on, in order -------------------------------------------------- */

/* Does b continue a: same kind, and adjacent virtually and on each side a
 * kind has data? */
static bool continues(const thinp_delta_run *a, const thinp_delta_run *b)
{
	if (a->kind != b->kind || a->virt_begin + a->length != b->virt_begin)
		return false;
	if (a->kind != THINP_DELTA_RIGHT_ONLY && a->left_data + a->length != b->left_data)
		return false;
	return a->kind == THINP_DELTA_LEFT_ONLY || a->right_data + a->length == b->right_data;
}

/* Hand on n runs of one part; first: they start the part. */
static int hand_on(struct join *j, const thinp_delta_run *runs, size_t n, bool first)
{
	for (size_t i = 0; i < n; i++) {
		int r;

		if (j->holding && i == 0 && first && continues(&j->held, &runs[0])) {
			j->held.length += runs[0].length;
			continue;
		}
		if (j->holding && (r = j->fn(&j->held, runs[i].virt_begin, j->ctx)))
			return r;
		j->held = runs[i];
		j->holding = true;
	}
	return 0;
}

/* The parts of one delta, and how far handing on has got. */
struct parts {
	const struct delta_parts_source *src;
	uint64_t left, right;
	struct shared sh;
	struct part p[MAX_PARTS];
	unsigned n;
	struct join j;
	struct timespec t0;
	unsigned start_after_ms;
	bool started; /* the parts after the calling thread's have threads */
};

static double ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static int open_iterator(struct parts *ps, struct part *p, thinp_meta *meta)
{
	return thinp_meta_delta_open(&p->d, meta, ps->left, ps->right, &p->o);
}

/* Part p on a thread of its own, through a handle of its own if there is
 * one; if its iterator cannot open, the part is done with that error; if
 * its thread cannot start, the calling thread reads it in its turn. */
static void start_part(struct parts *ps, struct part *p)
{
	const struct delta_parts_source *src = ps->src;
	int r;

	p->own = src->open_more ? src->open_more(src->ctx) : NULL;
	r = open_iterator(ps, p, p->own ? p->own : src->meta);
	if (r) {
		p->done = true;
		p->err = r;
		return;
	}
	p->threaded = pthread_create(&p->th, NULL, part_main, p) == 0;
}

/* Once the delta has run for start_after_ms, start every part after part i. */
static void maybe_start(struct parts *ps, unsigned i)
{
	if (ps->started || i + 1 >= ps->n ||
	    (ps->start_after_ms && ms_since(&ps->t0) < ps->start_after_ms))
		return;
	ps->started = true;
	for (unsigned k = i + 1; k < ps->n; k++)
		start_part(ps, &ps->p[k]);
}

/* Read part i on this thread, handing its runs on. */
static int read_here(struct parts *ps, unsigned i)
{
	struct part *p = &ps->p[i];
	thinp_delta_run runs[BATCH];
	bool first = true;
	size_t n;
	int r;

	if (p->done)
		return p->err;
	if (!p->d && (r = open_iterator(ps, p, ps->src->meta)))
		return r;
	while (!(r = thinp_delta_next(p->d, runs, BATCH, &n)) && n) {
		if ((r = hand_on(&ps->j, runs, n, first)))
			return r;
		first = false;
		maybe_start(ps, i);
	}
	return r;
}

/* Hand on the queue of part p as its thread fills it, until it is done. */
static int drain(struct join *j, struct part *p)
{
	struct shared *sh = p->sh;
	bool first = true;
	int r = 0;

	for (;;) {
		struct chunk *c;

		pthread_mutex_lock(&sh->lock);
		while (!p->head && !p->done)
			pthread_cond_wait(&sh->cond, &sh->lock);
		c = p->head;
		if (c) {
			p->head = c->next;
			if (!p->head)
				p->tail = NULL;
			p->queued--;
			pthread_cond_broadcast(&sh->cond);
		} else {
			r = p->err;
		}
		pthread_mutex_unlock(&sh->lock);
		if (!c)
			return r;
		r = hand_on(j, c->runs, c->n, first);
		free(c);
		if (r)
			return r;
		first = false;
	}
}

/* ---- setting up ------------------------------------------------------------- */

/* One past the higher of the two devices' highest mapped blocks, or 0 if
 * neither has any (or it cannot be told: the delta then reports why). */
static uint64_t mapped_end(thinp_meta *meta, uint64_t left, uint64_t right,
			   const thinp_delta_options *o)
{
	uint64_t end = 0, h;

	if (!thinp_meta_highest_mapped(meta, o->left_source, left, &h))
		end = h + 1;
	if (!thinp_meta_highest_mapped(meta, o->right_source, right, &h) && h + 1 > end)
		end = h + 1;
	return end;
}

/* How many parts [begin, end) is cut into: at most `parts`, each of at
 * least min_part blocks. */
static unsigned nr_parts(unsigned parts, uint64_t min_part, uint64_t begin, uint64_t end)
{
	uint64_t len = end > begin ? end - begin : 0;

	if (parts > MAX_PARTS)
		parts = MAX_PARTS;
	if (parts < 1)
		return 1;
	if (min_part < 1)
		min_part = 1;
	if (len / min_part < parts)
		parts = (unsigned)(len / min_part);
	return parts ? parts : 1;
}

static void stop_parts(struct parts *ps)
{
	pthread_mutex_lock(&ps->sh.lock);
	ps->sh.stop = true;
	pthread_cond_broadcast(&ps->sh.cond);
	pthread_mutex_unlock(&ps->sh.lock);
	for (unsigned i = 0; i < ps->n; i++) {
		struct part *p = &ps->p[i];

		if (p->threaded)
			pthread_join(p->th, NULL);
		while (p->head) {
			struct chunk *c = p->head;

			p->head = c->next;
			free(c);
		}
		thinp_delta_close(p->d);
		thinp_meta_close(p->own);
	}
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* Cut [o->begin, last) into n parts (the last one running to o->end). */
static void cut(struct parts *ps, const thinp_delta_options *o, uint64_t last, unsigned n)
{
	uint64_t len = last > o->begin ? last - o->begin : 0;

	ps->n = n;
	for (unsigned i = 0; i < n; i++) {
		struct part *p = &ps->p[i];

		p->sh = &ps->sh;
		p->o = *o;
		p->o.begin = o->begin + len / n * i + min_u64(i, len % n);
		if (i + 1 < n)
			p->o.end = o->begin + len / n * (i + 1) + min_u64(i + 1, len % n);
	}
}

int delta_parts_run(const struct delta_parts_source *src, uint64_t left, uint64_t right,
		    const thinp_delta_options *opts, const struct delta_parts_plan *plan,
		    delta_parts_fn fn, void *ctx, int *opened_out)
{
	thinp_delta_options o = THINP_DELTA_OPTIONS_INIT;
	struct parts *ps = calloc(1, sizeof(*ps));
	uint64_t last;
	int r;

	if (opened_out)
		*opened_out = 0;
	if (!ps)
		return -ENOMEM;
	if (opts)
		o = *opts;
	*ps = (struct parts){ .src = src, .left = left, .right = right,
			      .j = { .fn = fn, .ctx = ctx },
			      .start_after_ms = plan->start_after_ms };
	ps->sh.max_queued = DELTA_PARTS_QUEUE_BYTES / sizeof(struct chunk);
	pthread_mutex_init(&ps->sh.lock, NULL);
	pthread_cond_init(&ps->sh.cond, NULL);
	last = min_u64(o.end, mapped_end(src->meta, left, right, &o));
	cut(ps, &o, last, nr_parts(plan->parts, plan->min_part_blocks, o.begin, last));
	r = open_iterator(ps, &ps->p[0], src->meta);
	if (!r && opened_out)
		*opened_out = 1;
	clock_gettime(CLOCK_MONOTONIC, &ps->t0);
	if (!r)
		maybe_start(ps, 0);
	for (unsigned i = 0; i < ps->n && !r; i++)
		r = ps->p[i].threaded ? drain(&ps->j, &ps->p[i]) : read_here(ps, i);
	if (!r && ps->j.holding)
		r = fn(&ps->j.held, ps->j.held.virt_begin + ps->j.held.length, ctx);
	stop_parts(ps);
	pthread_cond_destroy(&ps->sh.cond);
	pthread_mutex_destroy(&ps->sh.lock);
	free(ps);
	return r;
}
