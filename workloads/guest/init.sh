#!/bin/sh
# /init of the percpu guest (busybox sh, in the kernel's built-in initramfs).
# The protocol (docs/guest.md; the gem5 config relies on it exactly):
#   1. mount proc, sysfs, devtmpfs, tmpfs /tmp; PATH=/sbin:/bin
#   2. one line: percpu-guest: booted kernel=... cpus=... pcid=... invpcid=... pti=...
#   3. percpu.selftest=1 on the command line: the ring-0 PCID self-test
#   4. percpu.host=qemu: (percpu.smoke=1: each guest program, briefly;
#      percpu.stress=<seconds>: roots_stress for that long; on a kernel with
#      percpu.kselftests=1: the kernel selftests QEMU's -initrd brought, /selftests;
#      /proc/percpu_roots, its counters as "percpu-guest: roots <name> <value>"),
#      then "percpu-guest: qemu check done" and poweroff -f
#   5. otherwise (gem5): "percpu-guest: ready", m5 exit (checkpoint or CPU
#      switch), m5 readfile > /tmp/script, run it, report its status, m5 exit.
export PATH=/sbin:/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null  # DEVTMPFS_MOUNT may have done it
mount -t tmpfs tmpfs /tmp
exec </dev/console >/dev/console 2>&1

# Shell builtins where they do: under gem5 every fork+exec of busybox costs
# about a million instructions, so the booted line needs one process (grep).
read -r cmdline </proc/cmdline
has_arg() {
    case " $cmdline " in
        *" $1 "*) return 0 ;;
    esac
    return 1
}
# Online CPUs: /sys/devices/system/cpu/online is a list of ranges (0-3,5).
read -r online </sys/devices/system/cpu/online
cpus=0
saved_ifs=$IFS
IFS=,
for range in $online; do
    cpus=$((cpus + ${range#*-} - ${range%-*} + 1))
done
IFS=$saved_ifs
flags=" $(grep -m1 '^flags' /proc/cpuinfo) "
case "$flags" in *" pcid "*) pcid=yes ;; *) pcid=no ;; esac
case "$flags" in *" invpcid "*) invpcid=yes ;; *) invpcid=no ;; esac
# The pti flag: with pti=on on a CPU Linux thinks immune (gem5's Hygon vendor)
# the meltdown file still says Not affected while PTI is on.
case "$flags" in *" pti "*) ptiflag=yes ;; *) ptiflag=no ;; esac
read -r release </proc/sys/kernel/osrelease  # what uname -r prints
meltdown=unknown
read -r meltdown 2>/dev/null </sys/devices/system/cpu/vulnerabilities/meltdown
echo "percpu-guest: booted kernel=$release cpus=$cpus pcid=$pcid invpcid=$invpcid" \
    "pti=${meltdown// /_} ptiflag=$ptiflag"

if has_arg percpu.selftest=1; then
    # The module prints with printk; show its lines once, here, whatever the
    # console log level, by muting the console while it runs.
    read -r level _ </proc/sys/kernel/printk
    echo 1 >/proc/sys/kernel/printk
    insmod /lib/modules/pcid_selftest.ko || echo "percpu-selftest: FAIL: insmod failed"
    echo "$level" >/proc/sys/kernel/printk
    dmesg | grep '^percpu-selftest:'
fi

if has_arg percpu.host=qemu; then
    if has_arg percpu.smoke=1; then
        if [ -e /proc/percpu_roots ]; then
            # The run-time options (docs/kernel.md), as a gem5 run writes them
            # before its region of interest; the checker stays on here.
            if echo nocheck,time >/proc/percpu_roots && echo check >/proc/percpu_roots; then
                echo "percpu-guest: roots options written"
            fi
        fi
        # Each guest program briefly, with small arguments: proves the kernel
        # has what it needs (the m5 ops stay off without --roi); the calibration
        # programs too (percpu gem5 calibrate runs them).
        for run in \
            "ctxmix --procs-per-cpu 2 --rounds 20 --pages 4 --work-cycles 1000" \
            "pingpong --iterations 100 --pages 2" \
            "forkexec --forks 5 --pages 8" \
            "threads_munmap --threads 2 --iterations 20 --map-pages 4" \
            "kmap_io --procs-per-cpu 1 --iterations 2 --io-kib 64" \
            "server --workers 2 --requests 10 --pages 2 --work-cycles 1000" \
            "hotplug --holders 1 --maps 2 --cycles 1 --sleep-us 1000 --offline-us 1000" \
            "roots_stress --seconds 1 --procs-per-cpu 2 --slots 2 --pages 2" \
            "calib_clock --iters 100 --samples 1" \
            "calib_syscall --iters 10 --samples 1" \
            "calib_fault --bench write --pages 16 --samples 1" \
            "calib_sched --bench yield --iters 10 --samples 1" \
            "calib_proc --bench fork --iters 2 --samples 1 --self /sbin/calib_proc" \
            "calib_shootdown --iters 10 --samples 1" \
            "calib_chase --bench chase --size 65536 --iters 100 --samples 1"; do
            name=${run%% *}
            out=$(/sbin/$run 2>&1)
            rc=$?
            echo "$out" | sed "s/^/percpu-guest: $name: /"
            echo "percpu-guest: smoke $name status=$rc"
        done
        if [ "$cpus" -ge 2 ]; then
            # The lazy-fault bench moves between CPUs 0 and 1.
            out=$(/sbin/calib_fault --bench lazy --slots 8 --samples 2 2>&1)
            rc=$?
            echo "$out" | sed "s/^/percpu-guest: calib_fault_lazy: /"
            echo "percpu-guest: smoke calib_fault_lazy status=$rc"
        fi
    fi
    stress=
    for word in $cmdline; do
        case "$word" in percpu.stress=*) stress=${word#percpu.stress=} ;; esac
    done
    if [ -n "$stress" ]; then
        # The long stress of per-(cpu, asid) roots (docs/kernel.md): processes
        # past the 6-ASID cliff, threads freeing tables under each other, a
        # fork/exec storm, each checking its data; a CPU offline and back
        # while it runs when there are two or more.
        # --cpus: CPU 1 may be offline already when it counts the online ones.
        /sbin/roots_stress --seconds "$stress" --cpus "$cpus" --procs-per-cpu 8 --slots 4 \
            >/tmp/stress.out 2>&1 &
        pid=$!
        if [ "$cpus" -ge 2 ] && [ -e /sys/devices/system/cpu/cpu1/online ]; then
            # Until the stress's deadline by the clock (kill -0 would also find it
            # as a zombie; an offline can take seconds under TCG).
            read -r up _ </proc/uptime
            end=$((${up%.*} + stress))
            while [ "${up%.*}" -lt "$end" ]; do
                echo 0 >/sys/devices/system/cpu/cpu1/online; sleep 1
                echo 1 >/sys/devices/system/cpu/cpu1/online; sleep 1
                read -r up _ </proc/uptime
            done
        fi
        wait "$pid"
        rc=$?
        sed 's/^/percpu-guest: stress: /' /tmp/stress.out
        echo "percpu-guest: stress status=$rc"
    fi
    if has_arg percpu.kselftests=1 && [ -r /selftests/run.sh ]; then
        sh /selftests/run.sh  # percpu guest kselftest wrote it: a status line per test
    fi
    if [ -r /proc/percpu_roots ]; then
        while read -r name value; do
            echo "percpu-guest: roots $name $value"
        done </proc/percpu_roots
    fi
    echo "percpu-guest: qemu check done"
    poweroff -f
fi

echo "percpu-guest: ready"
/sbin/m5 exit
/sbin/m5 readfile >/tmp/script
echo "percpu-guest: running script ($(wc -c </tmp/script) bytes)"
sh /tmp/script
echo "percpu-guest: script exited with status $?"
/sbin/m5 exit
poweroff -f
