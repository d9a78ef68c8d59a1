#!/usr/bin/env python3
"""Training throughput of the VAE and the AE (784-512-256-32, Bernoulli) in PyTorch, eager,
as one CUDA graph and with torch.compile, side by side with bench/bench_train.cpp: the same
configurations (batch 128 and 1024 in float32, batch 1024 with TF32 GEMMs), the same objective,
Adam (lr 1e-3), the same data, the same timing (a loss-falls check first, then the median over
samples of back-to-back steps between two CUDA events) and the same JSON fields, with
"bench":"pytorch_train" and "mode": "eager", "graph" or "compile". "graph" is PyTorch's own
whole-step capture (torch.cuda.graph over the forward, the backward and a capturable Adam; each
step copies its batch into the captured input and replays), the peer of latent's replayed step.
One line per configuration on stdout; progress on stderr.

    python3 bench/pytorch/train.py [--quick] [--modes eager,graph,compile] [--models vae,ae]
                                   [--configs 128,1024,1024-tf32,4096,65536] [--commit HASH]

With --cpu the same models train on the CPU (batch 128 and 1024 unless --configs says otherwise,
fp32 only) on --threads threads (default: torch's, i.e. OMP_NUM_THREADS), timed with the host
clock as bench_train --cpu does; "device" is "cpu: <model>" as latent writes it, and "threads"
and "blas" (torch's BLAS) are added.

Without torch or without a GPU (and no --cpu): one line {"bench":"pytorch_train","skipped":...},
status 0. A configuration that fails (the loss does not fall, torch.compile fails) prints a line with
"error" and the script exits with status 1 after the others.
"""

import argparse
import gzip
import json
import math
import os
import shutil
import subprocess
import sys
import time

POOL = 8  # batches the steps cycle over, already on the GPU
DATA_DIRS = (os.environ.get("LATENT_FASHION_MNIST", ""), "/usr/share/datasets/fashion-mnist")


def emit(fields):
    print(json.dumps(fields, separators=(",", ":")), flush=True)


def log(*args):
    print("pytorch_train:", *args, file=sys.stderr, flush=True)


def load_images(rows):
    """The first `rows` Fashion-MNIST training images as float32 [rows, 784] in [0, 1], and
    "fashion-mnist"; else synthetic stripes and "synthetic" (bench_train.cpp's formula)."""
    import numpy as np

    for folder in DATA_DIRS:
        if not folder:
            continue
        for name, opener in (("train-images-idx3-ubyte.gz", gzip.open),
                             ("train-images-idx3-ubyte", open)):
            path = os.path.join(folder, name)
            if not os.path.exists(path):
                continue
            with opener(path, "rb") as f:
                header = f.read(16)
                magic, count, h, w = (int.from_bytes(header[i:i + 4], "big") for i in (0, 4, 8, 12))
                if magic != 2051 or h * w != 784 or count < 1:
                    continue
                have = min(rows, count)
                data = np.frombuffer(f.read(have * 784), dtype=np.uint8).reshape(have, 784)
            # Wrapping around when more rows are asked for than the file has (large batches), as
            # bench_train.cpp does.
            data = np.resize(data, (rows, 784))
            return data.astype(np.float32) / 255.0, "fashion-mnist"
    rng = np.random.default_rng(0)
    fr = rng.integers(1, 4, size=(rows, 1, 1))
    fc = rng.integers(1, 4, size=(rows, 1, 1))
    phase = 2 * math.pi * rng.random((rows, 1, 1))
    r = np.arange(28).reshape(1, 28, 1)
    c = np.arange(28).reshape(1, 1, 28)
    img = 0.5 + 0.5 * np.sin(2 * math.pi * fr * r / 28 + phase) * np.cos(2 * math.pi * fc * c / 28)
    return img.reshape(rows, 784).astype(np.float32), "synthetic"


def fp32_peak_tflops(torch):
    """SMs * FP32 lanes per SM * 2 * max SM clock, as bench_util.cpp computes it; the clock from
    nvidia-smi (torch does not report it). None when unknown."""
    props = torch.cuda.get_device_properties(0)
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", "-i", "0", "--query-gpu=clocks.max.sm", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=30, check=True).stdout.strip()
        mhz = float(out.splitlines()[0])
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None
    wide = props.major > 8 or (props.major == 8 and props.minor >= 6)
    return props.multi_processor_count * (128 if wide else 64) * 2 * mhz * 1e6 / 1e12


def cpu_name():
    """The "model name" of /proc/cpuinfo, as bench_util.cpp reads it."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def make_adam(torch, params, capturable=False):
    """Adam with the fused kernel (one kernel for all parameters, as latent's; on the CPU too in
    recent torch) when this torch has it, else the default (foreach) implementation. capturable:
    its step count on the GPU, so that a CUDA graph can hold the step."""
    params = list(params)
    extra = {"capturable": True} if capturable else {}
    try:
        return torch.optim.Adam(params, lr=1e-3, fused=True, **extra), "fused"
    except (TypeError, RuntimeError, ValueError):
        return torch.optim.Adam(params, lr=1e-3, **extra), "default"


def capture_step(torch, model, opt, static_x):
    """The whole training step as one CUDA graph (PyTorch's documented whole-network capture):
    a few steps on a side stream create the gradients and Adam's state, then one step is
    captured with the gradients unset, so that every replay writes them afresh. Returns the graph
    and its loss tensor (rewritten by every replay)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            model(static_x).backward()
            opt.step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        static_loss = model(static_x)
        static_loss.backward()
        opt.step()
    return graph, static_loss


def time_steps_cpu(step, warmup, runs, min_sample_ms=100.0, max_iters=1000):
    """The same on the host clock (CPU steps are synchronous), as bench_util.cpp's time_host."""
    for _ in range(warmup):
        step()

    def sample(iters):
        t0 = time.perf_counter()
        for _ in range(iters):
            step()
        return (time.perf_counter() - t0) * 1e3 / iters

    one = sample(1)
    iters = max_iters if one <= 0 else int(min(max(math.ceil(min_sample_ms / one), 1), max_iters))
    per_step = sorted(sample(iters) for _ in range(runs))
    return per_step[len(per_step) // 2], per_step[0], iters, runs


def time_steps(torch, step, warmup, runs, min_sample_ms=50.0, max_iters=1000):
    """Median per-step time (ms) over `runs` samples, each enough back-to-back steps to last
    about min_sample_ms, between two CUDA events on the current stream."""
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def sample(iters):
        start.record()
        for _ in range(iters):
            step()
        stop.record()
        stop.synchronize()
        return start.elapsed_time(stop) / iters

    one = sample(1)
    iters = max_iters if one <= 0 else int(min(max(math.ceil(min_sample_ms / one), 1), max_iters))
    per_step = sorted(sample(iters) for _ in range(runs))
    return per_step[len(per_step) // 2], per_step[0], iters, runs


def run_config(torch, models, cfg, images, source, args, common):
    mode, model_name, batch, tf32 = cfg
    fields = {"bench": "pytorch_train", "mode": mode, "model": model_name,
              "shape": "784-512-256-32", "likelihood": "bernoulli", "batch": batch,
              "math": "tf32" if tf32 else "fp32", **common}
    if not args.cpu:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.manual_seed(0)
    if mode == "compile":
        torch._dynamo.reset()
        fields["compile_mode"] = args.compile_mode
    try:
        model = models.make_model(model_name).to(images.device).train()
        opt, adam = make_adam(torch, model.parameters(), capturable=mode == "graph")
        fields["adam"] = adam
        loss_fn = model
        if mode == "compile":
            loss_fn = torch.compile(model, mode=None if args.compile_mode == "default"
                                    else args.compile_mode)
        pool = [images[i * batch:(i + 1) * batch] for i in range(POOL)]
        state = {"next": 0, "loss": None}

        if mode == "graph":
            static_x = pool[0].clone()
            graph, static_loss = capture_step(torch, model, opt, static_x)

            def step():
                static_x.copy_(pool[state["next"] % POOL])
                state["next"] += 1
                graph.replay()
                state["loss"] = static_loss
        else:
            def step():
                x = pool[state["next"] % POOL]
                state["next"] += 1
                loss = loss_fn(x)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                state["loss"] = loss

        # It must train before it is worth timing (this also compiles).
        check_steps = 10 if args.quick else 30
        losses = []
        for _ in range(check_steps):
            step()
            losses.append(state["loss"].item())
        first, last = losses[0], sum(losses[-3:]) / 3
        if not (last < first) or not math.isfinite(last):
            emit(dict(fields, error=f"the loss did not fall: {first} -> {last}"))
            return False

        if args.cpu:
            median, fastest, iters, runs = time_steps_cpu(step, warmup=2,
                                                          runs=5 if args.quick else 7)
        else:
            median, fastest, iters, runs = time_steps(torch, step, warmup=10,
                                                      runs=5 if args.quick else 21)
        seconds = median * 1e-3
        tflops = models.step_flops(model_name, batch) / seconds / 1e12
        peak = args.peak
        fields.update(median_ms=round(median, 4), min_ms=round(fastest, 4), iters=iters, runs=runs,
                      steps_per_s=round(1 / seconds, 1), samples_per_s=round(batch / seconds, 1),
                      tflops=round(tflops, 3),
                      peak_fraction=round(tflops / peak, 4) if peak and not tf32 else None,
                      loss_first=round(first, 3), loss_last=round(last, 3),
                      check_steps=check_steps, data=source)
        emit(fields)
        return True
    except Exception as e:  # one configuration's failure must not hide the others
        emit(dict(fields, error=f"{type(e).__name__}: {e}"))
        log(f"{mode} {model_name} batch {batch}: {type(e).__name__}: {e}")
        return False
    finally:
        if not args.cpu:
            torch.backends.cuda.matmul.allow_tf32 = False


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer check steps and samples")
    parser.add_argument("--modes", default="eager,graph,compile",
                        help="comma-separated: eager, graph (one CUDA graph per step), compile "
                             "(default: all three; --cpu: eager and compile)")
    parser.add_argument("--compile-mode", default="default",
                        help="torch.compile mode: default, reduce-overhead, max-autotune, ...")
    parser.add_argument("--models", default="vae,ae", help="comma-separated: vae, ae")
    parser.add_argument("--configs", default=None,
                        help="comma-separated batch sizes, FP32; BATCH-tf32 for TF32 GEMMs "
                             "(default 128,1024,1024-tf32,4096,65536; with --cpu 128,1024)")
    parser.add_argument("--cpu", action="store_true", help="train on the CPU")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads (torch.set_num_threads; default: OMP_NUM_THREADS)")
    parser.add_argument("--commit", default=os.environ.get("LATENT_COMMIT", "unknown"))
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if not modes or any(m not in ("eager", "graph", "compile") for m in modes):
        parser.error("--modes takes eager, graph and/or compile")
    if args.cpu:
        if "graph" in modes and args.modes != parser.get_default("modes"):
            parser.error("--modes graph: CUDA graphs need a GPU")
        modes = [m for m in modes if m != "graph"]
    model_names = [m for m in args.models.split(",") if m]
    if not model_names or any(m not in ("vae", "ae") for m in model_names):
        parser.error("--models takes vae and/or ae")
    if args.configs is None:
        args.configs = "128,1024" if args.cpu else "128,1024,1024-tf32,4096,65536"
    batches = []
    for token in (t for t in args.configs.split(",") if t):
        size, _, math_mode = token.partition("-")
        if not size.isdigit() or int(size) < 1 or math_mode not in ("", "tf32"):
            parser.error(f"--configs: '{token}' is not BATCH or BATCH-tf32")
        if args.cpu and math_mode:
            parser.error(f"--configs: '{token}': TF32 is a GPU mode")
        batches.append((int(size), math_mode == "tf32"))
    if not batches:
        parser.error("--configs needs at least one batch size")

    try:
        import torch
    except ImportError:
        emit({"bench": "pytorch_train", "skipped": "torch is not installed", "commit": args.commit})
        return 0
    if not args.cpu and not torch.cuda.is_available():
        emit({"bench": "pytorch_train", "skipped": "no CUDA GPU", "commit": args.commit,
              "torch": torch.__version__})
        return 0
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import models

    array, source = load_images(POOL * max(b for b, _ in batches))
    if args.cpu:
        if args.threads > 0:
            torch.set_num_threads(args.threads)
        args.peak = None
        images = torch.from_numpy(array)
        config = torch.__config__.show()
        blas = "mkl" if "BLAS_INFO=mkl" in config else "openblas" if "openblas" in config else "other"
        common = {"device": "cpu: " + cpu_name(), "threads": torch.get_num_threads(),
                  "blas": blas, "commit": args.commit, "torch": torch.__version__}
    else:
        args.peak = fp32_peak_tflops(torch)
        images = torch.from_numpy(array).cuda()
        # What could turn float32 GEMMs into TF32 behind the "math" field's back.
        common = {"device": torch.cuda.get_device_name(0), "commit": args.commit,
                  "torch": torch.__version__,
                  "float32_matmul_precision": torch.get_float32_matmul_precision(),
                  "nvidia_tf32_override": os.environ.get("NVIDIA_TF32_OVERRIDE")}
    configs = [(mode, model, batch, tf32) for mode in modes for model in model_names
               for batch, tf32 in batches]
    ok = True
    for cfg in configs:
        log("running", *cfg)
        ok = run_config(torch, models, cfg, images, source, args, common) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
