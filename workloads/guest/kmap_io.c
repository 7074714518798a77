/*
 * kmap_io: file and pipe I/O whose kernel copies go through kmap_local.
 *
 * A user program cannot call kmap_local_page(); it can make the kernel do
 * it. Every page the kernel copies between the page cache or a pipe buffer
 * and user memory is mapped with kmap_local_page() (a real temporary
 * mapping on 32-bit HIGHMEM and, on x86-64, with the percpu kernel's
 * CONFIG_X86_KMAP_LOCAL_MAP: in the fixmap, or in the per-CPU root's own
 * slot; /proc/percpu_roots counts them as kmap.localMaps::*).
 * Each of --procs-per-cpu processes per CPU does, --iterations times, four
 * copies of --io-kib KiB:
 *   1. pread() from a page-cached file into its buffer,
 *   2. write() the buffer into a pipe, 3. read() it back,
 *   4. sendfile() (or splice()) file pages into the pipe and read() them.
 * Pipe transfers go in pieces of at most 32 KiB (below the pipe's size).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "common.h"

#define PIECE (32 * 1024)
#define COPIES_PER_ITER 4

static long procs_per_cpu = 2, iterations = 16, io_kib = 64, pinned = 1;
static const char *dir = "/tmp";

static struct opt opts[] = {
    {"procs-per-cpu", OPT_INT, &procs_per_cpu, NULL, 1, 64, "I/O processes per CPU"},
    {"iterations", OPT_INT, &iterations, NULL, 1, 1000000, "rounds of the four copies"},
    {"io-kib", OPT_INT, &io_kib, NULL, 4, 4096, "KiB per copy (whole pages)"},
    {"pinned", OPT_BOOL, &pinned, NULL, 0, 1, "pin process i to CPU i mod cpus"},
    {"dir", OPT_STR, NULL, &dir, 0, 0, "directory for the data file"},
    COMMON_OPTS,
};

struct shared {
    volatile long copies;
    volatile long bytes;
    volatile int pin_failures;
    volatile int splice_fallbacks;
};

/* File pages -> pipe without a user copy: sendfile, else splice. */
static ssize_t file_to_pipe(struct shared *sh, int fd, off_t *off, int pw, size_t len)
{
    ssize_t n = sendfile(pw, fd, off, len);
    if (n >= 0 || (errno != EINVAL && errno != ENOSYS))
        return n;
    __atomic_add_fetch(&sh->splice_fallbacks, 1, __ATOMIC_RELAXED);
    loff_t lo = *off;
    n = splice(fd, &lo, pw, NULL, len, 0);
    if (n > 0)
        *off = lo;
    return n;
}

static void io_proc(struct shared *sh, long p, int fd, size_t io, size_t file_size)
{
    if (pinned && pin_self(p % opt_cpus) < 0)
        __atomic_add_fetch(&sh->pin_failures, 1, __ATOMIC_RELAXED);
    char *buf = alloc_pages((long)(io / 4096));
    int pfd[2];
    xpipe(pfd);
    start_wait();
    for (long i = 0; i < iterations; i++) {
        off_t off = (off_t)(((size_t)(p + i) % (file_size / io)) * io);
        /* 1: page cache -> user */
        if (pread(fd, buf, io, off) != (ssize_t)io)
            die("pread");
        /* 2 + 3: user -> pipe -> user */
        for (size_t done = 0; done < io; done += PIECE) {
            size_t n = io - done < PIECE ? io - done : PIECE;
            write_full(pfd[1], buf + done, n);
            if (!read_full(pfd[0], buf + done, n))
                _exit(3);
        }
        /* 4: page cache -> pipe -> user */
        for (size_t done = 0; done < io;) {
            size_t n = io - done < PIECE ? io - done : PIECE;
            ssize_t got = file_to_pipe(sh, fd, &off, pfd[1], n);
            if (got <= 0)
                die("sendfile/splice");
            if (!read_full(pfd[0], buf + done, (size_t)got))
                _exit(3);
            done += (size_t)got;
        }
        __atomic_add_fetch(&sh->copies, COPIES_PER_ITER, __ATOMIC_RELAXED);
        __atomic_add_fetch(&sh->bytes, (long)(COPIES_PER_ITER * io), __ATOMIC_RELAXED);
    }
    _exit(0);
}

int main(int argc, char **argv)
{
    parse_opts("kmap_io", "File and pipe copies that the kernel does through kmap_local.", opts,
               argc, argv);
    size_t io = (size_t)io_kib * 1024;
    io = (io + 4095) / 4096 * 4096;
    size_t nchunks = (256 * 1024 + io - 1) / io;
    if (nchunks < 4)
        nchunks = 4;
    size_t file_size = nchunks * io;
    char path[4096];
    snprintf(path, sizeof(path), "%s/kmap_io.XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd >= 0) {
        unlink(path);
    } else {
        /* No writable directory (a bare initramfs): a shmem file works the same way. */
        fprintf(stderr, "kmap_io: cannot create a file in %s; using memfd_create\n", dir);
        fd = memfd_create("kmap_io", 0);
        if (fd < 0)
            die("kmap_io: memfd_create");
    }
    char *chunk = malloc(io);
    if (!chunk)
        die("malloc");
    for (size_t done = 0; done < file_size; done += io) {
        memset(chunk, (int)(done / io) + 'a', io);
        write_full(fd, chunk, io);
    }
    free(chunk);
    struct shared *sh = alloc_shared(sizeof(*sh));
    long nprocs = procs_per_cpu * opt_cpus;
    start_barrier_init();
    for (long p = 0; p < nprocs; p++) {
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0)
            io_proc(sh, p, fd, io, file_size);
    }
    start_release();
    roi_begin();
    uint64_t t0 = now_ns();
    int failed = wait_children();
    uint64_t t1 = now_ns();
    roi_end();
    close(fd);
    if (sh->pin_failures)
        fprintf(stderr, "kmap_io: warning: %d processes could not be pinned\n", sh->pin_failures);
    finish("kmap_io: procs=%ld cpus=%ld procs_per_cpu=%ld iterations=%ld io_kib=%zu pinned=%ld "
           "copies=%ld bytes=%ld splice_fallbacks=%d failed=%d pin_failures=%d "
           "ns_per_iteration=%.0f",
           nprocs, opt_cpus, procs_per_cpu, iterations, io / 1024, pinned, sh->copies, sh->bytes,
           sh->splice_fallbacks, failed, sh->pin_failures,
           (double)(t1 - t0) / (double)(nprocs * iterations));
    return failed ? 1 : 0;
}
