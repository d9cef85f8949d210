/*
 * Starting the library. A program that uses lib/ calls cs_lib_init() once,
 * first thing in main() (after the test builds' cs__failalloc_init(), see
 * custos/failpoint.h), before it starts any thread.
 */
#ifndef CUSTOS_INIT_H
#define CUSTOS_INIT_H

/*
 * Makes ready what lib/ needs before its first use: OpenSSL's default
 * library context. (OpenSSL 3.0 builds it on first use; if an allocation
 * fails there it goes on with a half-built context and crashes later on a
 * NULL lock, so it is built here, where a failure can be reported.)
 * Idempotent: a later call does nothing more and returns 0 again once one
 * succeeded. Call it on the main thread before other threads start.
 * Returns 0, or -ENOMEM if the library could not be started (the program
 * should stop: "out of memory").
 */
int cs_lib_init(void);

#endif
