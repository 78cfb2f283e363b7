/*
 * The receiving side of an external origin: which local file holds the
 * bytes a stream's unmapped blocks read as (docs/REPLICA.md, "External
 * origins"). A stream names its origin only by the guid and size the
 * sender's catalog keeps; the receiving pool knows a file as that origin
 * when its catalog already has an entry with that origin guid, or when the
 * caller says so (thinp_receive_options.origin, `thinp receive --origin`).
 */
#include "os/os.h"

#include "replica.h"

/* The origin path of the first entry with origin guid @guid, into @path. */
static int registered_origin(thinp_catalog *cat, const uint8_t guid[16], char *path)
{
	thinp_catalog_entry *e = thinp_os_alloc(sizeof(*e));
	int r = e ? -ENODATA : -ENOMEM;

	if (!e)
		return r;
	*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	for (uint64_t id = 0; r == -ENODATA && thinp_catalog_next(cat, id, e) == 0; id = e->id + 1)
		if (e->origin[0] && !memcmp(e->origin_guid, guid, 16)) {
			strcpy(path, e->origin);
			r = 0;
		}
	thinp_os_free(e);
	return r;
}

int replica_find_origin(thinp_catalog *cat, const thinp_stream_header *hdr,
			const struct replica_origin_claim *claim, char *path, thinp_io **io,
			char *errbuf, size_t errsize)
{
	char want[33], have[33];
	uint64_t size;
	int r;

	replica_guid_hex(hdr->origin_guid, want);
	if (claim->path && !replica_guid_is_zero(claim->guid) &&
	    memcmp(claim->guid, hdr->origin_guid, 16)) {
		replica_guid_hex(claim->guid, have);
		return replica_fail(errbuf, errsize, -ENODATA, "origin %s was given as origin "
				    "guid %s, the stream's origin is %s: nothing changed",
				    claim->path, have, want);
	}
	if (claim->path) {
		if (strlen(claim->path) >= THINP_CATALOG_ORIGIN_MAX)
			return replica_fail(errbuf, errsize, -EINVAL, "origin path too long");
		strcpy(path, claim->path);
	} else if ((r = registered_origin(cat, hdr->origin_guid, path)) == -ENODATA) {
		return replica_fail(errbuf, errsize, r, "no origin here with the stream's origin "
				    "guid %s (%" PRIu64 " bytes): name the local copy of the "
				    "sender's origin (thinp receive --origin FILE)", want,
				    hdr->origin_size);
	} else if (r) {
		return r;
	}
	r = thinp_io_open_file(io, path, THINP_IO_RDONLY);
	if (r)
		return replica_fail(errbuf, errsize, r, "origin %s: %s", path, thinp_strerror(r));
	r = thinp_io_size(*io, &size);
	if (!r && size != hdr->origin_size)
		r = replica_fail(errbuf, errsize, -ENODATA, "origin %s has %" PRIu64 " bytes, the "
				 "stream's origin %s has %" PRIu64 ": not the same origin", path, size,
				 want, hdr->origin_size);
	else if (r)
		replica_fail(errbuf, errsize, r, "origin %s: %s", path, thinp_strerror(r));
	if (r) {
		thinp_io_close(*io);
		*io = NULL;
	}
	return r;
}
