#include "core/autograd.h"

#include <algorithm>
#include <unordered_map>

#include "core/error.h"

namespace latent {

namespace {
thread_local bool g_grad_enabled = true;
}

bool grad_enabled() {
  return g_grad_enabled;
}

NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) {
  g_grad_enabled = false;
}
NoGradGuard::~NoGradGuard() {
  g_grad_enabled = previous_;
}

namespace autograd {

Node::~Node() {
  // Unlink children iteratively: a chain of thousands of nodes would otherwise be destroyed by
  // nested destructor calls and could overflow the stack.
  std::vector<std::shared_ptr<Node>> stack;
  for (Edge& e : next)
    if (e.node) stack.push_back(std::move(e.node));
  next.clear();
  while (!stack.empty()) {
    std::shared_ptr<Node> n = std::move(stack.back());
    stack.pop_back();
    if (n.use_count() == 1) {
      for (Edge& e : n->next)
        if (e.node) stack.push_back(std::move(e.node));
      n->next.clear();
    }
  }
}

// ---- SavedTensor -----------------------------------------------------------------------------

SavedTensor::SavedTensor(const Tensor& t) {
  if (t.defined()) {
    tensor_ = t.detach();
    version_ = t.impl()->storage->version;
  }
}

const Tensor& SavedTensor::get(const char* op) const {
  if (tensor_.defined()) {
    check(tensor_.impl()->storage->version == version_, "backward", "a tensor saved by '", op,
          "' was modified in place after the forward pass (", tensor_.str(),
          "); gradients would be wrong. Recompute the forward, or clone() "
          "before writing in place");
  }
  return tensor_;
}

// ---- GradSink --------------------------------------------------------------------------------

bool GradSink::needs(int i) const {
  return i >= 0 && static_cast<std::size_t>(i) < node_.next.size() &&
         node_.next[static_cast<std::size_t>(i)].active();
}

namespace {

// The slot's memory, allocated on its first write.
void ensure(GradSink::Slot& s) {
  if (!s.buf->defined()) *s.buf = Tensor::empty(*s.shape, {.dtype = s.dtype, .device = s.device});
}

// A private copy of a borrowed buffer, so it can be written.
void own(GradSink::Slot& s) {
  if (s.borrowed && *s.borrowed) {
    *s.buf = s.buf->detach().clone();
    *s.borrowed = false;
  }
}

}  // namespace

Tensor& GradSink::grad(int i) {
  check(needs(i), node_.name, "backward asked for the gradient of input ", i,
        ", which needs none (internal error)");
  Slot s = resolver_(node_.next[static_cast<std::size_t>(i)]);
  if (*s.zero) {
    ensure(s);
    s.buf->zero_();
    *s.zero = false;
  }
  own(s);
  return *s.buf;
}

Tensor& GradSink::grad_out(int i, bool* overwrite) {
  check(needs(i), node_.name, "backward asked for the gradient of input ", i,
        ", which needs none (internal error)");
  Slot s = resolver_(node_.next[static_cast<std::size_t>(i)]);
  *overwrite = *s.zero;
  *s.zero = false;
  if (*overwrite) ensure(s);
  if (!*overwrite) own(s);
  if (*overwrite && s.borrowed) *s.borrowed = false;
  return *s.buf;
}

static void check_grad_shape(const Node& node, const Edge& e, const Tensor& g) {
  const Shape& want = e.node ? e.node->out_shape : e.leaf->shape;
  check(g.shape() == want, node.name, "backward produced a gradient of shape ", g.shape().str(),
        " for an input of shape ", want.str(), " (internal error)");
}

void GradSink::accumulate(int i, const Tensor& g) {
  if (!needs(i) || !g.defined()) return;
  const Edge& e = node_.next[static_cast<std::size_t>(i)];
  check_grad_shape(node_, e, g);
  Slot s = resolver_(e);
  if (*s.zero) {
    // First contribution: a private copy (g may alias a tensor someone else owns, and later
    // contributions are added into this buffer in place).
    ensure(s);
    s.buf->copy_(g);
    *s.zero = false;
    if (s.borrowed) *s.borrowed = false;
  } else {
    own(s);
    s.buf->add_(g);
  }
}

void GradSink::adopt(int i, const Tensor& g) {
  if (!needs(i) || !g.defined()) return;
  const Edge& e = node_.next[static_cast<std::size_t>(i)];
  if (e.leaf) {
    accumulate(i, g);
    return;
  }
  check_grad_shape(node_, e, g);
  Slot s = resolver_(e);
  if (*s.zero) {
    *s.buf = g.detach();
    *s.zero = false;
    *s.borrowed = true;
  } else {
    own(s);
    s.buf->add_(g);
  }
}

// ---- recording -------------------------------------------------------------------------------

bool needs_graph(std::initializer_list<const Tensor*> inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

bool needs_graph(const std::vector<Tensor>& inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

static Edge edge_of(const Tensor& t) {
  Edge e;
  if (!t.defined() || !t.requires_grad()) return e;
  Meta& m = t.ensure_meta();
  if (m.grad_fn) {
    e.node = m.grad_fn;
  } else {
    // Leaves own their Meta through the impl; share it so the gradient lands there.
    e.leaf = t.impl()->meta;
  }
  return e;
}

template <class Inputs>
static void record_impl(const char* name, Tensor& out, const Inputs& inputs, BackwardFn backward) {
  auto node = std::make_shared<Node>();
  node->name = name;
  for (const auto& in : inputs) {
    if constexpr (std::is_pointer_v<std::decay_t<decltype(in)>>)
      node->next.push_back(in ? edge_of(*in) : Edge{});
    else
      node->next.push_back(edge_of(in));
  }
  node->backward = std::move(backward);
  node->out_shape = out.shape();
  node->out_dtype = out.dtype();
  node->out_device = out.device();
  Meta& m = out.ensure_meta();
  m.requires_grad = true;
  m.grad_fn = std::move(node);
}

void record(const char* name, Tensor& out, std::initializer_list<const Tensor*> inputs,
            BackwardFn backward) {
  if (!needs_graph(inputs)) return;
  record_impl(name, out, inputs, std::move(backward));
}

void record(const char* name, Tensor& out, const std::vector<Tensor>& inputs, BackwardFn backward) {
  if (!needs_graph(inputs)) return;
  record_impl(name, out, inputs, std::move(backward));
}

// ---- the engine ------------------------------------------------------------------------------

static void check_not_released(const Node& n) {
  check(!n.released, "backward", "the graph through '", n.name,
        "' was already freed by an earlier backward(); recompute the forward pass, or detach() "
        "the tensor to use its value as a constant");
}

static GradSink::Slot leaf_slot(Meta& leaf) {
  if (!leaf.grad.defined()) {
    leaf.grad = Tensor::empty(leaf.shape, {.dtype = leaf.dtype, .device = leaf.device});
    leaf.grad_zero = true;
  }
  return {.buf = &leaf.grad,
          .zero = &leaf.grad_zero,
          .borrowed = nullptr,
          .shape = &leaf.shape,
          .dtype = leaf.dtype,
          .device = leaf.device};
}

namespace {
struct UnitSeed {
  Shape shape;
  DType dtype;
  Device device;
  Tensor ones;
};
thread_local std::vector<UnitSeed> g_unit_seeds;

const Tensor& unit_seed(const Tensor& root) {
  for (const UnitSeed& u : g_unit_seeds)
    if (u.shape == root.shape() && u.dtype == root.dtype() && u.device == root.device())
      return u.ones;
  g_unit_seeds.push_back({.shape = root.shape(),
                          .dtype = root.dtype(),
                          .device = root.device(),
                          .ones = Tensor::ones(root.shape(), root.options())});
  return g_unit_seeds.back().ones;
}
}  // namespace

bool is_unit_seed(const Tensor& t) {
  if (!t.defined()) return false;
  for (const UnitSeed& u : g_unit_seeds)
    if (u.ones.impl()->storage == t.impl()->storage) return true;
  return false;
}

void run_backward(const Tensor& root, const Tensor& grad) {
  check(root.defined(), "backward", "called on an undefined tensor");
  check(root.requires_grad(), "backward",
        "the tensor does not require grad: no input of the computation that produced it "
        "requires grad (or it was computed under NoGradGuard)");
  Tensor seed;
  if (grad.defined()) {
    check(grad.shape() == root.shape(), "backward", "gradient shape ", grad.shape().str(),
          " does not match the tensor's shape ", root.shape().str());
    check(grad.device() == root.device() && grad.dtype() == root.dtype(), "backward", "gradient ",
          grad.str(), " does not match the tensor ", root.str());
    seed = grad;
  } else {
    check(root.numel() == 1, "backward",
          "backward() without a gradient needs a one-element tensor, got shape ",
          root.shape().str(), "; pass a gradient of that shape");
    seed = unit_seed(root);
  }

  NoGradGuard no_grad;
  Meta& rm = *root.meta();
  if (!rm.grad_fn) {  // a leaf: backward of the identity
    GradSink::Slot s = leaf_slot(rm);
    if (*s.zero)
      s.buf->copy_(seed);
    else
      s.buf->add_(seed);
    *s.zero = false;
    return;
  }

  // 1. Collect the reachable nodes and count, for each, the edges that lead into it.
  std::unordered_map<Node*, int> deps;
  std::vector<Node*> stack{rm.grad_fn.get()};
  deps[rm.grad_fn.get()] = 0;
  std::vector<Node*> order;
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    check_not_released(*n);
    order.push_back(n);
    for (const Edge& e : n->next) {
      if (!e.node) continue;
      auto [it, fresh] = deps.try_emplace(e.node.get(), 0);
      ++it->second;
      if (fresh) stack.push_back(e.node.get());
    }
  }

  // 2. Pending gradients of the nodes' outputs, filled by their consumers: zero (and unallocated)
  //    until their first write, which overwrites them.
  struct Pending {
    Tensor buf;
    bool zero = true;
    bool borrowed = false;
  };
  std::unordered_map<Node*, Pending> pending;
  // The root's gradient: the given one or the unit seed, borrowed (never written).
  pending[rm.grad_fn.get()] = {.buf = seed, .zero = false, .borrowed = true};
  auto resolver = [&pending](const Edge& e) -> GradSink::Slot {
    if (e.leaf) return leaf_slot(*e.leaf);
    Pending& p = pending[e.node.get()];
    return {.buf = &p.buf,
            .zero = &p.zero,
            .borrowed = &p.borrowed,
            .shape = &e.node->out_shape,
            .dtype = e.node->out_dtype,
            .device = e.node->out_device};
  };
  // 3. Kahn's algorithm from the root: a node runs once every consumer has contributed.
  std::vector<Node*> ready{rm.grad_fn.get()};
  std::vector<std::shared_ptr<Node>> keep_alive;  // nodes stay valid while their grads flow
  keep_alive.push_back(rm.grad_fn);
  while (!ready.empty()) {
    Node* n = ready.back();
    ready.pop_back();
    auto it = pending.find(n);
    Tensor dout;
    if (it != pending.end() && !it->second.zero) {
      dout = it->second.buf;
      pending.erase(it);
    } else {
      // No consumer wrote it: it is zero, and the closure may still have work (terms of its own,
      // such as the KL's in the sampling op).
      if (it != pending.end()) pending.erase(it);
      dout = Tensor::zeros(n->out_shape, {.dtype = n->out_dtype, .device = n->out_device});
    }
    if (n->backward) {
      GradSink sink(*n, resolver);
      n->backward(dout, sink);
    }
    for (Edge& e : n->next) {
      if (!e.node) continue;
      if (--deps[e.node.get()] == 0) {
        keep_alive.push_back(e.node);
        ready.push_back(e.node.get());
      }
    }
  }

  // 4. Free the graph: closures (and the tensors they saved) and edges go; the nodes stay as
  //    tombstones so that a second backward through them reports a clear error.
  for (Node* n : order) {
    n->backward = nullptr;
    n->released = true;
  }
  for (Node* n : order) n->next.clear();
}

}  // namespace autograd
}  // namespace latent
