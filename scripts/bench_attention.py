"""Times lengthgen's Pallas flash attention against cuDNN, the XLA reference and tokamax.

    python scripts/bench_attention.py                  # on a GPU: the full table of shapes
    python scripts/bench_attention.py --smoke          # CPU, interpret mode, tiny shapes

Prints TFLOP/s (causal FLOPs counted as half; forward+backward as 3.5x the forward) and the
ratio to cuDNN, and writes JSON (default benchmarks/attention_<backend>.json).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lengthgen.positional as pe  # noqa: E402
from lengthgen import kernels  # noqa: E402
from lengthgen.attention import AlibiBias, materialize, reference  # noqa: E402
from lengthgen.attention.masks import default_positions  # noqa: E402

GPU_SHAPES = [(4, 16, 4096, 64), (4, 16, 4096, 128), (1, 16, 16384, 128)]
SMOKE_SHAPES = [(1, 2, 48, 64)]
OUR_BLOCKS = (64, 128)        # block sizes timed beside the default on a GPU
MAX_BLOCK_X_D = 64 * 128      # block * head dim above this exceeds an H100's shared memory
                              # (measured: 128 x 128 blocks at D=128 need 262,144 > 232,448 B)
XLA_MAX_SCORE_BYTES = 8 << 30  # the XLA reference is skipped where [B,H,T,T] f32 exceeds this


def _variants(h, smoke):
  """name -> (options, allowed implementations)."""
  alibi = AlibiBias(jnp.asarray(pe.alibi_slopes(h)))
  return {
      "causal_softmax": (dict(causal=True), ("ours", "cudnn", "xla", "tokamax")),
      "causal_alibi": (dict(causal=True, bias=alibi), ("ours", "cudnn", "xla", "tokamax")),
      "lambda_mask": (dict(causal=True, window=16 if smoke else 4096, global_tokens=10),
                      ("ours", "xla")),
      "causal_softplus": (dict(causal=True, normalizer="softplus"), ("ours", "xla")),
  }


def _fn(impl, options, interpret):
  """A function (q, k, v) -> out for one implementation, or None when it cannot run."""
  bias = options.get("bias")
  dense = lambda q, k: materialize(  # noqa: E731
      bias, *default_positions(q.shape[0], q.shape[1], k.shape[1]))
  if impl.startswith("ours"):  # ours (default blocks) or ours_b<N>: N x N query/key blocks
    blocks = {} if impl == "ours" else dict(block_q=int(impl[6:]), block_k=int(impl[6:]))
    return lambda q, k, v: kernels.flash_attention(q, k, v, interpret=interpret, **blocks,
                                                   **options)
  if impl == "xla":
    return lambda q, k, v: reference.attention(q, k, v, **options)
  if impl == "cudnn":
    if jax.default_backend() != "gpu":
      return None
    return lambda q, k, v: jax.nn.dot_product_attention(
        q, k, v, bias=None if bias is None else dense(q, k).astype(q.dtype),
        is_causal=options.get("causal", False), implementation="cudnn")
  if impl == "tokamax":
    try:
      import tokamax
    except ImportError:
      return None
    return lambda q, k, v: tokamax.dot_product_attention(
        q, k, v, bias=None if bias is None else dense(q, k).astype(q.dtype),
        is_causal=options.get("causal", False))
  raise ValueError(f"unknown implementation {impl!r}")


def _time(fn, args, iters):
  out = fn(*args)
  jax.block_until_ready(out)
  best = float("inf")
  for _ in range(iters):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    best = min(best, time.perf_counter() - t0)
  return best


def run(shapes, dtype, iters, smoke):
  interpret = jax.default_backend() not in ("gpu", "tpu")
  rows = []
  for b, h, t, d in shapes:
    rng = np.random.default_rng(0)
    q, k, v = [jnp.asarray(rng.normal(size=(b, t, h, d)), dtype) for _ in range(3)]
    for name, (options, impls) in _variants(h, smoke).items():
      flops = 4 * b * h * t * t * d * (0.5 if options.get("causal") else 1.0)
      ref_out = None
      if not smoke:
        impls = impls[:1] + tuple(f"ours_b{n}" for n in OUR_BLOCKS
                                  if n * d <= MAX_BLOCK_X_D) + impls[1:]
      for impl in impls:
        if impl == "xla" and b * h * t * t * 4 > XLA_MAX_SCORE_BYTES:
          continue  # the reference materializes [B, H, T, T] scores: out of memory
        fn = _fn(impl, options, interpret)
        if fn is None:
          continue
        row = dict(shape=[b, h, t, d], dtype=jnp.dtype(dtype).name, variant=name,
                   implementation=impl, interpret=interpret and impl.startswith("ours"))
        try:
          fwd = jax.jit(fn)
          loss = lambda q, k, v, fn=fn: jnp.sum(fn(q, k, v).astype(jnp.float32))  # noqa: E731
          fwd_bwd = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
          out = fwd(q, k, v)
          row.update(fwd_s=_time(fwd, (q, k, v), iters),
                     fwd_bwd_s=_time(fwd_bwd, (q, k, v), iters))
        except Exception as e:  # pylint: disable=broad-except  # recorded, the run goes on
          row["error"] = f"{type(e).__name__}: {str(e)[:300]}"
          print(f"{impl} {name} {[b, h, t, d]} failed: {row['error']}", flush=True)
          rows.append(row)
          continue
        if impl in ("xla", "cudnn") and ref_out is None:
          ref_out = out  # the reference for errors: XLA, or cuDNN where XLA cannot run
        row["fwd_tflops"] = flops / row["fwd_s"] / 1e12
        row["fwd_bwd_tflops"] = 3.5 * flops / row["fwd_bwd_s"] / 1e12
        row["_out"] = out
        rows.append(row)
      for row in rows:
        if row["variant"] == name and row["shape"] == [b, h, t, d] and "_out" in row:
          out = row.pop("_out")
          if ref_out is not None:
            err = jnp.abs(out.astype(jnp.float32) - ref_out.astype(jnp.float32))
            row["max_abs_error_vs_xla"] = float(jnp.max(err))
            row["rel_error_vs_reference"] = float(
                jnp.linalg.norm(err) / jnp.linalg.norm(ref_out.astype(jnp.float32)))
  cudnn = {(tuple(r["shape"]), r["variant"]): r for r in rows
           if r["implementation"] == "cudnn" and "fwd_s" in r}
  plain = {tuple(r["shape"]): r for r in rows
           if r["implementation"] == "ours" and r["variant"] == "causal_softmax" and "fwd_s" in r}
  for r in rows:
    if "error" in r:
      continue
    c = cudnn.get((tuple(r["shape"]), r["variant"]))
    if c:
      r["fwd_vs_cudnn"] = c["fwd_s"] / r["fwd_s"]
      r["fwd_bwd_vs_cudnn"] = c["fwd_bwd_s"] / r["fwd_bwd_s"]
    p = plain.get(tuple(r["shape"]))
    if p and r["implementation"] == "ours":
      r["fwd_vs_ours_causal_softmax"] = p["fwd_s"] / r["fwd_s"]
  return rows


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--smoke", action="store_true", help="tiny shapes, interpret mode on CPU")
  parser.add_argument("--dtype", default=None, choices=["bfloat16", "float32"])
  parser.add_argument("--iters", type=int, default=None)
  parser.add_argument("--out", default=None, help="JSON path")
  args = parser.parse_args(argv)
  shapes = SMOKE_SHAPES if args.smoke else GPU_SHAPES
  dtype = jnp.dtype(args.dtype or ("float32" if args.smoke else "bfloat16"))
  iters = args.iters or (1 if args.smoke else 10)
  devices = jax.devices()
  meta = dict(jax=jax.__version__, backend=jax.default_backend(),
              device=devices[0].device_kind, python=platform.python_version(),
              smoke=args.smoke, iters=iters, timing="best of iters, wall clock after sync")
  out = Path(args.out or f"benchmarks/attention_{'smoke' if args.smoke else meta['backend']}.json")
  out.parent.mkdir(parents=True, exist_ok=True)
  rows = []
  for shape in shapes:  # written after each shape: a run stopped early keeps what it measured
    rows += run([shape], dtype, iters, args.smoke)
    out.write_text(json.dumps(dict(meta=meta, results=rows), indent=1))
  print(f"{'shape':>20} {'variant':>16} {'impl':>8} {'fwd TF/s':>9} {'f+b TF/s':>9} "
        f"{'fwd/cuDNN':>9}")
  for r in rows:
    if "error" in r:
      print(f"{str(r['shape']):>20} {r['variant']:>16} {r['implementation']:>8} FAILED")
      continue
    print(f"{str(r['shape']):>20} {r['variant']:>16} {r['implementation']:>8} "
          f"{r['fwd_tflops']:9.4f} {r['fwd_bwd_tflops']:9.4f} "
          f"{r.get('fwd_vs_cudnn', float('nan')):9.2f}")
  print(f"wrote {out}")


if __name__ == "__main__":
  main()
