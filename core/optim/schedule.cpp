#include "core/optim/schedule.h"

#include <cmath>
#include <numbers>
#include <sstream>

#include "core/error.h"

namespace latent::optim {

namespace {

constexpr const char* kWhere = "lr_schedule";

void check_lr(const char* what, double lr) {
  check(std::isfinite(lr) && lr >= 0, kWhere, what, " must be finite and non-negative, got ", lr);
}

void check_gamma(double gamma) {
  check(std::isfinite(gamma) && gamma > 0 && gamma <= 1, kWhere, "gamma must lie in (0, 1], got ",
        gamma);
}

}  // namespace

LrSchedule LrSchedule::constant(double lr) {
  check_lr("lr", lr);
  return LrSchedule(Kind::constant, lr);
}

LrSchedule LrSchedule::step_decay(double lr, std::int64_t every, double gamma) {
  check_lr("lr", lr);
  check(every >= 1, kWhere, "step_decay: every must be >= 1 step, got ", every);
  check_gamma(gamma);
  LrSchedule s(Kind::step_decay, lr);
  s.spec_.every = every;
  s.spec_.gamma = gamma;
  return s;
}

LrSchedule LrSchedule::exponential(double lr, double gamma) {
  check_lr("lr", lr);
  check_gamma(gamma);
  LrSchedule s(Kind::exponential, lr);
  s.spec_.gamma = gamma;
  return s;
}

LrSchedule LrSchedule::cosine(double lr, std::int64_t total_steps, double floor) {
  check_lr("lr", lr);
  check_lr("floor", floor);
  check(floor <= lr, kWhere, "cosine: floor ", floor, " is above the initial lr ", lr);
  check(total_steps >= 1, kWhere, "cosine: total_steps must be >= 1, got ", total_steps);
  LrSchedule s(Kind::cosine, lr);
  s.spec_.every = total_steps;
  s.spec_.floor = floor;
  return s;
}

LrSchedule LrSchedule::with_warmup(std::int64_t steps, double start_factor) const {
  check(spec_.warmup == 0, kWhere, "this schedule already has a warm-up of ", spec_.warmup,
        " steps");
  check(steps >= 0, kWhere, "warm-up steps must be >= 0, got ", steps);
  check(std::isfinite(start_factor) && start_factor >= 0 && start_factor <= 1, kWhere,
        "warm-up start_factor must lie in [0, 1], got ", start_factor);
  LrSchedule s = *this;
  s.spec_.warmup = steps;
  s.spec_.warmup_start = start_factor;
  return s;
}

kernels::LrSpec LrSchedule::spec() const {
  return spec_;
}

// One formula for the host and the kernels (kernels/optim.h).
double LrSchedule::lr_at(std::int64_t step) const {
  check(step >= 0, kWhere, "lr_at: step must be >= 0, got ", step);
  return kernels::lr_at(spec(), step);
}

void LrSchedule::apply(Optimizer& opt, std::int64_t step) const {
  opt.set_lr(lr_at(step));
}

void LrSchedule::attach(Optimizer& opt, std::int64_t first_step) const {
  check(first_step >= 0, kWhere, "attach: the first step must be >= 0, got ", first_step);
  kernels::LrSpec s = spec();
  s.offset = first_step - opt.step_count();
  opt.set_lr_schedule(s);
}

std::string LrSchedule::describe() const {
  std::ostringstream os;
  switch (kind()) {
    case Kind::constant:
      os << "constant(lr=" << spec_.lr0 << ")";
      break;
    case Kind::step_decay:
      os << "step_decay(lr=" << spec_.lr0 << ", every=" << spec_.every << ", gamma=" << spec_.gamma
         << ")";
      break;
    case Kind::exponential:
      os << "exponential(lr=" << spec_.lr0 << ", gamma=" << spec_.gamma << ")";
      break;
    case Kind::cosine:
      os << "cosine(lr=" << spec_.lr0 << ", total=" << spec_.every << ", floor=" << spec_.floor
         << ")";
      break;
  }
  if (spec_.warmup > 0)
    os << " after warmup(" << spec_.warmup << ", from " << spec_.warmup_start << ")";
  return os.str();
}

}  // namespace latent::optim
