// Every number the model uses: one registry of named parameters with their
// cited defaults (docs/parameters.md is generated from this table), so a run's
// config.json records all of them and `--set key=value` can override any.
#pragma once
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace percpu {

struct ParamSpec {
  const char* key;
  double default_value;
  double min_value;
  double max_value;
  const char* unit;
  const char* help;
  const char* source;  // where the default comes from
};

// The table, in the order docs and config.json list it.
const std::vector<ParamSpec>& param_specs();

class ParamError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

class Params {
 public:
  Params();  // all defaults
  // Throws ParamError naming the key and the accepted range.
  void set(const std::string& key, double value);
  double get(const std::string& key) const;
  int get_int(const std::string& key) const { return static_cast<int>(get(key)); }
  bool get_bool(const std::string& key) const { return get(key) != 0.0; }
  const std::map<std::string, double>& values() const { return m_values; }

 private:
  std::map<std::string, double> m_values;
};

}  // namespace percpu
