/*
 * The writer's record primitive, shared with the tests and the fuzz seeds so
 * they can build streams with records this library never writes (unknown
 * optional or required types) that are otherwise perfectly framed.
 */
#ifndef THINP_STREAM_WRITER_H
#define THINP_STREAM_WRITER_H

#include "os/os.h"

#include <libthinp/stream.h>

/*
 * Emit one record of `type` whose payload is fixed[fixed_len] followed by
 * data[data_len], numbered and counted like any other, leaving the next run
 * to start at next_block. Checks nothing about the payload: the public
 * functions do. Returns 0 or the write callback's error (then sticky).
 */
int stream_writer_emit(thinp_stream_writer *w, uint32_t type, const void *fixed,
		       size_t fixed_len, const void *data, size_t data_len,
		       uint64_t next_block);

#endif
