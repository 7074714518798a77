// Root schemes by name. Each impl/*.cc registers itself with one line; the
// CLI lists names from here, never from a hand-kept list. The registrations
// are compiled into the same object library as the engine so that nothing
// drops them (see CMakeLists.txt).
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "root/i_root_scheme.h"

namespace percpu {

using RootSchemeFactory = std::function<std::unique_ptr<IRootScheme>(const RootEnv&)>;

struct RootSchemeInfo {
  std::string name;
  std::string summary;
  RootSchemeFactory make;
};

std::map<std::string, RootSchemeInfo>& root_scheme_registry();

struct RegisterRootScheme {
  RegisterRootScheme(const std::string& name, const std::string& summary, RootSchemeFactory make) {
    root_scheme_registry()[name] = RootSchemeInfo{name, summary, std::move(make)};
  }
};

// Throws std::invalid_argument naming the known schemes.
std::unique_ptr<IRootScheme> make_root_scheme(const std::string& name, const RootEnv& env);
std::vector<std::string> root_scheme_names();

}  // namespace percpu
