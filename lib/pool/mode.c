/*
 * What a failed metadata operation does to the pool (mode.h), decided in
 * one place from the error and the facts the metadata reported.
 *
 * The kinds of failure, and why each gets its row:
 *   an answer   -ENODATA, -EEXIST, -EINVAL, -EBUSY from a change that did not
 *               begin: "no", nothing changed, the pool stays as it is.
 *   no memory   a read fails alone (it changed nothing and may be retried:
 *               the kernel fails such a bio, not the pool). A change rolls
 *               back and goes read-only, as the kernel's
 *               metadata_operation_failed does: even one that changed nothing
 *               may be a step of a larger operation (a provisioning write's
 *               allocation is already in the transaction when its insert
 *               fails), so only the rollback leaves a consistent transaction.
 *               No NEEDS_CHECK: the device is intact.
 *   no metadata space   -ENOSPC from a change: the transaction cannot be
 *               committed; roll back, READ_ONLY until the metadata grows.
 *               Copy-on-write never touched the committed state: no
 *               NEEDS_CHECK.
 *   read-only   -EROFS: the metadata refuses changes (a read-only device):
 *               the pool follows it into READ_ONLY.
 *   I/O or corruption   anything else: the metadata can no longer be
 *               trusted; FAIL. A change also sets NEEDS_CHECK (as the kernel
 *               does when a metadata operation fails); a read does not, since
 *               it runs under the shared lock and writes nothing.
 * A damaged transaction turns an answer or a read-only refusal into the
 * I/O row: something went wrong after the change began.
 * Modes only go up (RW < OUT_OF_DATA_SPACE < READ_ONLY < FAIL); FAIL stays.
 */
#include "os/os.h"

#include <libthinp/pool.h>
#include "pool/mode.h"
#include "util/compiler.h"

enum kind { K_ANSWER, K_NOMEM, K_NO_META_SPACE, K_READ_ONLY, K_IO };

static enum kind kind_of(const struct pool_mode_in *in)
{
	switch (in->err) {
	case -ENODATA:
	case -EEXIST:
	case -EINVAL:
	case -EBUSY:
		return in->damaged ? K_IO : K_ANSWER;
	case -ENOMEM:
		return K_NOMEM;
	case -ENOSPC:
		return in->change ? K_NO_META_SPACE : K_IO;
	case -EROFS:
		return in->damaged ? K_IO : K_READ_ONLY;
	default:
		return K_IO;
	}
}

void pool_mode_decide(const struct pool_mode_in *in, struct pool_mode_out *out)
{
	uint32_t to = in->mode;

	*out = (struct pool_mode_out){ .err = in->err };
	switch (kind_of(in)) {
	case K_ANSWER:
		break;
	case K_NOMEM:
		out->why = "out of memory, the request failed alone";
		if (!in->change)
			break;
		to = THINP_POOL_MODE_READ_ONLY;
		out->rollback = true;
		out->why = "out of memory, rolled back, pool is read-only";
		break;
	case K_NO_META_SPACE:
		to = THINP_POOL_MODE_READ_ONLY;
		out->rollback = true;
		out->meta_space_ro = true;
		out->why = "out of metadata space, pool is read-only";
		break;
	case K_READ_ONLY:
		to = THINP_POOL_MODE_READ_ONLY;
		out->why = "the metadata is read-only";
		break;
	case K_IO:
		to = THINP_POOL_MODE_FAIL;
		out->needs_check = in->change;
		out->why = "failed, pool is in fail mode";
		break;
	}
	/* Already failed: nothing to roll back for (no reads are served). */
	if (in->mode == THINP_POOL_MODE_FAIL)
		out->rollback = out->meta_space_ro = false;
	out->mode = THINP_MAX(in->mode, to);
}
