// Run-to-run noise (docs/noise.md): what differs between two runs of one workload
// on a real machine, drawn from the seed. Every draw is a hash of (seed, source,
// key, counter), where the key names a task or an mm by its lineage (the n-th
// child of the n-th child of a start task), never by creation order or time, so
// runs of different schemes with one seed draw the same numbers for the same
// task's k-th compute op, sleep or wake-up, or the same image's layout: common
// random numbers, which make a scheme's overhead a paired difference.
#pragma once
#include <cstdint>

#include "common/types.h"
#include "config/params.h"

namespace percpu {

class Noise {
 public:
  enum Source : uint64_t {
    Compute = 1, Sleep, Wake, Tick, Stack, Heap, MmapBase, TaskRng, Kernel, StartOrder
  };

  explicit Noise(const Params& p)
      : m_seed(static_cast<uint64_t>(p.get("machine.seed"))),
        m_on(p.get_bool("noise.enabled")),
        m_aslr(m_on && p.get_bool("noise.aslr")),
        m_jitter(m_on ? p.get("noise.compute_jitter") : 0.0),
        m_kernel_jitter(m_on ? p.get("noise.kernel_jitter") : 0.0),
        m_slack_us(m_on ? p.get("noise.sleep_slack_us") : 0.0),
        m_tick_hz(m_on ? p.get("noise.tick_hz") : 0.0),
        m_wake_ties(m_on && p.get_bool("noise.wake_ties")),
        m_start_order(m_on && p.get_bool("noise.start_order")) {}

  bool on() const { return m_on; }
  bool aslr() const { return m_aslr; }
  bool jitter() const { return m_jitter > 0; }
  bool slack() const { return m_slack_us > 0; }
  bool tick() const { return m_tick_hz > 0; }
  bool wake_ties() const { return m_wake_ties; }
  bool start_order() const { return m_start_order; }
  double tick_hz() const { return m_tick_hz; }
  double slack_us() const { return m_slack_us; }

  // A key for the n-th child (task or mm) of `parent`.
  static uint64_t child_key(uint64_t parent, uint64_t n) { return mix(parent ^ mix(n + 0x51ed27)); }

  uint64_t u64(Source s, uint64_t key, uint64_t counter) const {
    return mix(mix(m_seed ^ (s * 0x9E3779B97F4A7C15ull)) ^ mix(key) ^ (counter * 0xD1B54A32D192ED03ull));
  }
  // Uniform in [0, 1).
  double unit(Source s, uint64_t key, uint64_t counter) const {
    return static_cast<double>(u64(s, key, counter) >> 11) * 0x1.0p-53;
  }
  uint64_t below(Source s, uint64_t key, uint64_t counter, uint64_t bound) const {
    return u64(s, key, counter) % bound;
  }
  // `cycles` of a compute op scaled by a uniform factor in [1 - j, 1 + j].
  Cycles jittered(Cycles cycles, uint64_t key, uint64_t counter) const {
    return scaled(Compute, m_jitter, cycles, key, counter);
  }
  // The same for a kernel path's fixed cost (noise.kernel_jitter).
  Cycles kernel_jittered(Cycles cycles, uint64_t key, uint64_t counter) const {
    return scaled(Kernel, m_kernel_jitter, cycles, key, counter);
  }
  bool kernel_jitter() const { return m_kernel_jitter > 0; }

 private:
  Cycles scaled(Source s, double j, Cycles cycles, uint64_t key, uint64_t counter) const {
    if (j <= 0 || cycles == 0) return cycles;
    double f = 1.0 + j * (2.0 * unit(s, key, counter) - 1.0);
    double v = static_cast<double>(cycles) * f;
    return v <= 0 ? 0 : static_cast<Cycles>(v + 0.5);
  }
  static uint64_t mix(uint64_t z) {  // splitmix64's finaliser
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t m_seed;
  bool m_on, m_aslr;
  double m_jitter, m_kernel_jitter, m_slack_us, m_tick_hz;
  bool m_wake_ties, m_start_order;
};

}  // namespace percpu
