#include "dense_cl_shared_memory.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <time.h>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

uint32_t densecl_load_acquire(const uint32_t *word) { return __atomic_load_n(word, __ATOMIC_ACQUIRE); }

void densecl_store_release(uint32_t *word, uint32_t value) { __atomic_store_n(word, value, __ATOMIC_RELEASE); }

uint32_t densecl_fetch_add(uint32_t *word, uint32_t value) { return __atomic_fetch_add(word, value, __ATOMIC_SEQ_CST); }

int densecl_futex_wait(uint32_t *word, uint32_t expected, int64_t timeout_ns) {
    if (timeout_ns < 0) timeout_ns = 0;
    struct timespec span = {(time_t)(timeout_ns / 1000000000), (long)(timeout_ns % 1000000000)};
#if defined(__linux__)
    // Not FUTEX_PRIVATE_FLAG: the word lives in a mapping shared with other processes.
    long status = syscall(SYS_futex, word, FUTEX_WAIT, expected, &span, NULL, 0);
    if (status == 0) return 0;
    if (errno == EAGAIN) return 0;  // the word had already changed
    return errno;
#else
    if (__atomic_load_n(word, __ATOMIC_ACQUIRE) != expected) return 0;
    struct timespec nap = {0, 50000};
    if (timeout_ns < 50000) nap.tv_nsec = (long)timeout_ns;
    nanosleep(&nap, NULL);
    return timeout_ns <= 50000 ? ETIMEDOUT : 0;
#endif
}

void densecl_futex_wake_all(uint32_t *word) {
#if defined(__linux__)
    syscall(SYS_futex, word, FUTEX_WAKE, 0x7fffffff, NULL, NULL, 0);
#else
    (void)word;
#endif
}

int densecl_shm_open(const char *name, int create) {
    return shm_open(name, O_RDWR | (create ? (O_CREAT | O_EXCL) : 0), 0600);
}

int densecl_shm_unlink(const char *name) { return shm_unlink(name); }
