#include "core/optim/optimizer.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <unordered_map>

#include "core/autograd.h"
#include "core/backend.h"
#include "core/dispatch.h"
#include "core/error.h"

namespace latent::optim {

namespace {

// A step count stored as a scalar tensor: a non-negative integer exactly representable in double.
std::int64_t read_count(const std::string& where, const std::string& key, const Tensor& t) {
  check(t.numel() == 1, where, "entry '", key, "' must hold one value (a step count), got shape ",
        t.shape().str());
  const double v = t.item();
  check(std::isfinite(v) && v >= 0 && v == std::floor(v) && v <= 9007199254740992.0, where,
        "entry '", key, "' must be a non-negative whole number (a step count), got ", v);
  return static_cast<std::int64_t>(v);
}

bool parse_index(const std::string& s, std::size_t& out) {
  if (s.empty() || s.size() > 12) return false;
  out = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + static_cast<std::size_t>(c - '0');
  }
  return true;
}

Tensor step_tensor(std::int64_t n) {
  return Tensor::scalar(static_cast<double>(n), {.dtype = DType::f64});
}

// A private copy of `src` with p's dtype and device.
Tensor copy_like(const Tensor& src, const Tensor& p) {
  NoGradGuard no_grad;
  Tensor c = Tensor::empty(p.shape(), p.options());
  c.copy_(src.detach());
  return c;
}

}  // namespace

Optimizer::Optimizer(std::string name, std::vector<Tensor> params, std::vector<std::string> slots)
    : name_(std::move(name)), params_(std::move(params)), slot_names_(std::move(slots)) {
  check(!params_.empty(), name_, "got an empty parameter list");
  std::unordered_map<const TensorImpl*, std::size_t> seen;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    check(p.defined(), name_, "parameter ", i, " is an undefined tensor");
    check(p.is_leaf(), name_, "parameter ", i, " (", p.str(),
          ") is not a leaf: it was produced by '", p.grad_fn_name(),
          "'; optimize leaf tensors such as module.parameters()");
    auto [it, fresh] = seen.emplace(p.impl().get(), i);
    check(fresh, name_, "parameter ", i, " is the same tensor as parameter ", it->second,
          "; give each parameter once");
  }
  check(static_cast<std::int64_t>(params_.size()) <= kernels::kMaxOptimParams, name_, "has ",
        params_.size(), " parameters; one optimizer takes at most ", kernels::kMaxOptimParams);
  slots_.assign(params_.size(), std::vector<Tensor>(slot_names_.size()));
  flat_slots_.resize(slot_names_.size());
  flatten();
}

namespace {
// Each parameter starts on a multiple of this many elements in the arenas (256 bytes in float32).
constexpr std::int64_t kArenaAlign = 64;
}  // namespace

void Optimizer::flatten() {
  const Tensor& first = params_.front();
  std::int64_t total = 0;
  for (const Tensor& p : params_) {
    // Only a parameter that alone owns its whole storage can move into the arena: any other
    // handle to that memory (a view, a tied weight) would no longer see the updates.
    const TensorImpl& impl = *p.impl();
    if (p.device() != first.device() || p.dtype() != first.dtype() || impl.offset != 0 ||
        impl.storage.use_count() != 1 ||
        impl.storage->bytes != static_cast<std::size_t>(p.numel()) * dtype_size(p.dtype()))
      return;
    flat_offsets_.push_back(total);
    total += (p.numel() + kArenaAlign - 1) / kArenaAlign * kArenaAlign;
  }
  NoGradGuard no_grad;
  const TensorOptions opt{.dtype = first.dtype(), .device = first.device()};
  flat_params_ = Tensor::zeros({total}, opt);
  flat_grads_ = Tensor::zeros({total}, opt);
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    Tensor view = arena_view(flat_params_, i);
    view.copy_(p.detach());
    TensorImpl& impl = *p.impl();
    impl.storage = view.impl()->storage;
    impl.offset = view.impl()->offset;
    // A gradient it already has moves into the arena; one it has not yet stays undefined (a
    // parameter without a gradient is skipped by step()).
    if (p.grad().defined()) {
      Tensor g = arena_view(flat_grads_, i);
      g.copy_(p.grad().detach());
      p.set_grad(g);
    }
  }
  flat_ = true;
}

Tensor Optimizer::arena_view(const Tensor& arena, std::size_t i) const {
  return arena.rows(flat_offsets_[i], params_[i].numel()).reshape(params_[i].shape());
}

bool Optimizer::in_arena(const Tensor& t, const Tensor& arena, std::size_t i) const {
  return t.defined() && t.impl()->storage == arena.impl()->storage &&
         t.impl()->offset == arena.impl()->offset + flat_offsets_[i];
}

Tensor& Optimizer::slot_arena(std::size_t k) {
  if (!flat_slots_[k].defined()) {
    NoGradGuard no_grad;
    flat_slots_[k] = Tensor::zeros(flat_params_.shape(), flat_params_.options());
    for (std::size_t i = 0; i < params_.size(); ++i) {
      Tensor view = arena_view(flat_slots_[k], i);
      if (slots_[i][k].defined()) view.copy_(slots_[i][k]);  // the state so far moves in
      slots_[i][k] = view;
    }
  }
  return flat_slots_[k];
}

void Optimizer::move_into_arenas() {
  NoGradGuard no_grad;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    if (!in_arena(p, flat_params_, i)) return;  // moved: no flat mode now
    const Tensor g = p.grad();
    if (g.defined() && !in_arena(g, flat_grads_, i)) {
      Tensor view = arena_view(flat_grads_, i);
      view.copy_(g.detach());
      p.set_grad(view);
    }
  }
  for (std::size_t k = 0; k < slot_names_.size(); ++k) {
    bool any = false;
    for (std::size_t i = 0; i < params_.size(); ++i) any = any || slots_[i][k].defined();
    if (any) slot_arena(k);
  }
}

bool Optimizer::flat_valid() const {
  if (!flat_) return false;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (!in_arena(params_[i], flat_params_, i) || !in_arena(params_[i].grad(), flat_grads_, i))
      return false;
    for (std::size_t k = 0; k < slot_names_.size(); ++k)
      if (flat_slots_[k].defined() && !in_arena(slots_[i][k], flat_slots_[k], i)) return false;
  }
  return true;
}

Tensor Optimizer::slot_of(const Update& u, std::size_t k) {
  return u.flat ? slot_arena(k) : slot(u.index, k);
}

void Optimizer::ensure_state(Device device) const {
  if (state_.defined() && state_.device() == device) return;
  const auto n = static_cast<std::int64_t>(params_.size());
  if (!state_.defined()) {
    state_ = dispatch::scratch_doubles(kernels::optim_state_size(n), device);
    state_.fill_(0.0);  // all-zero bits: 0.0 as doubles
  } else {
    state_ = state_.to(device);  // the parameters moved
  }
}

std::vector<double> Optimizer::read_state() const {
  const auto n = static_cast<std::size_t>(
      kernels::optim_state_size(static_cast<std::int64_t>(params_.size())));
  std::vector<double> out(n, 0.0);
  if (state_.defined())
    backend::copy(out.data(), Device::cpu(), dispatch::as_doubles(state_), state_.device(),
                  n * sizeof(double));
  return out;
}

void Optimizer::write_state(const std::vector<double>& values) const {
  ensure_state(params_.front().device());
  backend::copy(dispatch::as_doubles(state_), state_.device(), values.data(), Device::cpu(),
                values.size() * sizeof(double));
  state_.bump_version();
}

double* Optimizer::state_memory() const {
  return dispatch::as_doubles(state_);
}

std::int64_t Optimizer::step_count() const {
  return static_cast<std::int64_t>(read_state()[0]);
}

double Optimizer::lr() const {
  // A constant rate needs no step count (and so no wait for the device).
  if (lr_spec_.kind == kernels::LrKind::constant && lr_spec_.warmup == 0) return lr_spec_.lr0;
  return kernels::lr_at(lr_spec_, step_count() + lr_spec_.offset);
}

double Optimizer::last_lr() const {
  return read_state()[1];
}

void Optimizer::set_lr(double lr) {
  check_non_negative("lr", lr);
  lr_spec_ = kernels::LrSpec{.kind = kernels::LrKind::constant, .lr0 = lr};
  ++revision_;
}

void Optimizer::set_lr_schedule(const kernels::LrSpec& schedule) {
  lr_spec_ = schedule;
  ++revision_;
}

void Optimizer::check_non_negative(const char* what, double v) const {
  check(std::isfinite(v) && v >= 0, name_, what, " must be finite and non-negative, got ", v);
}

Tensor Optimizer::grad_arena() {
  for (const Tensor& p : params_) (void)p.grad();  // writes the zeros of a gradient marked zero
  // The first backward made the gradients outside the arena: when every parameter has one, they
  // move in, so that the first step's collective is the later steps' (one message of one size,
  // whose sums every reduction adds in the same order).
  if (flat_ && !flat_valid() && !dispatch::recording()) {
    bool all = true;
    for (std::size_t i = 0; i < params_.size() && all; ++i)
      all = in_arena(params_[i], flat_params_, i) && params_[i].grad().defined();
    if (all) {
      NoGradGuard no_grad;
      for (std::size_t i = 0; i < params_.size(); ++i) {
        const Tensor g = params_[i].grad();
        if (in_arena(g, flat_grads_, i)) continue;
        Tensor view = arena_view(flat_grads_, i);
        view.copy_(g.detach());
        params_[i].set_grad(view);
      }
    }
  }
  return flat_valid() ? flat_grads_ : Tensor();
}

void Optimizer::step() {
  NoGradGuard no_grad;
  // Every gradient is checked before anything is written: a bad one leaves all parameters as
  // they were.
  std::vector<Update> updates;
  kernels::ParamMask mask;
  const Device device = params_.front().device();
  const bool flat = flat_valid();
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    check(p.device() == device, name_, "parameters share one device: parameter ", i, " is on ",
          p.device().str(), ", parameter 0 on ", device.str(), " (one optimizer per device)");
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    check(g.shape() == p.shape() && g.dtype() == p.dtype() && g.device() == p.device(), name_,
          "the gradient of parameter ", i, " is ", g.str(), " but the parameter is ", p.str());
    updates.push_back({i, p, g});
    mask.set(static_cast<std::int64_t>(i));
  }
  ensure_state(device);
  const double beta1 = betas().first, beta2 = betas().second;
  const auto count = static_cast<std::int64_t>(params_.size());
  dispatch::run(name_.c_str(), device, DType::f32, [&](auto, auto be) {
    dispatch::call(be, LATENT_KERNEL(optim_begin_step), state_memory(), lr_spec_, beta1, beta2,
                   mask, count);
  });
  if (flat) {
    // Every gradient lives in its arena, so every parameter is updated: one update over it all.
    update_all({Update{.index = 0, .param = flat_params_, .grad = flat_grads_, .flat = true}});
  } else {
    // The update counts of the parameters may part from here on: no flat update any more.
    if (updates.size() != params_.size()) flat_ = false;
    update_all(updates);
    // Every parameter was updated: gradients and state move into the arenas now (outside any
    // recorded step), so the next step is one update over them.
    if (flat_ && !dispatch::recording()) move_into_arenas();
  }
  state_.bump_version();
  for (const Update& u : updates) {
    u.param.bump_version();
    for (const Tensor& sl : slots_[u.index])
      if (sl.defined()) sl.bump_version();
  }
}

std::vector<std::vector<Optimizer::Update>> Optimizer::group_by_dtype(
    const std::vector<Update>& updates) {
  std::vector<std::vector<Update>> groups;
  for (const Update& u : updates) {
    auto same = [&](const std::vector<Update>& g) {
      return g.front().param.dtype() == u.param.dtype();
    };
    auto it = std::find_if(groups.begin(), groups.end(), same);
    if (it == groups.end())
      groups.push_back({u});
    else
      it->push_back(u);
  }
  return groups;
}

void Optimizer::zero_grad(bool set_to_none) {
  if (flat_ && !set_to_none) {
    // Gradients go (back) into their arena; a parameter without a gradient keeps none, as
    // zero_grad always did. No kernel runs: each gradient is marked zero (Tensor::zero_grad) and
    // the next backward overwrites it.
    for (std::size_t i = 0; i < params_.size(); ++i) {
      const autograd::Meta* m = params_[i].meta();
      const Tensor g = m ? m->grad : Tensor();
      if (g.defined() && !in_arena(g, flat_grads_, i) && in_arena(params_[i], flat_params_, i))
        params_[i].set_grad(arena_view(flat_grads_, i));
    }
  }
  for (const Tensor& p : params_) {
    if (set_to_none)
      p.set_grad(Tensor());
    else
      p.zero_grad();
  }
}

Tensor& Optimizer::slot(std::size_t i, std::size_t k, bool* fresh) {
  const Tensor& p = params_[i];
  Tensor& s = slots_[i][k];
  if (fresh) *fresh = !s.defined();
  if (!s.defined()) {
    s = Tensor::zeros(p.shape(), p.options());
  } else if (s.device() != p.device() || s.dtype() != p.dtype()) {
    s = copy_like(s, p);  // the parameter was moved or converted since
  }
  return s;
}

NamedTensors Optimizer::state() const {
  const std::vector<double> mem = read_state();
  NamedTensors out;
  out.emplace_back(name_ + ".step", step_tensor(static_cast<std::int64_t>(mem[0])));
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const std::string idx = "." + std::to_string(i);
    const auto t = static_cast<std::int64_t>(mem[2 + 3 * i]);
    if (t > 0) out.emplace_back(name_ + ".step" + idx, step_tensor(t));
    for (std::size_t k = 0; k < slot_names_.size(); ++k)
      if (slots_[i][k].defined())
        out.emplace_back(name_ + "." + slot_names_[k] + idx, slots_[i][k].detach());
  }
  return out;
}

void Optimizer::load_state(const NamedTensors& state) {
  const std::string where = name_ + ".load_state";
  const std::string prefix = name_ + ".";
  std::string known = "step";
  for (const auto& s : slot_names_) known += ", " + s;

  // Everything is validated into temporaries first: a bad entry leaves the optimizer unchanged.
  std::int64_t step = -1;
  std::vector<std::int64_t> steps(params_.size(), 0);
  std::vector<std::vector<Tensor>> slots(params_.size(), std::vector<Tensor>(slot_names_.size()));
  std::set<std::string> seen;
  for (const auto& [key, t] : state) {
    check(seen.insert(key).second, where, "entry '", key, "' appears twice");
    check(t.defined(), where, "entry '", key, "' is an undefined tensor");
    check(key.rfind(prefix, 0) == 0, where, "entry '", key, "' is not ", name_,
          " state (this optimizer's entries start with '", prefix, "')");
    const std::string rest = key.substr(prefix.size());
    if (rest == "step") {
      step = read_count(where, key, t);
      continue;
    }
    const std::size_t dot = rest.rfind('.');
    std::size_t i = 0;
    check(dot != std::string::npos && parse_index(rest.substr(dot + 1), i), where,
          "unknown entry '", key, "' (", name_, " keeps: ", known, ", per parameter as '", prefix,
          "<name>.<index>')");
    check(i < params_.size(), where, "entry '", key, "' is for parameter ", i,
          ", but this optimizer has ", params_.size(), " parameters");
    const std::string field = rest.substr(0, dot);
    if (field == "step") {
      steps[i] = read_count(where, key, t);
      continue;
    }
    std::size_t k = 0;
    while (k < slot_names_.size() && slot_names_[k] != field) ++k;
    check(k < slot_names_.size(), where, "unknown entry '", key, "' (", name_, " keeps: ", known,
          ")");
    const Tensor& p = params_[i];
    check(t.shape() == p.shape(), where, "entry '", key, "' has shape ", t.shape().str(),
          " but parameter ", i, " has shape ", p.shape().str());
    slots[i][k] = copy_like(t, p);
  }
  check(step >= 0, where, "the entry '", name_, ".step' (the step count) is missing");
  for (std::size_t i = 0; i < params_.size(); ++i)
    for (std::size_t k = 0; k < slot_names_.size(); ++k)
      check(!slots[i][k].defined() || steps[i] > 0, where, "entry '", name_, ".", slot_names_[k],
            ".", i, "' is given without a positive '", name_, ".step.", i, "'");

  // The counts go to memory; the corrections follow from them at the next update of each
  // parameter (a parameter's corrections are read only in a step that updates it).
  std::vector<double> mem(static_cast<std::size_t>(
                              kernels::optim_state_size(static_cast<std::int64_t>(params_.size()))),
                          0.0);
  mem[0] = static_cast<double>(step);
  for (std::size_t i = 0; i < params_.size(); ++i) mem[2 + 3 * i] = static_cast<double>(steps[i]);
  write_state(mem);
  for (std::size_t i = 1; i < params_.size(); ++i)
    if (steps[i] != steps[0]) flat_ = false;  // the update counts differ: per-parameter updates
  if (flat_) {
    // The loaded state goes into the arenas, so the step stays one update over them.
    NoGradGuard no_grad;
    for (std::size_t k = 0; k < slot_names_.size(); ++k) {
      bool any = false;
      for (std::size_t i = 0; i < params_.size(); ++i) any = any || slots[i][k].defined();
      if (!any && !flat_slots_[k].defined()) continue;
      Tensor& arena = slot_arena(k);
      arena.zero_();
      for (std::size_t i = 0; i < params_.size(); ++i) {
        slots_[i][k] = arena_view(arena, i);
        if (slots[i][k].defined()) slots_[i][k].copy_(slots[i][k]);
      }
    }
  } else {
    slots_ = std::move(slots);
  }
  ++revision_;
}

}  // namespace latent::optim
