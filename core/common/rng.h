// Small, fast, seedable generator (splitmix64): reproducible runs per seed.
#pragma once
#include <cstdint>

namespace percpu {

class Rng {
 public:
  explicit Rng(uint64_t seed = 1) : m_state(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next() {
    uint64_t z = (m_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, bound); bound > 0.
  uint64_t below(uint64_t bound) { return next() % bound; }

 private:
  uint64_t m_state;
};

}  // namespace percpu
