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
