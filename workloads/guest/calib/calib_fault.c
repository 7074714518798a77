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
 *   --bench lazy    the percpu kernel's lazy top-level fault, measured: one
 *                   page alone in each of --slots top-level (512 GiB) slots;
 *                   each sample makes CPU 0's root for this mm anew (while
 *                   we wait on CPU 1, seven other processes run on CPU 0 and
 *                   take all six of its ASIDs, so the switch back makes a
 *                   new root, with or without PCID), then
 *                   times a read of every slot (a TLB miss and a lazy fault
 *                   each), flushes the TLB locally (the root stays) and times
 *                   them again (a TLB miss each, from warmer caches). Needs 2
 *                   CPUs. The lazy fault's cost is lazy_touch with the roots
 *                   on less lazy_touch with percpu_roots=off (the same steps,
 *                   no fault): the second pass runs from warmer caches, so
 *                   lazy_touch - tlb_miss_touch overstates it.
 *
 *   calib fault_write|fault_read|fault_minor|zero_page NS ns   (per page)
 *                   Each sample then reads a page alone in each of up to 96
 *                   further slots whose tables were just freed (slot_touch): a
 *                   demand fault, and on the percpu kernel a lazy fault after
 *                   it; less the same on a stock kernel, one lazy fault,
 *                   whatever the ASIDs did.
 *
 *   calib lazy_touch|tlb_miss_touch|slot_touch NS ns   (per slot)
 */
#include "calib.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>


#define PAGE 4096L
#define MINOR_STRIDE (16 * PAGE) /* fault_around_bytes: 64 KiB */

static const char *bench = "write";
static long pages = 2048;
static long buffer_pages = 16384;
static long slots = 32;

static struct opt opts[] = {
    {"bench", OPT_STR, NULL, &bench, 0, 0, "write, read, minor, zero or lazy"},
    {"pages", OPT_INT, &pages, NULL, 1, 1 << 22, "pages touched per sample"},
    {"buffer-pages", OPT_INT, &buffer_pages, NULL, 1, 1 << 24,
     "--bench zero: pages cleared round robin (their size must exceed the LLC)"},
    {"slots", OPT_INT, &slots, NULL, 1, 150,
     "--bench lazy: top-level slots touched per sample, one page each"},
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

/* --bench lazy */
#define TOP_SLOT (1UL << 39) /* what one top-level entry maps: 512 GiB */
#define FIRST_SLOT 2         /* above a static binary's slot 0; mmap and the stack are high */
#define FLUSH_PAGES 64       /* unmapping more than 33 pages flushes the whole TLB */

static volatile char *slot_page(long i)
{
    return (volatile char *)((FIRST_SLOT + i) * TOP_SLOT);
}

static void lazy_setup(void)
{
    for (long i = 0; i < slots; i++) {
        void *p = mmap((void *)slot_page(i), PAGE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (p != (void *)slot_page(i))
            die("calib_fault: cannot map a page at top-level slot %ld", FIRST_SLOT + i);
        *slot_page(i) = 1; /* the demand fault fills mm->pgd's entry */
    }
}

/* A full flush of this mm (munmap of more pages than the single-page ceiling). */
static void full_flush(void)
{
    char *p = calib_map((size_t)FLUSH_PAGES * PAGE);
    touch_write(p, FLUSH_PAGES, 1);
    munmap(p, (size_t)FLUSH_PAGES * PAGE);
}

static double time_slots(void)
{
    uint64_t sum = 0, t0 = now_ns();
    for (long i = 0; i < slots; i++)
        sum += *slot_page(i);
    uint64_t t1 = now_ns();
    __asm__ volatile("" ::"r"(sum));
    return (double)(t1 - t0) / (double)slots;
}

/*
 * The first read of a page alone in a top-level slot whose tables were freed: a
 * demand fault that allocates them in mm->pgd and, on the percpu kernel, a lazy
 * fault that copies the new entry into the root (its old entry went with the
 * freed tables). Less the same on a kernel without roots, one lazy fault. The
 * slots lie above the --slots ones; munmap frees their tables again.
 */
#define NEW_SLOTS_MAX 96 /* FIRST_SLOT + 150 + 96 stays below the mmap area and stack */

static double time_new_slots(void)
{
    long n = slots < NEW_SLOTS_MAX ? slots : NEW_SLOTS_MAX;
    for (long i = 0; i < n; i++)
        if (mmap((void *)slot_page(slots + i), PAGE, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1,
                 0) != (void *)slot_page(slots + i))
            die("calib_fault: cannot map a page at top-level slot %ld", FIRST_SLOT + slots + i);
    uint64_t sum = 0, t0 = now_ns();
    for (long i = 0; i < n; i++)
        sum += *slot_page(slots + i);
    uint64_t t1 = now_ns();
    __asm__ volatile("" ::"r"(sum));
    for (long i = 0; i < n; i++)
        munmap((void *)slot_page(slots + i), PAGE);
    return (double)(t1 - t0) / (double)n;
}

/*
 * CPU 0 must make this mm's root anew when we come back to it. Without PCID
 * every switch does. With PCID a switch keeps the root of an ASID still
 * assigned to the mm (even one flushed while inactive: the root's entries do
 * not go stale with the TLB), so CPU 0 runs OTHER_MMS other processes while
 * we are away: they take all TLB_NR_DYN_ASIDS (6) of its ASIDs, and the switch
 * back assigns this mm a new one, with a new root. Each child is woken through
 * its own pipe and answers on a shared one once it runs on CPU 0.
 */
#define OTHER_MMS 7 /* TLB_NR_DYN_ASIDS + 1 */

static void lazy_samples(void)
{
    int wake[OTHER_MMS][2], ack[2];
    pid_t child[OTHER_MMS];
    if (pipe(ack) < 0)
        die("pipe");
    for (int k = 0; k < OTHER_MMS; k++) {
        if (pipe(wake[k]) < 0)
            die("pipe");
        child[k] = fork();
        if (child[k] < 0)
            die("fork");
        if (child[k] == 0) {
            close(wake[k][1]);
            calib_pin(0);
            char c;
            while (read(wake[k][0], &c, 1) == 1)
                if (write(ack[1], "y", 1) != 1)
                    _exit(1);
            _exit(0);
        }
        close(wake[k][0]);
    }
    lazy_setup();
    for (long s = 0; s < calib_samples; s++) {
        calib_pin(1);
        full_flush(); /* CPU 0's ASID for this mm, if it still had one, is stale */
        for (int k = 0; k < OTHER_MMS; k++) {
            char c;
            if (write(wake[k][1], "x", 1) != 1 || read(ack[0], &c, 1) != 1)
                die("calib_fault: a child pinned to CPU 0 did not answer");
        }
        calib_pin(0); /* the switch back makes the root anew */
        double lazy = time_slots();
        full_flush(); /* local: the root stays, the TLB and walk caches go */
        double miss = time_slots();
        calib_report("lazy_touch", lazy, "ns");
        calib_report("tlb_miss_touch", miss, "ns");
        calib_report("slot_touch", time_new_slots(), "ns");
    }
    for (int k = 0; k < OTHER_MMS; k++)
        close(wake[k][1]);
    for (int k = 0; k < OTHER_MMS; k++)
        waitpid(child[k], NULL, 0);
}

int main(int argc, char **argv)
{
    calib_samples = 5;
    parse_opts("calib_fault", "Page faults on first touch (write, read, minor) and page zeroing.",
               opts, argc, argv);
    if (strcmp(bench, "lazy") == 0) {
        if (online_cpus() < 2)
            die("calib_fault: --bench lazy needs 2 CPUs (%ld online)", online_cpus());
        lazy_samples();
        return 0;
    }
    calib_pin(0);
    char *buf = NULL;
    long next = 0;
    if (strcmp(bench, "zero") == 0) {
        /* Populated once; cleared round robin, so a page is cold again by the
         * time it comes round (buffer_pages x 4 KiB must exceed the LLC). */
        buf = calib_map((size_t)buffer_pages * PAGE);
        touch_write(buf, buffer_pages, 1);
    } else if (strcmp(bench, "write") && strcmp(bench, "read") && strcmp(bench, "minor")) {
        fprintf(stderr,
                "calib_fault: unknown --bench '%s': use write, read, minor, zero or lazy\n",
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
