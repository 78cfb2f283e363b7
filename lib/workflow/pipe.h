/*
 * An in-process stream transport: a bounded buffer between a thread that
 * writes a stream (a thinp_stream_write_fn) and one that reads it (a
 * thinp_stream_read_fn). Either side closing wakes the other: the reader
 * then sees the end of the stream (or the writer's error), the writer
 * -EPIPE.
 */
#ifndef THINP_WORKFLOW_PIPE_H
#define THINP_WORKFLOW_PIPE_H

#include "os/os.h"

struct wf_pipe;

/* A pipe holding at most @capacity bytes. 0 or -ENOMEM. */
int wf_pipe_new(struct wf_pipe **out, size_t capacity);
void wf_pipe_free(struct wf_pipe *p);

/* thinp_stream_write_fn: blocks while full; -EPIPE once the reader closed. */
int wf_pipe_write(const void *buf, size_t len, void *pipe);
/* thinp_stream_read_fn: blocks while empty; *got 0 at the end, or the
 * writer's error if it closed with one. */
int wf_pipe_read(void *buf, size_t len, size_t *got, void *pipe);

/* The writer is done: @error 0 (the stream ended) or the writer's error. */
void wf_pipe_close_write(struct wf_pipe *p, int error);
/* The reader reads no more. */
void wf_pipe_close_read(struct wf_pipe *p);

#endif
