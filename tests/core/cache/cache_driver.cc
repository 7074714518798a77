// Feeds core/cache's Cache one case per input line, "<size_bytes> <ways> <line>...",
// and prints one line of H (hit) and M (miss) per case, for test_cache.py's
// reference model. A geometry the cache refuses prints "error: <message>".
#include <cstdint>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "cache/cache.h"

int main() {
  std::string text;
  while (std::getline(std::cin, text)) {
    std::istringstream in(text);
    uint64_t size = 0;
    int ways = 0;
    in >> size >> ways;
    try {
      percpu::Cache cache(size, ways);
      std::string out;
      uint64_t line;
      while (in >> line) out += cache.access(line) ? 'H' : 'M';
      std::cout << out << '\n';
    } catch (const std::invalid_argument& e) {
      std::cout << "error: " << e.what() << '\n';
    }
  }
  return 0;
}
