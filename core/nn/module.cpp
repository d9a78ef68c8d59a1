#include "core/nn/module.h"

#include <unordered_set>

#include "core/autograd.h"
#include "core/backend.h"
#include "core/error.h"

namespace latent::nn {

namespace {

// Replaces the data under p's TensorImpl by `conv` applied to it, keeping the impl (and so every
// handle) and its autograd Meta, whose recorded dtype/device must follow.
template <class Conv>
void convert_in_place(const Tensor& p, Conv&& conv) {
  NoGradGuard no_grad;
  Tensor fresh = conv(p.detach());
  if (fresh.impl()->storage == p.impl()->storage) return;  // already there
  TensorImpl& impl = *p.impl();
  impl.storage = fresh.impl()->storage;
  impl.offset = fresh.impl()->offset;
  impl.dtype = fresh.impl()->dtype;
  if (autograd::Meta* m = p.meta()) {
    m->dtype = impl.dtype;
    m->device = impl.storage->device;
    if (m->grad.defined()) m->grad = conv(m->grad.detach());
  }
}

}  // namespace

void Module::check_name(const std::string& name, const char* what) const {
  check(!name.empty(), "module", what, " names must not be empty");
  check(name.find('.') == std::string::npos, "module", what, " name '", name,
        "' must not contain '.' (dots separate the levels of a parameter's path)");
  for (const auto& [n, t] : params_)
    check(n != name, "module", "name '", name, "' is already taken by a parameter");
  for (const auto& [n, c] : children_)
    check(n != name, "module", "name '", name, "' is already taken by a submodule");
}

Tensor Module::register_parameter(const std::string& name, Tensor value) {
  check_name(name, "parameter");
  check(value.defined(), "module", "parameter '", name, "' is an undefined tensor");
  check(value.is_leaf(), "module", "parameter '", name,
        "' must be a leaf, but it was produced by '", value.grad_fn_name(),
        "'; register value.detach() instead");
  value.requires_grad_(true);
  params_.emplace_back(name, value);
  return value;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> child) {
  check_name(name, "submodule");
  check(child != nullptr, "module", "submodule '", name, "' is null");
  for (const auto& [n, m] : std::as_const(*child).named_modules())
    check(m != this, "module", "registering '", name,
          "' would make a cycle: it is (or contains) this module");
  children_.emplace_back(name, std::move(child));
}

template <class Fn>
void Module::visit_parameters(const std::string& prefix, Fn&& fn) const {
  for (const auto& [n, t] : params_) fn(prefix + n, t);
  for (const auto& [n, c] : children_) c->visit_parameters(prefix + n + ".", fn);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  std::unordered_set<const TensorImpl*> seen;
  visit_parameters("", [&](const std::string& name, const Tensor& t) {
    if (seen.insert(t.impl().get()).second) out.emplace_back(name, t);
  });
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters()) out.push_back(t);
  return out;
}

Tensor Module::parameter(const std::string& dotted_name) const {
  std::string known;
  for (const auto& [n, t] : named_parameters()) {
    if (n == dotted_name) return t;
    known += (known.empty() ? "" : ", ") + n;
  }
  throw Error("module", "no parameter named '" + dotted_name + "'; the parameters are: " +
                            (known.empty() ? std::string("(none)") : known));
}

std::vector<std::pair<std::string, const Module*>> Module::named_modules() const {
  std::vector<std::pair<std::string, const Module*>> out;
  std::unordered_set<const Module*> seen;
  // Explicit stack, children pushed in reverse so they pop in registration order.
  std::vector<std::pair<std::string, const Module*>> stack{{"", this}};
  while (!stack.empty()) {
    auto [name, m] = stack.back();
    stack.pop_back();
    if (!seen.insert(m).second) continue;
    out.emplace_back(name, m);
    const std::string prefix = name.empty() ? "" : name + ".";
    for (auto it = m->children_.rbegin(); it != m->children_.rend(); ++it)
      stack.emplace_back(prefix + it->first, it->second.get());
  }
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
  std::vector<std::pair<std::string, Module*>> out;
  for (auto& [n, m] : std::as_const(*this).named_modules())
    out.emplace_back(n, const_cast<Module*>(m));
  return out;
}

std::int64_t Module::num_parameters() const {
  std::int64_t n = 0;
  for (const Tensor& t : parameters()) n += t.numel();
  return n;
}

void Module::to(Device device) {
  // Checked up front so that a failure leaves every parameter where it was.
  if (device.is_cuda()) {
    backend::check_device(device);  // throws without the CUDA backend or that GPU
    for (const auto& [n, p] : named_parameters())
      check(p.dtype() == DType::f32, "module.to", "parameter '", n,
            "' is float64, which is CPU-only; convert the module with to(DType::f32) before "
            "moving it to ",
            device.str());
  }
  for (const Tensor& p : parameters())
    convert_in_place(p, [&](const Tensor& t) { return t.to(device); });
}

void Module::to(DType dtype) {
  if (dtype == DType::f64)
    for (const auto& [n, p] : named_parameters())
      check(p.device().is_cpu(), "module.to", "float64 is CPU-only, but parameter '", n, "' is on ",
            p.device().str(), "; move the module to the CPU first");
  for (const Tensor& p : parameters())
    convert_in_place(p, [&](const Tensor& t) { return t.to(dtype); });
}

Device Module::device() const {
  const auto ps = parameters();
  return ps.empty() ? Device::cpu() : ps.front().device();
}

DType Module::dtype() const {
  const auto ps = parameters();
  return ps.empty() ? DType::f32 : ps.front().dtype();
}

void Module::train(bool on) {
  for (auto& [n, m] : named_modules()) m->training_ = on;
}

void Module::zero_grad() {
  for (const Tensor& p : parameters()) p.zero_grad();
}

}  // namespace latent::nn
