/*
 * The set of volumes served: one file per thin device of the pool.
 *
 * The set is read from the pool and its volume table once at mount
 * (main.c); afterwards only the control
 * file's messages change it (create_thin, create_snap, delete), so the set
 * and the pool agree without asking the pool again. A volume's thin handle
 * is opened by the first open file on it and closed by the last, so that
 * `delete` of a volume nobody uses succeeds (the pool refuses to delete an
 * open volume) and one in use fails with EBUSY, as dm does.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "thinp_fuse.h"

static void volume_free(struct volume *v)
{
	if (!v)
		return;
	thinp_thin_close(v->thin);
	thinp_io_close(v->origin);
	free(v);
}

int volset_init(struct volset *s)
{
	memset(s, 0, sizeof(*s));
	return -pthread_mutex_init(&s->lock, NULL);
}

void volset_destroy(struct volset *s)
{
	for (size_t i = 0; i < s->n; i++)
		volume_free(s->v[i]);
	free(s->v);
	pthread_mutex_destroy(&s->lock);
}

/* Index of the first volume with id >= @id. Lock held. */
static size_t lower_bound(const struct volset *s, uint64_t id)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->v[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct volume *volset_find(struct volset *s, uint64_t id)
{
	struct volume *v = NULL;
	size_t i;

	pthread_mutex_lock(&s->lock);
	i = lower_bound(s, id);
	if (i < s->n && s->v[i]->id == id)
		v = s->v[i];
	pthread_mutex_unlock(&s->lock);
	return v;
}

static int grow(struct volset *s)
{
	size_t cap = s->cap ? 2 * s->cap : 16;
	struct volume **v;

	if (s->n < s->cap)
		return 0;
	v = realloc(s->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	s->v = v;
	s->cap = cap;
	return 0;
}

int volset_add(struct volset *s, const struct volume *tmpl)
{
	struct volume *v = malloc(sizeof(*v));
	size_t i;
	int r;

	if (!v)
		return -ENOMEM;
	*v = *tmpl;
	v->thin = NULL;
	v->opens = 0;
	pthread_mutex_lock(&s->lock);
	i = lower_bound(s, v->id);
	if (i < s->n && s->v[i]->id == v->id)
		r = -EEXIST;
	else
		r = grow(s);
	if (!r) {
		memmove(s->v + i + 1, s->v + i, (s->n - i) * sizeof(*s->v));
		s->v[i] = v;
		s->n++;
	}
	pthread_mutex_unlock(&s->lock);
	if (r)
		free(v); /* the origin stays the caller's */
	return r;
}

int volset_remove(struct volset *s, uint64_t id)
{
	struct volume *v = NULL;
	size_t i;
	int r = -ENODATA;

	pthread_mutex_lock(&s->lock);
	i = lower_bound(s, id);
	if (i < s->n && s->v[i]->id == id) {
		r = s->v[i]->opens ? -EBUSY : 0;
		if (!r) {
			v = s->v[i];
			memmove(s->v + i, s->v + i + 1, (s->n - i - 1) * sizeof(*s->v));
			s->n--;
		}
	}
	pthread_mutex_unlock(&s->lock);
	volume_free(v);
	return r;
}

int volset_ids(struct volset *s, uint64_t **out, size_t *n)
{
	int r = 0;

	pthread_mutex_lock(&s->lock);
	*n = s->n;
	*out = malloc((s->n ? s->n : 1) * sizeof(**out));
	if (!*out)
		r = -ENOMEM;
	for (size_t i = 0; !r && i < s->n; i++)
		(*out)[i] = s->v[i]->id;
	pthread_mutex_unlock(&s->lock);
	return r;
}

size_t volset_count(struct volset *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = s->n;
	pthread_mutex_unlock(&s->lock);
	return n;
}

int volume_get(struct tfs *fs, struct volume *v)
{
	thinp_thin_options o = THINP_THIN_OPTIONS_INIT;
	int r = 0;

	o.size = v->size;
	o.flags = v->rdonly ? THINP_THIN_RDONLY : 0;
	o.origin = v->origin;
	pthread_mutex_lock(&fs->vols.lock);
	if (!v->opens)
		r = thinp_thin_open(&v->thin, fs->pool, v->id, &o);
	if (!r)
		v->opens++;
	pthread_mutex_unlock(&fs->vols.lock);
	return r;
}

void volume_put(struct tfs *fs, struct volume *v)
{
	pthread_mutex_lock(&fs->vols.lock);
	if (--v->opens == 0) {
		thinp_thin_close(v->thin);
		v->thin = NULL;
	}
	pthread_mutex_unlock(&fs->vols.lock);
}

int pool_device_ids(struct tfs *fs, uint64_t **ids, size_t *n)
{
	uint64_t *v = NULL;
	size_t total = 0;
	int r;

	/* Ask for the count, then the ids; retry if a volume appeared between. */
	for (size_t cap = 0;; cap = total) {
		uint64_t *nv = cap ? realloc(v, cap * sizeof(*v)) : v;

		if (cap && !nv) {
			r = -ENOMEM;
			break;
		}
		v = nv;
		r = thinp_pool_list_thins(fs->pool, v, cap, &total);
		if (r || total <= cap)
			break;
	}
	if (r) {
		free(v);
		v = NULL;
		total = 0;
	}
	*ids = v;
	*n = total;
	return r;
}
