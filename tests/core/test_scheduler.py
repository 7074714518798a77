"""Scheduler behaviour the workloads rely on."""

from percpu import _core
from percpu.workloads.program import parse_program

IDLE_PULL = """percpu-ops 1
mm m
task x mm=m cpus=1
task y1 mm=m cpus=0
task y2 mm=m cpus=0
task y3 mm=m cpus=0
program x
  compute 1000000
{ys}"""
Y = """program {name}
  affinity 0-1
  repeat 20
    compute 500000
  end
"""


def run(text: str) -> dict:
    prog = parse_program(text, 2)
    out = _core.run({"machine.cpus": 2.0}, "percpu", check=True, **prog.core_args())
    assert out["violation_count"] == 0
    return {name: value for name, value, _, _ in out["stats"]}


def test_an_idle_cpu_takes_waiting_tasks():
    # y1..y3 queue on CPU 0. When x ends, the queued ys may not run on CPU 1 yet (their
    # `affinity` has not run): CPU 1 idles until a periodic balance hands one over once it
    # may, and pulls another itself when it next goes idle (newidle balance).
    s = run(IDLE_PULL.format(ys="".join(Y.format(name=f"y{i}") for i in (1, 2, 3))))
    assert s["system.cpu1.sched.balancePulls"] >= 1
    assert s["system.cpu1.sched.balancePulls"] + s["system.cpu1.sched.idlePulls"] >= 2
    assert s["system.cpu0.sched.idlePulls"] + s["system.cpu0.sched.balancePulls"] == 0
    # 30 M cycles of y work on two CPUs finish well before 30 M cycles (3 GHz: 10 ms).
    assert s["simSeconds"] < 0.009


def test_pinned_tasks_are_never_pulled():
    pinned = IDLE_PULL.format(ys="".join(Y.format(name=f"y{i}").replace("  affinity 0-1\n", "")
                                         for i in (1, 2, 3)))
    s = run(pinned)
    assert s["system.cpu1.sched.idlePulls"] + s["system.cpu1.sched.balancePulls"] == 0
    assert s["simSeconds"] >= 0.01  # all 30 M cycles on CPU 0


HANDOFF = """percpu-ops 1
mm a
mm b
task x mm=a cpus=0
task y mm=b cpus=0 start=no
program x
  spawn y{waiting}
  sleep 200000
  signal go
  sleep 1000000
program y
  wait go
  compute 100000
"""


def test_a_task_spawned_waiting_does_not_run_before_its_wait_ends():
    """spawn y waiting: y starts blocked in its first op (wait go), so while x first sleeps
    CPU 0 idles; a plain spawn switches to y there only for it to block (2 more mm
    switches: to y, and back to x's mm when x wakes)."""
    plain = run(HANDOFF.format(waiting=""))
    waiting = run(HANDOFF.format(waiting=" waiting"))
    assert waiting["system.cpu0.mmSwitches"] == plain["system.cpu0.mmSwitches"] - 2
    # The same work either way; the blocked start costs no syscall of its own.
    assert waiting["system.memRefs"] == plain["system.memRefs"]
    assert waiting["system.cpu0.cycles::syscall"] < plain["system.cpu0.cycles::syscall"]


def test_a_waiting_spawn_of_a_signalled_channel_runs_at_once():
    signalled = HANDOFF.replace("  spawn y{waiting}\n", "  signal go\n  spawn y waiting\n")
    s = run(signalled)
    assert s["system.cpu0.mmSwitches"] >= 2  # y ran (and x came back) without a second signal
