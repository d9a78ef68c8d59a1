// Define-by-run reverse-mode autograd.
//
// An op whose inputs need gradients records one Node holding a backward closure. backward()
// walks the nodes reachable from the root in reverse topological order (iteratively), hands each
// closure the gradient of its output and a GradSink through which it accumulates (+=) the
// gradients of its inputs, then frees the graph. The gradient of an intermediate result is
// allocated when first written (none for one that is handed over, GradSink::adopt) and freed once
// its node has run. A gradient buffer is logically zero until its first write, which overwrites it
// (a GEMM with beta 0, a kernel that stores instead of adding): no fill kernel runs for it. Only a
// closure that can only add asks for a zero-filled buffer (GradSink::grad), and pays the fill.
// Leaves work the same way: zero_grad() marks a gradient zero without touching its memory; grad()
// fills it when it is read in that state. Closures capture SavedTensor (detached data plus the
// storage version at save time), never the graph.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "core/tensor.h"

namespace latent {

// While alive, ops record nothing (evaluation, optimizer steps). Nests; thread-local.
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// Whether ops currently record the graph.
bool grad_enabled();

namespace autograd {

struct Node;

// Autograd state of a tensor. A leaf that requires grad owns its accumulated gradient here; a
// non-leaf points at the node that produced it.
struct Meta {
  bool requires_grad = false;
  Tensor grad;
  // grad is logically zero: its memory holds nothing meaningful until the next write (which
  // overwrites) or read (Tensor::grad() fills it then).
  bool grad_zero = false;
  std::shared_ptr<Node> grad_fn;
  // The tensor's shape/dtype/device, so gradients can be allocated without its data.
  Shape shape;
  DType dtype = DType::f32;
  Device device;
};

// Where the gradient of one input goes: the node that produced it, or a leaf's Meta.
struct Edge {
  std::shared_ptr<Node> node;
  std::shared_ptr<Meta> leaf;
  bool active() const { return node != nullptr || leaf != nullptr; }
};

class GradSink;
using BackwardFn = std::function<void(const Tensor& dout, GradSink& sink)>;

struct Node {
  const char* name = "";
  std::vector<Edge> next;  // one per input, inactive where the input needs no gradient
  BackwardFn backward;
  Shape out_shape;
  DType out_dtype = DType::f32;
  Device out_device;
  bool released = false;  // set once a backward() pass has freed this node

  // Destroys long chains without recursion.
  ~Node();
};

// Handed to a backward closure: the gradient buffers of its inputs.
class GradSink {
 public:
  // Whether input i needs a gradient (skip the work otherwise).
  bool needs(int i) const;
  // The accumulation buffer of input i: zero-filled on first use, with the input's shape, dtype
  // and device. Backward kernels add (+=) into it.
  Tensor& grad(int i);
  // grad(i) += g (g may have been computed by ops). Adopts g without copying when possible.
  void accumulate(int i, const Tensor& g);

  // The buffer of input i for a kernel that writes all of it: *overwrite is true when nothing was
  // written to it yet in this pass (its contents are then undefined, and the kernel must store,
  // e.g. GEMM beta 0), false when the kernel must add (+=).
  Tensor& grad_out(int i, bool* overwrite);
  // Hands g over as input i's gradient: when nothing was written yet it becomes the buffer as is
  // (no copy, no kernel; g must not be written by anyone afterwards), otherwise it is added.
  // Leaves always receive a copy (their gradients live in memory of their own).
  void adopt(int i, const Tensor& g);

  // Engine side: where a gradient lives, and whether it is still logically zero (its memory
  // then holds nothing meaningful) or borrowed (adopted: copied before anyone writes into it).
  struct Slot {
    Tensor* buf = nullptr;  // undefined until something is written (allocated then)
    bool* zero = nullptr;
    bool* borrowed = nullptr;  // null for leaves
    const Shape* shape = nullptr;
    DType dtype = DType::f32;
    Device device;
  };
  using Resolver = std::function<Slot(const Edge&)>;
  GradSink(const Node& node, Resolver resolver) : node_(node), resolver_(std::move(resolver)) {}

 private:
  const Node& node_;
  Resolver resolver_;
};

// A tensor kept for backward: its data, detached from the graph, and the storage version at the
// time it was saved. get() throws latent::Error naming the op when the data was modified in
// place since then.
class SavedTensor {
 public:
  SavedTensor() = default;
  SavedTensor(const Tensor& t);  // NOLINT: implicit on purpose, closures capture by value
  const Tensor& get(const char* op) const;
  bool defined() const { return tensor_.defined(); }

 private:
  Tensor tensor_;
  std::uint64_t version_ = 0;
};

// True when grad mode is on and any input requires a gradient: the op must record a node.
bool needs_graph(std::initializer_list<const Tensor*> inputs);
bool needs_graph(const std::vector<Tensor>& inputs);

// Records `out` as produced by op `name` from `inputs` with the given backward closure, when
// needs_graph(inputs). Call after the forward has written `out`.
void record(const char* name, Tensor& out, std::initializer_list<const Tensor*> inputs,
            BackwardFn backward);
void record(const char* name, Tensor& out, const std::vector<Tensor>& inputs, BackwardFn backward);

// The engine: Tensor::backward() calls this.
void run_backward(const Tensor& root, const Tensor& grad);

// The gradient backward() starts from when given none: a one-element tensor of ones, made once
// per shape, dtype and device and shared by every pass (never written). A closure that sees it as
// its output's gradient knows that gradient is exactly 1 without reading memory.
bool is_unit_seed(const Tensor& t);

}  // namespace autograd
}  // namespace latent
