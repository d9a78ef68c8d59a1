#!/usr/bin/env bash
# latent and PyTorch training on the CPU, side by side in one run: the VAE and the AE of
# bench_train (784-512-256-32, Bernoulli, Adam) at batch 128 and 1024, with 1 and 2 threads (or
# THREADS="1 2 4"), each side timed the same way (bench/README.md). The two sides take turns
# REPEAT times (default 3) and the table keeps each configuration's fastest median, so a noisy
# neighbour slowing one turn does not decide the comparison. Prints a markdown table on stdout;
# the JSON lines go to OUT_DIR/cpu.jsonl (default: a temporary folder).
#   bash bench/cpu_side_by_side.sh [OUT_DIR]
# Needs build/bench/bench_train (BUILD_DIR to use another build) and a python3 with torch
# (PYTHON=... to pick one); without torch the table has latent's side only.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${BUILD_DIR:-$root/build}
out=${1:-$(mktemp -d)}
mkdir -p "$out"
jsonl="$out/cpu.jsonl"
: > "$jsonl"
[ -x "$build/bench/bench_train" ] || { echo "no $build/bench/bench_train: build first" >&2; exit 1; }
for turn in $(seq "${REPEAT:-3}"); do
  for threads in ${THREADS:-1 2}; do
    echo "turn $turn, threads $threads: latent" >&2
    OMP_NUM_THREADS=$threads "$build/bench/bench_train" --cpu --quick | grep '"cpu: ' >> "$jsonl"
    echo "turn $turn, threads $threads: pytorch" >&2
    OMP_NUM_THREADS=$threads bash "$here/pytorch/run.sh" --cpu --quick --modes eager \
      --threads "$threads" >> "$jsonl" || true
  done
done
"${PYTHON:-python3}" - "$jsonl" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
latent = {}
torch = {}
for r in rows:
    if "median_ms" not in r:
        continue
    key = (r["model"], r["batch"], r["threads"])
    # The fastest median of the turns.
    if r["bench"] == "train":
        modes = latent.setdefault(key, {})
        if r["mode"] not in modes or r["median_ms"] < modes[r["mode"]]["median_ms"]:
            modes[r["mode"]] = r
    elif r["bench"] == "pytorch_train":
        if key not in torch or r["median_ms"] < torch[key]["median_ms"]:
            torch[key] = r
info = next((r for r in rows if r.get("bench") == "pytorch_train" and "torch" in r), {})
dev = next((r["device"] for r in rows if "device" in r), "cpu")
turns = max(sum(1 for r in rows if r.get("bench") == "train" and "median_ms" in r
                and (r["model"], r["batch"], r["threads"], r["mode"]) == k)
            for k in {(r["model"], r["batch"], r["threads"], r["mode"])
                      for r in rows if r.get("bench") == "train" and "median_ms" in r} or [0])
print(f"{dev}; the fastest median of {turns} turns; PyTorch {info.get('torch', 'absent')} ({info.get('blas', '?')}, eager, "
      f"Adam {info.get('adam', '?')}); latent {next((r['gemm'] for r in rows if 'gemm' in r), '?')} "
      f"GEMMs, SLEEF {next((r['sleef'] for r in rows if 'sleef' in r), '?')}")
print()
print("| model | batch | threads | latent eager ms | latent replayed ms | PyTorch ms | "
      "latent samples/s | PyTorch samples/s | PyTorch time / latent time |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for key in sorted(latent, key=lambda k: (k[0], k[1], k[2])):
    l = latent[key]
    best = min(l.values(), key=lambda r: r["median_ms"])
    t = torch.get(key)
    tm = f"{t['median_ms']:.2f}" if t else "-"
    ts = f"{t['samples_per_s']:.0f}" if t else "-"
    ratio = f"{t['median_ms'] / best['median_ms']:.2f}" if t else "-"
    e = l.get("eager", {}).get("median_ms")
    r = l.get("replayed", {}).get("median_ms")
    print(f"| {key[0]} | {key[1]} | {key[2]} | {e:.2f} | {r:.2f} | {tm} | "
          f"{best['samples_per_s']:.0f} | {ts} | {ratio} |")
PY
