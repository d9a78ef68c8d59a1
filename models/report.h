// A JSON object of a run's results, as the tool prints and writes them (summary.json, eval):
// fields in the order they were set, strings escaped, and numbers that are not finite written as
// null and named in a final "non_finite" list, so the text is always valid JSON.
//
//   models::JsonReport r;
//   r.set("checkpoint", path);
//   r.set("test_elbo", elbo);            // NaN -> "test_elbo": null, "non_finite": ["test_elbo"]
//   std::string text = r.dump();
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace latent::models {

class JsonReport {
 public:
  JsonReport();
  ~JsonReport();
  JsonReport(const JsonReport&) = delete;
  JsonReport& operator=(const JsonReport&) = delete;

  void set(const std::string& key, double value);
  void set(const std::string& key, std::int64_t value);
  void set(const std::string& key, int value) { set(key, static_cast<std::int64_t>(value)); }
  void set(const std::string& key, const std::string& value);
  void set(const std::string& key, const char* value) { set(key, std::string(value)); }
  void set(const std::string& key, const std::vector<std::string>& values);
  void set(const std::string& key, const std::vector<std::int64_t>& values);
  // The names of the non-finite numbers set so far.
  const std::vector<std::string>& non_finite() const { return non_finite_; }
  // The object, indented by two spaces, with a final newline.
  std::string dump() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<std::string> non_finite_;
};

}  // namespace latent::models
