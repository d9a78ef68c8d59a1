// latent::Error (defined at the lowest layer so kernels and core throw one type): every failure the
// engine reports to its user. Messages start with the op or component in brackets and say exactly
// what is wrong, with the shapes, devices or files involved:
//   [matmul] inner dimensions differ: (128, 784) x (512, 256)
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace latent {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
  // "[where] what"
  Error(std::string_view where, std::string_view what)
      : std::runtime_error("[" + std::string(where) + "] " + std::string(what)) {}
};

namespace detail {
template <class... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

// Throws latent::Error("[where] " + args...) when cond is false.
template <class... Args>
inline void check(bool cond, std::string_view where, const Args&... args) {
  if (!cond) [[unlikely]]
    throw Error(where, detail::cat(args...));
}

}  // namespace latent
