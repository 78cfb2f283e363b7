// SPDX-License-Identifier: GPL-2.0-only
/*
 * /dev/thinp-control: the module's message interface (thinp_kmod.h lists
 * the messages). One write(2) is one message, run synchronously; its errno
 * is the write's. Messages are serialized by one mutex, which is also what
 * thinp_catalog_message() asks of its callers. The misc device's owner
 * reference keeps the module loaded while the device is open, so no message
 * can race with unload.
 */
#include <linux/fs.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/miscdevice.h>
#include <linux/mutex.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>

#include "thinp_kmod.h"

#define CONTROL_MSG_MAX 256

struct served {
	struct list_head link;
	struct thinp_volume *vol;
};

static DEFINE_MUTEX(control_lock);
static LIST_HEAD(served_list);
static thinp_pool *control_pool;
static thinp_catalog *control_cat;
static struct workqueue_struct *control_wq;

static struct served *find_served(u64 id)
{
	struct served *s;

	list_for_each_entry(s, &served_list, link)
		if (thinp_volume_id(s->vol) == id)
			return s;
	return NULL;
}

/*
 * How to serve thin @id: its size from @arg (bytes, k/m/g/t suffixes) or,
 * when NULL, from its catalog entry, which also says whether it is
 * read-only. A volume with an external origin is refused (-EOPNOTSUPP):
 * served without it, its unprovisioned blocks would read as zeroes.
 */
static int volume_opts(u64 id, const char *arg, thinp_thin_options *opts)
{
	thinp_catalog_entry *e;
	char *end;
	int r;

	if (arg) {
		opts->size = memparse(arg, &end);
		return *end || !opts->size ? -EINVAL : 0;
	}
	/* An entry (with its origin path) is too big for a kernel stack. */
	e = kmalloc(sizeof(*e), GFP_KERNEL);
	if (!e)
		return -ENOMEM;
	*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	r = thinp_catalog_get(control_cat, id, e);
	if (!r && (e->flags & (THINP_CATALOG_PARTIAL | THINP_CATALOG_ANCHOR)))
		r = -EPERM;
	if (!r && e->origin[0])
		r = -EOPNOTSUPP;
	if (!r && !e->size)
		r = -ENODATA;
	opts->size = e->size;
	if (e->flags & THINP_CATALOG_READ_ONLY)
		opts->flags |= THINP_THIN_RDONLY;
	kfree(e);
	return r;
}

static int open_volume(u64 id, const char *size_arg)
{
	thinp_thin_options opts = THINP_THIN_OPTIONS_INIT;
	thinp_pool_status st = THINP_POOL_STATUS_INIT;
	struct served *s;
	thinp_thin *thin;
	int r;

	if (find_served(id))
		return -EEXIST;
	r = volume_opts(id, size_arg, &opts);
	if (!r)
		r = thinp_pool_get_status(control_pool, &st);
	if (r)
		return r;
	s = kzalloc(sizeof(*s), GFP_KERNEL);
	if (!s)
		return -ENOMEM;
	r = thinp_thin_open(&thin, control_pool, id, &opts);
	if (r)
		goto fail;
	s->vol = thinp_volume_create(thin, control_wq, st.data_block_size,
				     opts.flags & THINP_THIN_RDONLY);
	if (IS_ERR(s->vol)) {
		r = PTR_ERR(s->vol);
		thinp_thin_close(thin);
		goto fail;
	}
	list_add_tail(&s->link, &served_list);
	return 0;
fail:
	kfree(s);
	return r;
}

static int close_volume(struct served *s)
{
	int r;

	list_del(&s->link);
	r = thinp_volume_destroy(s->vol);
	kfree(s);
	return r;
}

/* Split @buf (NUL-terminated, changed in place) into at most @max words. */
static int split_words(char *buf, char **argv, int max)
{
	int argc = 0;
	char *w;

	while ((w = strsep(&buf, " \t\n"))) {
		if (!*w)
			continue;
		if (argc == max)
			return -EINVAL;
		argv[argc++] = w;
	}
	return argc;
}

/* open and close are ours; everything else is the catalog's grammar. */
static int run_message(char *msg)
{
	char copy[CONTROL_MSG_MAX], *argv[3];
	struct served *s;
	int argc;
	u64 id;

	strscpy(copy, msg, sizeof(copy));
	argc = split_words(copy, argv, ARRAY_SIZE(argv));
	if (argc >= 2 && !strcmp(argv[0], "open")) {
		if (kstrtou64(argv[1], 10, &id))
			return -EINVAL;
		return open_volume(id, argc == 3 ? argv[2] : NULL);
	}
	if (argc == 2 && !strcmp(argv[0], "close")) {
		if (kstrtou64(argv[1], 10, &id))
			return -EINVAL;
		s = find_served(id);
		if (!s)
			return -ENODATA;
		if (thinp_volume_busy(s->vol))
			return -EBUSY;
		return close_volume(s);
	}
	return thinp_catalog_message(control_cat, control_pool, msg, 0);
}

static ssize_t control_write(struct file *file, const char __user *ubuf, size_t len,
			     loff_t *ppos)
{
	char msg[CONTROL_MSG_MAX];
	unsigned int noio;
	int r;

	if (len >= sizeof(msg))
		return -EINVAL;
	if (copy_from_user(msg, ubuf, len))
		return -EFAULT;
	msg[len] = '\0';
	mutex_lock(&control_lock);
	/* A commit here must not wait on writeback of a disk it serves. */
	noio = memalloc_noio_save();
	r = run_message(msg);
	memalloc_noio_restore(noio);
	mutex_unlock(&control_lock);
	if (r) {
		pr_warn("thinp: message \"%s\" failed: %d\n", strim(msg), r);
		return r;
	}
	return len;
}

static const struct file_operations control_fops = {
	.owner = THIS_MODULE,
	.write = control_write,
	.llseek = noop_llseek,
};

static struct miscdevice control_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "thinp-control",
	.fops = &control_fops,
	.mode = 0600,
};

int thinp_control_start(thinp_pool *pool, thinp_catalog *cat)
{
	int r;

	control_pool = pool;
	control_cat = cat;
	/* Requests of every disk; WQ_MEM_RECLAIM: they are on the writeback
	 * path, so the queue keeps a rescuer thread for low memory. */
	control_wq = alloc_workqueue("thinp", WQ_MEM_RECLAIM | WQ_UNBOUND, 0);
	if (!control_wq)
		return -ENOMEM;
	r = misc_register(&control_dev);
	if (r)
		destroy_workqueue(control_wq);
	return r;
}

int thinp_control_stop(void)
{
	struct served *s, *n;
	int r = 0, rr;

	misc_deregister(&control_dev);
	mutex_lock(&control_lock);
	list_for_each_entry_safe(s, n, &served_list, link) {
		rr = close_volume(s);
		if (!r)
			r = rr;
	}
	mutex_unlock(&control_lock);
	destroy_workqueue(control_wq);
	return r;
}
