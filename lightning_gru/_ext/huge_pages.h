/* Transparent huge pages for the kernel's large buffers (private).
 *
 * A buffer above glibc's mmap threshold (32 MiB at most) is a fresh mapping at every call, and
 * every 4 KiB page of it faults on first touch: at the IMDb size, ~16,000 faults per training
 * step, 6-10% of its time on this (virtual) machine. Advised, the kernel backs the mapping with
 * 2 MiB pages where it can. Linux only; elsewhere a no-op.
 */
#ifndef LIGHTNING_GRU_HUGE_PAGES_H
#define LIGHTNING_GRU_HUGE_PAGES_H

#include <stddef.h>
#include <stdint.h>
#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

/* Advise the whole pages inside [address, address + nbytes); 1 if advised, 0 otherwise. */
static int lgru_advise_huge_pages(void *address, size_t nbytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = ((uintptr_t)address + page - 1) & ~(page - 1);
    uintptr_t end = ((uintptr_t)address + nbytes) & ~(page - 1);
    if (end <= start) {
        return 0;
    }
    return madvise((void *)start, end - start, MADV_HUGEPAGE) == 0;
#else
    (void)address;
    (void)nbytes;
    return 0;
#endif
}

#endif
