// nn::Module: a named tree of parameters and submodules.
//
// A model derives from Module and registers, in its constructor, its parameters (leaf tensors that
// require grad) and its submodules (held by shared_ptr). Registration order is the order of
// parameters() and named_parameters(), so optimizer state and checkpoints line up with it.
// Names are dotted paths: a Linear registered as "0" inside a container registered as "layers"
// inside "encoder" owns "encoder.layers.0.weight".
//
// A parameter reachable through several paths (a submodule or tensor shared by two owners, e.g.
// tied weights) is listed once, under the first name met in registration order.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace latent::nn {

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  // Copying would silently share parameters between two "independent" models.
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  Module(Module&&) = default;
  Module& operator=(Module&&) = default;

  // ---- registration ---------------------------------------------------------------------------
  // Registers a leaf tensor as parameter `name` and marks it requires_grad. Names are non-empty,
  // contain no '.', and are unique among this module's parameters and submodules. Throws
  // latent::Error on a bad name, an undefined tensor or a non-leaf (detach() it first).
  Tensor register_parameter(const std::string& name, Tensor value);
  // Registers a submodule and returns it. Same name rules; refuses the module itself or one that
  // already contains this module (a cycle).
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    static_assert(std::is_base_of_v<Module, M>, "register_module needs an nn::Module");
    add_child(name, module);
    return module;
  }

  // ---- traversal --------------------------------------------------------------------------------
  // Every parameter of this module and its submodules, depth-first in registration order (own
  // parameters first, then each submodule's), each tensor once.
  std::vector<Tensor> parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  // The parameter with this dotted name; throws latent::Error listing the known names when absent.
  Tensor parameter(const std::string& dotted_name) const;
  // Direct submodules, in registration order.
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named_children() const {
    return children_;
  }
  // This module (name "") and every module below it, depth-first, each once.
  std::vector<std::pair<std::string, Module*>> named_modules();
  std::vector<std::pair<std::string, const Module*>> named_modules() const;
  // Total number of scalar parameters.
  std::int64_t num_parameters() const;

  // ---- state ------------------------------------------------------------------------------------
  // Moves or converts every parameter IN PLACE: the TensorImpl each handle points to gets the new
  // storage, so handles held elsewhere (an optimizer, a user's copy of module.weight()) follow.
  // An existing gradient is carried along (moved/converted the same way). Views taken of a
  // parameter earlier, and parameters that shared one storage, keep pointing at the old memory.
  // Not recorded by autograd. Converting to float64 requires the CPU.
  void to(Device device);
  void to(DType dtype);
  // The device (dtype) of the first parameter; the CPU (float32) for a module without any.
  Device device() const;
  DType dtype() const;

  // Training mode (the default) or evaluation mode, set on this module and every submodule.
  // Modules whose forward differs between the two (noise, dropout) read is_training().
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Zeroes the gradient of every parameter that has one (keeping its memory).
  void zero_grad();

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> child);
  void check_name(const std::string& name, const char* what) const;
  template <class Fn>
  void visit_parameters(const std::string& prefix, Fn&& fn) const;

  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace latent::nn
