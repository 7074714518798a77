"""A reference for the order in which the engine first runs a CPU's start tasks
(noise.start_order, core/sched/runqueue.cc draw_start_order) and for the switches that
ctxmix's program then makes on a CPU, written from docs/noise.md and
workloads/ctxmix/engine.ops.j2, sharing no code with core/."""

from __future__ import annotations

from collections import deque

MASK = (1 << 64) - 1
START_ORDER = 10  # Noise::StartOrder in core/engine/noise.h (Compute = 1, ..., Kernel = 9)


def _mix(z: int) -> int:
    """splitmix64's finaliser."""
    z = (z + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def draw(seed: int, source: int, key: int, counter: int) -> int:
    """Noise::u64: a hash of (seed, source, key, counter)."""
    return _mix(_mix(seed ^ ((source * 0x9E3779B97F4A7C15) & MASK)) ^ _mix(key)
                ^ ((counter * 0xD1B54A32D192ED03) & MASK))


def start_order(tasks: list[int], seed: int, cpu: int) -> list[int]:
    """The CPU's start queue (program order) after the seed's Fisher-Yates shuffle."""
    q = list(tasks)
    for i in range(len(q) - 1, 0, -1):
        j = draw(seed, START_ORDER, cpu, i) % (i + 1)
        q[i], q[j] = q[j], q[i]
    return q


def ctxmix_switches(first: list[int], ring: list[int], rounds: int) -> list[int]:
    """The processes one CPU switches to under ctxmix's program (pinned): each process
    first writes its heap; the ring's first process then signals its own token; every
    process waits for its token, takes its turn and signals the next one's. The run
    queue is FIFO; a woken process joins its tail; the running one keeps the CPU until
    it blocks (a signal wakes, it does not preempt). Up to the first exit."""
    queue = deque(first)
    tokens = {p: 0 for p in ring}
    waiting: set[int] = set()
    started: set[int] = set()
    left = {p: rounds for p in ring}
    nxt = {p: ring[(i + 1) % len(ring)] for i, p in enumerate(ring)}
    out: list[int] = []
    while queue:
        p = queue.popleft()
        out.append(p)
        if p not in started:
            started.add(p)
            if p == ring[0]:
                tokens[p] += 1
        while True:  # wait tok<p>; turn; signal tok<next>
            if tokens[p] == 0:
                waiting.add(p)
                break
            tokens[p] -= 1
            left[p] -= 1
            q = nxt[p]
            tokens[q] += 1
            if q in waiting:  # woken: it takes the token and its turn when it runs
                waiting.discard(q)
                queue.append(q)
            if left[p] == 0:
                return out
    return out
