/*
 * Allocation failures injected into one library, for the out-of-memory
 * sweep (tests/reliability/oom.sh). Compiled only into the test builds
 * (libcustos_fp.a, with -DCS_FAILPOINTS, and the custos-failpoint and
 * custosd-failpoint binaries); the installed binaries have none of it.
 *
 * Where the LD_PRELOAD interposer tests/reliability/failmalloc.c fails the
 * Nth allocation of the whole process, these hooks count and fail only the
 * allocations of one library, made through the allocator that library lets
 * its user replace: OpenSSL's (CRYPTO_set_mem_functions, installed here) and
 * libuv's (uv_replace_allocator, installed by custosd, since lib/ has no
 * libuv). The counting lives here, once. The environment:
 *
 *   CUSTOS_OOM_LIB=uv|crypto   the library whose allocations are counted
 *   CUSTOS_OOM_AT=N            fail its Nth allocation (1-based); 0 or unset:
 *                              count only
 *   CUSTOS_OOM_MODE=once|persist  only the Nth (default), or the Nth and
 *                              every later one
 *   CUSTOS_OOM_REPORT=FILE     "hit N" is written to FILE when the Nth is
 *                              reached (so the sweep knows it was)
 *   CUSTOS_OOM_COUNT=FILE      the number counted, written at a normal exit
 *
 * The functions are defined (lib/failalloc.c) only in libcustos_fp.a: a
 * front end calls them only under #ifdef CS_FAILPOINTS. They keep the cs__
 * prefix because they are not part of the installed library. Call
 * cs__failalloc_init() on the main thread before any other thread starts
 * and before cs_lib_init(); the other two are thread-safe.
 */
#ifndef CUSTOS_FAILPOINT_H
#define CUSTOS_FAILPOINT_H

/*
 * Reads the environment and, with CUSTOS_OOM_LIB=crypto, installs OpenSSL's
 * hook. Call first thing in main(), before any use of OpenSSL (OpenSSL
 * refuses a new allocator after its first allocation). Returns 0, or -1
 * with a message on stderr when the hook could not be installed (the test
 * must not run believing it injects failures it does not).
 */
int cs__failalloc_init(void);
/* 1 if CUSTOS_OOM_LIB names `lib`: its allocator should be hooked. */
int cs__failalloc_wanted(const char *lib);
/* Counts one allocation of the hooked library; 1 if it is to fail. Thread-safe. */
int cs__failalloc_fail(void);

#endif
