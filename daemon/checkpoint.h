/* Signing checkpoints from the loop (checkpoint.c): one at a time, on the thread pool. */
#ifndef CUSTOSD_CHECKPOINT_H
#define CUSTOSD_CHECKPOINT_H

#include <uv.h>

/* The checkpoint timer (uv_timer_cb; its data is the struct daemon). */
void on_checkpoint(uv_timer_t *t);

#endif
