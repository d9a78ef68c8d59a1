// Learning-rate schedules: the learning rate as a function of the global step (0-based, one step
// = one optimizer update).
//
//   auto sched = optim::LrSchedule::cosine(1e-3, /*total_steps=*/10000, /*floor=*/1e-5)
//                    .with_warmup(500);
//   sched.attach(opt, 0);              // opt evaluates it at each step from its step count
//   for (...) { ...; opt.step(); }
// (or, step by step: sched.apply(opt, step), i.e. opt.set_lr(sched.lr_at(step)), before each step)
//
// The base schedules, with lr0 the initial learning rate and s the step:
//   constant(lr0)                    lr0
//   step_decay(lr0, every, gamma)    lr0 * gamma^floor(s / every)
//   exponential(lr0, gamma)          lr0 * gamma^s
//   cosine(lr0, total, floor)        floor + (lr0 - floor) * (1 + cos(pi * min(s, total) / total))
//   / 2
//                                    (lr0 at s = 0, floor from s = total on)
// with_warmup(w, start_factor) puts a linear warm-up of w steps in front of any of them:
//   s < w:   base(0) * (start_factor + (1 - start_factor) * s / w)
//   s >= w:  base(s - w)             (the base schedule starts counting after the warm-up)
// so with the default start_factor 0 the first step has lr 0 and step w has base(0).
//
// Errors (latent::Error "[lr_schedule] ..."): a negative or non-finite lr0 or floor, a floor
// above lr0, every < 1, total < 1, gamma outside (0, 1], warm-up steps < 0, start_factor outside
// [0, 1], a second warm-up, and lr_at of a negative step.
#pragma once

#include <cstdint>
#include <string>

#include "core/optim/optimizer.h"
#include "kernels/optim.h"

namespace latent::optim {

class LrSchedule {
 public:
  using Kind = kernels::LrKind;  // constant, step_decay, exponential, cosine

  static LrSchedule constant(double lr);
  static LrSchedule step_decay(double lr, std::int64_t every, double gamma);
  static LrSchedule exponential(double lr, double gamma);
  static LrSchedule cosine(double lr, std::int64_t total_steps, double floor = 0.0);

  // This schedule behind a linear warm-up of `steps` steps (0: unchanged).
  LrSchedule with_warmup(std::int64_t steps, double start_factor = 0.0) const;

  // The learning rate of step `step` (>= 0).
  double lr_at(std::int64_t step) const;
  // opt.set_lr(lr_at(step)): a constant until the next apply (eager loops).
  void apply(Optimizer& opt, std::int64_t step) const;
  // Hands the schedule to the optimizer, which evaluates it in its step's first kernel from its
  // own step count: its next step uses lr_at(first_step), the one after lr_at(first_step + 1),
  // and so on. What a recorded (replayed) step needs; the Trainer does this.
  void attach(Optimizer& opt, std::int64_t first_step) const;
  // The schedule as plain values for the kernels (offset 0).
  kernels::LrSpec spec() const;

  Kind kind() const { return spec_.kind; }
  double initial_lr() const { return spec_.lr0; }
  std::int64_t warmup_steps() const { return spec_.warmup; }
  // "cosine(lr=0.001, total=10000, floor=1e-05) after warmup(500, from 0)", for logs.
  std::string describe() const;

 private:
  LrSchedule(Kind kind, double lr) : spec_{.kind = kind, .lr0 = lr} {}

  kernels::LrSpec spec_;  // the schedule as the kernels evaluate it (offset 0)
};

}  // namespace latent::optim
