// Every op of the op-case table (tests/op_cases.h) on the GPU: first checked against the CPU
// reference at the benchmark shape, then timed with CUDA events. One JSON line per measurement:
//   {"bench":"kernel","case":"dense/relu","shape":"128x784,512x784,512","pass":"forward",
//    "device":"NVIDIA H100 80GB HBM3","commit":"...","median_ms":...,"iters":...,"bytes":...,
//    "gb_s":...,"tflops":...,"peak_fraction":...,"peak":"fp32"|"memory"}
// and, for the dense layer's forward, our bias+activation epilogue against cuBLASLt's
// ("case":"dense_epilogue/relu","epilogue":"own"|"cublaslt").
//
// Shapes: a case's bench_inputs() when it has them (realistic training shapes), else inputs(4096).
// "shape" lists the inputs' shapes, "x"-separated dimensions, ","-separated inputs ("scalar" for
// a 0-D input).
//
// Validation: the CUDA forward and every input gradient (backward from a fixed seed gradient in
// [0.5, 1.5]) within the case's atol/rtol of the CPU's, as in tests/cuda/parity_test.cpp. A case
// that fails prints {"bench":"kernel","case":...,"error":...} and is not timed; the binary then
// exits with status 1 after the other cases. A family without a CUDA kernel prints
// {"bench":"kernel","case":...,"skipped":...}.
//
// Timing (bench_util.h, time_cuda): warm-up, then the median over `runs` samples of back-to-back
// calls between two events on the device's stream. "forward" runs the op on inputs that need no
// gradient, with autograd off (the kernels alone, plus the op's host work and allocations from the
// pool); "forward_backward" runs the op on inputs that need gradients and calls backward() with
// the seed gradient (gradients accumulate into the inputs, as in training).
//
// Bytes (the traffic an ideal implementation cannot avoid, a lower bound):
//   forward            sum of the inputs' sizes + the output's size
//   backward           the output gradient + the inputs again (the backward reads what it saved)
//                      + one gradient per input that needs one
//   forward_backward   forward + backward (about twice the forward)
// gb_s = bytes / median time. Flops only for matrix products (dense/*, matmul/*): 2 M N K for the
// forward, 2 M N K more for each of the two operands' gradients. peak_fraction = tflops / the
// FP32 peak where flops are counted, else gb_s / the memory bandwidth (bench_util.h: GpuInfo).
//
// Without a GPU (or without the CUDA backend): one line {"bench":"kernel","skipped":"no CUDA GPU"}
// and status 0. Options: --quick (fewer samples), --filter TEXT (cases whose name contains TEXT),
// --list (case names and benchmark shapes, no GPU needed).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "bench_util.h"
#include "core/latent.h"
#include "kernels/dense.h"
#include "op_cases.h"

namespace {

using namespace latent;
using bench::JsonLine;
using testing::InputSpec;
using testing::OpCase;

constexpr std::int64_t kDefaultRows = 4096;
constexpr std::uint64_t kSeed = 77;

struct Options {
  bool quick = false;
  bool list = false;
  std::string filter;
};

std::string dims_text(const Shape& s) {
  if (s.ndim() == 0) return "scalar";
  std::string out;
  for (int i = 0; i < s.ndim(); ++i) out += (i ? "x" : "") + std::to_string(s[i]);
  return out;
}

std::string shapes_text(const std::vector<InputSpec>& specs) {
  std::string out;
  for (std::size_t i = 0; i < specs.size(); ++i) out += (i ? "," : "") + dims_text(specs[i].shape);
  return out;
}

std::vector<InputSpec> bench_specs(const OpCase& c) {
  return c.bench_inputs ? c.bench_inputs() : c.inputs(kDefaultRows);
}

// The case with its inputs fixed at the benchmark shape, so testing::make_inputs draws them.
OpCase at_bench_shape(const OpCase& c) {
  OpCase b = c;
  b.inputs = [specs = bench_specs(c)](std::int64_t) { return specs; };
  return b;
}

std::int64_t bytes_of(const Tensor& t) {
  return t.numel() * static_cast<std::int64_t>(dtype_size(t.dtype()));
}

// |gpu - cpu| <= atol + rtol * |cpu| everywhere; with `nonzero`, also a reference that is not all
// zeros (a forward kernel that writes nothing into fresh pool memory could pass against one).
// Gradients skip that rule: they accumulate into zero-filled buffers, so a backward that writes
// nothing already fails against any nonzero reference, and some gradients are zero by the math
// (activation_grad of relu, the contractive penalty of relu, w.r.t. the pre-activation).
// Empty on success, else what is wrong.
std::string compare(const Tensor& gpu, const Tensor& cpu, double atol, double rtol,
                    const std::string& label, bool nonzero = true) {
  const auto g = gpu.to_vector<double>();
  const auto c = cpu.to_vector<double>();
  if (g.size() != c.size()) return label + ": sizes differ";
  bool all_zero = true;
  for (std::size_t i = 0; i < c.size(); ++i) {
    all_zero = all_zero && c[i] == 0.0;
    if (!(std::fabs(g[i] - c[i]) <= atol + rtol * std::fabs(c[i])))
      return label + " element " + std::to_string(i) + ": gpu " + std::to_string(g[i]) + " cpu " +
             std::to_string(c[i]);
  }
  if (nonzero && all_zero && !c.empty()) return label + ": the CPU reference is all zeros";
  return {};
}

bool no_kernel_yet(const Error& e) {
  return std::string(e.what()).find("no CUDA kernel yet") != std::string::npos;
}

// Flops of one forward when the case is a matrix product: 2 M N K with the output [M, N] and
// the first operand holding M K elements (x [N, D] of dense, op(a) of matmul).
std::optional<double> forward_flops(const std::string& name, const std::vector<Tensor>& in,
                                    const Tensor& out) {
  if (name.rfind("dense/", 0) != 0 && name.rfind("matmul/", 0) != 0) return std::nullopt;
  if (out.ndim() != 2 || out.dim(0) == 0) return std::nullopt;
  const double k = double(in[0].numel()) / double(out.dim(0));
  return 2.0 * double(out.numel()) * k;
}

class Runner {
 public:
  Runner(const Options& opt, bench::GpuInfo gpu) : opt_(opt), gpu_(std::move(gpu)) {
    timing_ = opt.quick ? bench::TimingOptions{.warmup = 2, .runs = 5, .min_sample_ms = 0.2}
                        : bench::TimingOptions{.warmup = 3, .runs = 21, .min_sample_ms = 1.0};
  }

  int failures() const { return failures_; }

  void run_case(const OpCase& c);
  void run_dense_epilogues();

 private:
  JsonLine line(const std::string& name, const std::string& shape) const {
    JsonLine j;
    j.str("bench", "kernel").str("case", name).str("shape", shape);
    return j;
  }
  void fail(const std::string& name, const std::string& shape, const std::string& what) {
    ++failures_;
    line(name, shape)
        .str("device", gpu_.name)
        .str("commit", bench::commit())
        .str("error", what)
        .print();
    std::fprintf(stderr, "bench_kernels: %s: %s\n", name.c_str(), what.c_str());
  }
  void report(JsonLine j, const std::string& pass, const bench::Timing& t, std::int64_t bytes,
              std::optional<double> flops) const;

  Options opt_;
  bench::GpuInfo gpu_;
  bench::TimingOptions timing_;
  Device dev_ = Device::cuda(0);
  int failures_ = 0;
};

void Runner::report(JsonLine j, const std::string& pass, const bench::Timing& t, std::int64_t bytes,
                    std::optional<double> flops) const {
  const double seconds = t.median_ms * 1e-3;
  const double gb_s = double(bytes) / seconds / 1e9;
  std::optional<double> tflops;
  if (flops) tflops = *flops / seconds / 1e12;
  const double fraction = tflops ? *tflops / gpu_.peak_fp32_tflops : gb_s / gpu_.peak_gb_s;
  j.str("pass", pass)
      .str("device", gpu_.name)
      .str("commit", bench::commit())
      .num("median_ms", t.median_ms, 5)
      .num("min_ms", t.min_ms, 5)
      .integer("iters", t.iters)
      .integer("runs", t.runs)
      .integer("bytes", bytes)
      .num("gb_s", gb_s, 1)
      .num_or_null("tflops", tflops, 3)
      .num("peak_fraction", fraction, 4)
      .str("peak", tflops ? "fp32" : "memory")
      .print();
}

void Runner::run_case(const OpCase& c) {
  const OpCase b = at_bench_shape(c);
  const std::string shape = shapes_text(b.inputs(0));
  const Device cpu = Device::cpu();

  // Validation: forward and gradients against the CPU at this very shape.
  std::vector<Tensor> gpu_in;
  Tensor dy;  // the seed gradient, on the GPU
  try {
    auto cpu_in = testing::make_inputs(b, 0, DType::f32, cpu, kSeed, c.differentiable);
    gpu_in = testing::make_inputs(b, 0, DType::f32, dev_, kSeed, c.differentiable);
    Tensor gpu_out;
    try {
      gpu_out = b.fn(gpu_in);
    } catch (const Error& e) {
      if (!no_kernel_yet(e)) throw;
      line(c.name, shape)
          .str("device", gpu_.name)
          .str("commit", bench::commit())
          .str("skipped", e.what())
          .print();
      return;
    }
    Tensor cpu_out = b.fn(cpu_in);
    std::string bad = compare(gpu_out, cpu_out, c.atol, c.rtol, "forward");
    if (c.differentiable && bad.empty()) {
      Generator wg(5);
      Tensor w = Tensor::rand(cpu_out.shape(), wg, {}, 0.5, 1.5);
      dy = w.to(dev_);
      cpu_out.backward(w);
      gpu_out.backward(dy);
      for (std::size_t i = 0; i < cpu_in.size() && bad.empty(); ++i) {
        if (!cpu_in[i].requires_grad()) continue;
        const Tensor gc = cpu_in[i].grad(), gg = gpu_in[i].grad();
        if (gc.defined() != gg.defined()) {
          bad = "gradient of input " + std::to_string(i) + " defined on one backend only";
        } else if (gc.defined()) {
          bad = compare(gg, gc, c.atol, c.rtol, "gradient of input " + std::to_string(i),
                        /*nonzero=*/false);
        }
      }
    }
    if (!bad.empty()) return fail(c.name, shape, bad);
  } catch (const std::exception& e) {
    return fail(c.name, shape, e.what());
  }

  // Timing.
  try {
    auto fwd_in = testing::make_inputs(b, 0, DType::f32, dev_, kSeed, false);
    std::int64_t in_bytes = 0, grad_bytes = 0;
    for (const Tensor& t : gpu_in) {
      in_bytes += bytes_of(t);
      if (t.requires_grad()) grad_bytes += bytes_of(t);
    }
    Tensor out;
    {
      NoGradGuard no_grad;
      out = b.fn(fwd_in);
      const bench::Timing t = bench::time_cuda(
          dev_, [&] { b.fn(fwd_in); }, timing_);
      report(line(c.name, shape), "forward", t, in_bytes + bytes_of(out),
             forward_flops(c.name, fwd_in, out));
    }
    if (c.differentiable) {
      const std::int64_t fwd_bytes = in_bytes + bytes_of(out);
      const std::int64_t bwd_bytes = bytes_of(out) + in_bytes + grad_bytes;
      std::optional<double> flops = forward_flops(c.name, gpu_in, out);
      if (flops) {
        int operands = 0;
        for (std::size_t i = 0; i < 2 && i < gpu_in.size(); ++i)
          operands += gpu_in[i].requires_grad();
        *flops *= 1 + operands;
      }
      const bench::Timing t = bench::time_cuda(
          dev_, [&] { b.fn(gpu_in).backward(dy); }, timing_);
      report(line(c.name, shape), "forward_backward", t, fwd_bytes + bwd_bytes, flops);
    }
  } catch (const std::exception& e) {
    fail(c.name, shape, std::string("while timing: ") + e.what());
  }
}

// The dense forward y = act(x W^T + b) with our epilogue (cuBLAS GEMM, then the fused
// bias+activation kernel) and with cuBLASLt's bias/relu epilogue in the GEMM itself.
void Runner::run_dense_epilogues() {
#if LATENT_WITH_CUDA
  using kernels::cuda::DenseEpilogue;
  constexpr std::int64_t d = 784, h = 512;
  const std::pair<const char*, ActParams> acts[] = {{"identity", {Act::identity}},
                                                    {"relu", {Act::relu}}};
  const std::int64_t batches[] = {128, 1024, 4096};
  for (const auto& [act_name, act] : acts) {
    for (const std::int64_t n : batches) {
      const std::string name = std::string("dense_epilogue/") + act_name;
      const std::string shape = std::to_string(n) + "x" + std::to_string(d) + "," +
                                std::to_string(h) + "x" + std::to_string(d) + "," +
                                std::to_string(h);
      if (!opt_.filter.empty() && name.find(opt_.filter) == std::string::npos) continue;
      // Values as in the op table's dense benchmark: positive, no cancellation.
      Generator gen(3);
      const Tensor x = Tensor::rand({n, d}, gen, {}, 0.5, 1.0);
      const Tensor w = Tensor::rand({h, d}, gen, {}, 0.0, 4.0 / d);
      const Tensor bias = Tensor::rand({h}, gen, {}, -0.2, 0.2);
      const Tensor ref = dense(x, w, bias, act);
      const Tensor gx = x.to(dev_), gw = w.to(dev_), gb = bias.to(dev_);
      for (const DenseEpilogue epi : {DenseEpilogue::own, DenseEpilogue::cublaslt}) {
        const char* epi_name = epi == DenseEpilogue::own ? "own" : "cublaslt";
        try {
          NoGradGuard no_grad;
          kernels::cuda::set_dense_epilogue(epi);
          const std::int64_t lt_before = kernels::cuda::dense_cublaslt_forwards();
          const std::string bad = compare(dense(gx, gw, gb, act), ref, 1e-5, 1e-4, "forward");
          if (!bad.empty()) {
            fail(name, shape, std::string(epi_name) + ": " + bad);
            continue;
          }
          // Asked for cuBLASLt but it had no algorithm (or the bias was misaligned): the line
          // says which path was timed.
          if (epi == DenseEpilogue::cublaslt &&
              kernels::cuda::dense_cublaslt_forwards() == lt_before)
            epi_name = "own (cuBLASLt offered no algorithm)";
          const bench::Timing t = bench::time_cuda(
              dev_, [&] { dense(gx, gw, gb, act); }, timing_);
          JsonLine j = line(name, shape);
          j.str("epilogue", epi_name);
          report(j, "forward", t, bytes_of(gx) + bytes_of(gw) + bytes_of(gb) + n * h * 4,
                 2.0 * double(n) * double(d) * double(h));
        } catch (const std::exception& e) {
          fail(name, shape, std::string(epi_name) + ": " + e.what());
        }
      }
      kernels::cuda::set_dense_epilogue(DenseEpilogue::own);
    }
  }
#endif
}

int usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s [--quick] [--filter TEXT] [--list]\n", argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      opt.quick = true;
    } else if (std::strcmp(argv[i], "--list") == 0) {
      opt.list = true;
    } else if (std::strcmp(argv[i], "--filter") == 0 && i + 1 < argc) {
      opt.filter = argv[++i];
    } else {
      return usage(argv[0]);
    }
  }
  auto selected = [&](const OpCase& c) {
    return opt.filter.empty() || c.name.find(opt.filter) != std::string::npos;
  };
  if (opt.list) {
    for (const OpCase& c : testing::op_cases())
      if (selected(c)) std::printf("%s %s\n", c.name.c_str(), shapes_text(bench_specs(c)).c_str());
    return 0;
  }
  if (!cuda_available()) {
    JsonLine()
        .str("bench", "kernel")
        .str("skipped", "no CUDA GPU")
        .str("commit", bench::commit())
        .print();
    return 0;
  }
  try {
    Runner runner(opt, bench::gpu_info(0));
    for (const OpCase& c : testing::op_cases())
      if (selected(c)) runner.run_case(c);
    runner.run_dense_epilogues();
    if (runner.failures() > 0) {
      std::fprintf(stderr, "bench_kernels: %d case(s) failed validation or timing\n",
                   runner.failures());
      return 1;
    }
  } catch (const std::exception& e) {
    JsonLine().str("bench", "kernel").str("error", e.what()).str("commit", bench::commit()).print();
    std::fprintf(stderr, "bench_kernels: %s\n", e.what());
    return 1;
  }
  return 0;
}
