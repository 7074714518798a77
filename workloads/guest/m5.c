/*
 * m5: the guest's gem5 helper, a small stand-in for gem5's util/m5 (which the
 * guest build cannot use: it is gem5's code and needs scons). The init script
 * of the percpu guest and the workloads' gem5.sh scripts call it:
 *   m5 exit         end the simulation (or hand control to the host script)
 *   m5 resetstats   reset gem5's statistics
 *   m5 dumpstats    append one stats.txt block
 *   m5 checkpoint   ask the host for a checkpoint
 *   m5 readfile     write the host's readfile (System.readfile) to stdout
 * Outside gem5 every op prints one warning and does nothing; readfile then
 * writes nothing and exits 1, so a script can tell that it got no workload.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "m5op.h"

/* Same chunk as gem5's util/m5 readfile. */
#define READ_CHUNK (256 * 1024)

static int do_readfile(void)
{
    static char buf[READ_CHUNK];
    /* gem5 copies into a guest virtual address through the page table:
     * touch every page first so that none is still unmapped. */
    memset(buf, 0, sizeof(buf));
    uint64_t offset = 0, got;
    while ((got = m5op_read_file(buf, sizeof(buf), offset)) > 0) {
        if (fwrite(buf, 1, got, stdout) != got) {
            perror("m5 readfile: write");
            return 2;
        }
        offset += got;
    }
    fflush(stdout);
    return offset > 0 ? 0 : 1;
}

static void usage(void)
{
    fprintf(stderr, "usage: m5 exit|resetstats|dumpstats|checkpoint|readfile\n");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        usage();
        return 2;
    }
    const char *cmd = argv[1];
    static const char *const known[] = {"exit", "resetstats", "dumpstats", "checkpoint",
                                        "readfile"};
    int ok = 0;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        ok |= strcmp(cmd, known[i]) == 0;
    if (!ok) {
        fprintf(stderr, "m5: unknown command '%s'\n", cmd);
        usage();
        return 2;
    }
    if (!m5op_init(1) && strcmp(cmd, "readfile") == 0)
        return 1;
    if (strcmp(cmd, "exit") == 0)
        m5op_exit();
    else if (strcmp(cmd, "resetstats") == 0)
        m5op_reset_stats();
    else if (strcmp(cmd, "dumpstats") == 0)
        m5op_dump_stats();
    else if (strcmp(cmd, "checkpoint") == 0)
        m5op_checkpoint();
    else
        return do_readfile();
    return 0;
}
