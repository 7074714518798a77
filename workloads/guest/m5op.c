#define _GNU_SOURCE
#include "m5op.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <termios.h>
#include <unistd.h>

static volatile uint8_t *m5_base;
static int m5_warned;
static int m5_proven; /* one guarded op has returned: later reads cannot fault */
static sigjmp_buf m5_jmp;

static void m5op_warn(const char *dev, const char *why)
{
    if (!m5_warned)
        fprintf(stderr, "m5op: warning: cannot use %s (%s): m5 ops disabled, running on\n",
                dev, why);
    m5_warned = 1;
}

static const char *m5op_dev(void)
{
    const char *dev = getenv("PERCPU_M5OP_DEV");
    return (dev && *dev) ? dev : "/dev/mem";
}

int m5op_init(int enabled)
{
    if (!enabled || m5_base)
        return m5_base != NULL;
    const char *dev = m5op_dev();
    int fd = open(dev, O_RDWR | O_SYNC);
    if (fd < 0) {
        m5op_warn(dev, strerror(errno));
        return 0;
    }
    void *p = mmap(NULL, M5OP_MAP_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                   (off_t)M5OP_PHYS_BASE);
    int err = errno;
    close(fd);
    if (p == MAP_FAILED) {
        m5op_warn(dev, strerror(err));
        return 0;
    }
    m5_base = p;
    return 1;
}

int m5op_active(void)
{
    return m5_base != NULL;
}

static void m5op_fault(int sig)
{
    siglongjmp(m5_jmp, sig);
}

/* One 64-bit read of the op's slot with the op's arguments in rdi, rsi, rdx
 * (gem5's pseudo-instruction ABI); returns gem5's result (rax). A fault (the
 * mapping is not gem5's) disables the helper instead of killing the program. */
static uint64_t m5op_call3(unsigned op, uint64_t a0, uint64_t a1, uint64_t a2)
{
    uint64_t ret = 0;
    if (!m5_base)
        return 0;
    struct sigaction sa, old_bus, old_segv;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = m5op_fault;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &old_bus);
    sigaction(SIGSEGV, &sa, &old_segv);
    int sig = sigsetjmp(m5_jmp, 1);
    if (sig == 0) {
        volatile uint8_t *slot = m5_base + ((uintptr_t)op << 8);
#if defined(__x86_64__)
        __asm__ volatile("movq (%1), %0"
                         : "=a"(ret)
                         : "r"(slot), "D"(a0), "S"(a1), "d"(a2)
                         : "memory");
#else
        (void)a0, (void)a1, (void)a2;
        ret = *(volatile uint64_t *)slot;
#endif
    }
    sigaction(SIGBUS, &old_bus, NULL);
    sigaction(SIGSEGV, &old_segv, NULL);
    if (sig != 0) {
        m5op_warn(m5op_dev(), sig == SIGBUS ? "bus error on the op region"
                                            : "segfault on the op region");
        munmap((void *)m5_base, M5OP_MAP_SIZE);
        m5_base = NULL;
        return 0;
    }
    m5_proven = 1;
    return ret;
}

static void m5op_call(unsigned op)
{
    (void)m5op_call3(op, 0, 0, 0);
}

void m5op_reset_stats(void)
{
    m5op_call(M5OP_RESET_STATS);
}

void m5op_dump_stats(void)
{
    m5op_call(M5OP_DUMP_STATS);
}

void m5op_exit(void)
{
    /* gem5 ends the simulation at once: let the serial console send what was
     * written (the summary line) first, or the console log loses it. */
    fflush(stdout);
    fflush(stderr);
    if (m5_base) {
        tcdrain(STDOUT_FILENO);
        tcdrain(STDERR_FILENO);
    }
    m5op_call(M5OP_EXIT);
}

void m5op_checkpoint(void)
{
    m5op_call(M5OP_CHECKPOINT);
}

uint64_t m5op_read_file(void *buf, uint64_t len, uint64_t offset)
{
    return m5op_call3(M5OP_READ_FILE, (uint64_t)(uintptr_t)buf, len, offset);
}

uint64_t m5op_rpns(void)
{
#if defined(__x86_64__)
    if (m5_proven && m5_base) {
        uint64_t ret;
        volatile uint8_t *slot = m5_base + ((uintptr_t)M5OP_RPNS << 8);
        __asm__ volatile("movq (%1), %0" : "=a"(ret) : "r"(slot) : "memory");
        return ret;
    }
#endif
    return m5op_call3(M5OP_RPNS, 0, 0, 0);
}
