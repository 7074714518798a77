"""Counts read as English and run ids follow numbers by value."""

from percpu.text import natural_key, plural


def test_plural_says_one_and_many():
    assert plural(1, "process") == "1 process"
    assert plural(2, "process") == "2 processes"
    assert plural(0, "point") == "0 points"
    assert plural(1, "worker") == "1 worker"
    assert plural(3, "access run") == "3 access runs"


def test_natural_key_orders_numbers_by_value():
    names = ["procs_per_cpu=10", "procs_per_cpu=2", "procs_per_cpu=1", "pages=4"]
    assert sorted(names, key=natural_key) == ["pages=4", "procs_per_cpu=1", "procs_per_cpu=2",
                                              "procs_per_cpu=10"]
