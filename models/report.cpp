#include "models/report.h"

#include <cmath>
#include <nlohmann/json.hpp>

namespace latent::models {

struct JsonReport::Impl {
  nlohmann::ordered_json json = nlohmann::ordered_json::object();
};

JsonReport::JsonReport() : impl_(std::make_unique<Impl>()) {}
JsonReport::~JsonReport() = default;

void JsonReport::set(const std::string& key, double value) {
  if (std::isfinite(value)) {
    impl_->json[key] = value;
  } else {
    impl_->json[key] = nullptr;
    non_finite_.push_back(key);
  }
}

void JsonReport::set(const std::string& key, std::int64_t value) {
  impl_->json[key] = value;
}

void JsonReport::set(const std::string& key, const std::string& value) {
  impl_->json[key] = value;
}

void JsonReport::set(const std::string& key, const std::vector<std::string>& values) {
  impl_->json[key] = values;
}

void JsonReport::set(const std::string& key, const std::vector<std::int64_t>& values) {
  impl_->json[key] = values;
}

std::string JsonReport::dump() const {
  nlohmann::ordered_json out = impl_->json;
  if (!non_finite_.empty()) out["non_finite"] = non_finite_;
  // Invalid UTF-8 in a string (a path) is replaced, not thrown on.
  return out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace latent::models
