/*
 * calib_fault: page faults on first touch, and what they are made of.
 *
 *   --bench write   anonymous first write: fault, allocate and zero a page
 *   --bench read    anonymous first read: fault, map the shared zero page
 *                   (no allocation, no zeroing)
 *   --bench minor   first read of a shared-memory page that already exists:
 *                   a minor fault that installs an existing entry (the proxy
 *                   for the proposal's lazy top-level fault); one populated
 *                   page per 64 KiB so that fault-around maps only that one
 *   --bench zero    clearing a cache-cold 4 KiB page with rep stosb, as
 *                   clear_page_erms does (no fault): each sample clears the
 *                   next --pages pages of a --buffer-pages buffer, round robin
 *
 *   calib fault_write|fault_read|fault_minor|zero_page NS ns   (per page)
 */
#include "calib.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>


#define PAGE 4096L
#define MINOR_STRIDE (16 * PAGE) /* fault_around_bytes: 64 KiB */

static const char *bench = "write";
static long pages = 2048;
static long buffer_pages = 16384;

static struct opt opts[] = {
    {"bench", OPT_STR, NULL, &bench, 0, 0, "write, read, minor or zero"},
    {"pages", OPT_INT, &pages, NULL, 1, 1 << 22, "pages touched per sample"},
    {"buffer-pages", OPT_INT, &buffer_pages, NULL, 1, 1 << 24,
     "--bench zero: pages cleared round robin (their size must exceed the LLC)"},
    CALIB_OPTS,
    COMMON_OPTS,
};

static double touch(int write, long n)
{
    char *p = calib_map((size_t)n * PAGE);
    uint64_t sum = 0;
    uint64_t t0 = now_ns();
    if (write)
        touch_write(p, n, 1);
    else
        sum = touch_read(p, n);
    uint64_t t1 = now_ns();
    munmap(p, (size_t)n * PAGE);
    __asm__ volatile("" ::"r"(sum));
    return (double)(t1 - t0) / (double)n;
}

static double minor(long n)
{
    int fd = memfd_create("calib", 0);
    if (fd < 0)
        die("memfd_create");
    size_t len = (size_t)n * MINOR_STRIDE;
    if (ftruncate(fd, (off_t)len) < 0)
        die("ftruncate");
    char c = 1;
    for (long i = 0; i < n; i++)
        if (pwrite(fd, &c, 1, (off_t)(i * MINOR_STRIDE)) != 1)
            die("pwrite");
    const char *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        die("mmap memfd");
    uint64_t sum = 0;
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++)
        sum += ((const volatile char *)p)[i * MINOR_STRIDE];
    uint64_t t1 = now_ns();
    munmap((void *)p, len);
    close(fd);
    __asm__ volatile("" ::"r"(sum));
    return (double)(t1 - t0) / (double)n;
}

static double zero(long n, char *buf, long *next)
{
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        void *dst = buf + *next * PAGE;
        size_t cnt = PAGE;
        __asm__ volatile("rep stosb" : "+D"(dst), "+c"(cnt) : "a"(0) : "memory");
        *next = *next + 1 == buffer_pages ? 0 : *next + 1;
    }
    return (double)(now_ns() - t0) / (double)n;
}

int main(int argc, char **argv)
{
    calib_samples = 5;
    parse_opts("calib_fault", "Page faults on first touch (write, read, minor) and page zeroing.",
               opts, argc, argv);
    calib_pin(0);
    char *buf = NULL;
    long next = 0;
    if (strcmp(bench, "zero") == 0) {
        /* Populated once; cleared round robin, so a page is cold again by the
         * time it comes round (buffer_pages x 4 KiB must exceed the LLC). */
        buf = calib_map((size_t)buffer_pages * PAGE);
        touch_write(buf, buffer_pages, 1);
    } else if (strcmp(bench, "write") && strcmp(bench, "read") && strcmp(bench, "minor")) {
        fprintf(stderr, "calib_fault: unknown --bench '%s': use write, read, minor or zero\n",
                bench);
        return 2;
    }
    for (long s = 0; s < calib_samples; s++) {
        if (strcmp(bench, "write") == 0)
            calib_report("fault_write", touch(1, pages), "ns");
        else if (strcmp(bench, "read") == 0)
            calib_report("fault_read", touch(0, pages), "ns");
        else if (strcmp(bench, "minor") == 0)
            calib_report("fault_minor", minor(pages), "ns");
        else
            calib_report("zero_page", zero(pages, buf, &next), "ns");
    }
    return 0;
}
