#include "root/registry.h"

#include <stdexcept>

namespace percpu {

std::map<std::string, RootSchemeInfo>& root_scheme_registry() {
  static std::map<std::string, RootSchemeInfo> registry;
  return registry;
}

std::vector<std::string> root_scheme_names() {
  std::vector<std::string> names;
  for (const auto& [name, info] : root_scheme_registry()) names.push_back(name);
  return names;
}

std::unique_ptr<IRootScheme> make_root_scheme(const std::string& name, const RootEnv& env) {
  auto it = root_scheme_registry().find(name);
  if (it == root_scheme_registry().end()) {
    std::string known;
    for (const auto& n : root_scheme_names()) known += (known.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown scheme '" + name + "': choose from " + known);
  }
  return it->second.make(env);
}

}  // namespace percpu
