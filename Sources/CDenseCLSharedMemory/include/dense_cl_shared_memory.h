// Cross-process synchronisation on shared memory for the data plane's shared-memory transport: 32-bit atomics
// with acquire/release ordering, futex waits and wakes on a word of a MAP_SHARED mapping, and the POSIX
// shared-memory calls that Swift cannot reach directly (shm_open is variadic in some libcs).
#ifndef DENSE_CL_SHARED_MEMORY_H
#define DENSE_CL_SHARED_MEMORY_H

#include <stdint.h>

/// Loads `*word` with acquire ordering.
uint32_t densecl_load_acquire(const uint32_t *word);

/// Stores `value` to `*word` with release ordering.
void densecl_store_release(uint32_t *word, uint32_t value);

/// Adds `value` to `*word` atomically (sequentially consistent); returns the previous value.
uint32_t densecl_fetch_add(uint32_t *word, uint32_t value);

/// Sleeps while `*word == expected`, at most `timeout_ns` nanoseconds (Linux: FUTEX_WAIT on a shared
/// mapping, so a wake from another process ends it; elsewhere: a short sleep). Returns 0 when woken or when
/// the word already differed, ETIMEDOUT when the time passed, EINTR on a signal. Spurious returns are allowed:
/// callers re-check the word.
int densecl_futex_wait(uint32_t *word, uint32_t expected, int64_t timeout_ns);

/// Wakes every thread (in any process) sleeping in `densecl_futex_wait` on `word`.
void densecl_futex_wake_all(uint32_t *word);

/// `shm_open(name, O_RDWR | (create ? O_CREAT | O_EXCL : 0), 0600)`; returns the descriptor or -1 (errno set).
int densecl_shm_open(const char *name, int create);

/// `shm_unlink(name)`; returns 0 or -1 (errno set).
int densecl_shm_unlink(const char *name);

#endif
