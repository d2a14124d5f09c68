"""Times lengthgen's Pallas flash attention against cuDNN, the XLA reference and tokamax.

    python scripts/bench_attention.py                  # on a GPU: the full table (bf16)
    python scripts/bench_attention.py --deadline_s 300 --out $OUT/attention_gpu.json
    python scripts/bench_attention.py --smoke          # CPU, interpret mode, tiny shapes
    bash scripts/gpu_kernels.sh                        # GPU machine: kernel tests + this table

Shapes (B, H, T, D): every variant at (4,16,4096,64), (4,16,4096,128), (1,16,16384,128); causal
softmax and the Lambda mask (window 4096, 10 global tokens) at (1,16,32768,128). Rows run in
priority order (headline comparisons first) and ``--deadline_s`` skips the rest once passed;
the JSON and the markdown table are rewritten after every row.

FLOPs: the forward is 4 * B * H * D * (visible (query, key) pairs, counted exactly for the
mask by ``visible_pairs``); forward+backward is ``FWD_BWD_FACTOR`` = 3.5x the forward, the
flash-style count (the backward's 5 matmuls, recomputed QK^T, dV, dP, dQ, dK, against the
forward's 2: 2.5x, plus the forward). The same nominal count serves every implementation, so
TF/s ratios are time ratios.

Errors: each implementation against ``lengthgen.attention.reference`` on float32 copies of
the inputs (matmul precision "highest"), evaluated for ``--error_rows`` query rows in blocks
spread over T, all keys. ``out_*_vs_f32`` compares those output rows; ``dq/dk/dv_*_vs_f32``
compare the gradients of L = sum(out * G), G standard normal on the sampled rows and 0
elsewhere. G is the cotangent of every timed forward+backward (its zeros cost the same work).
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
LONG_SHAPE = (1, 16, 32768, 128)           # the Lambda mask against our dense causal kernel
SMOKE_SHAPES = [(1, 2, 40, 16)]
SMOKE_LONG_SHAPE = (1, 2, 72, 16)
LONG_VARIANTS = ("causal_softmax", "lambda_mask")
OUR_BLOCKS = (64, 128)        # block sizes timed beside the default (32) on a GPU
MAX_BLOCK_X_D = 64 * 128      # block * head dim above this exceeds an H100's shared memory
                              # (measured: 128 x 128 blocks at D=128 need 262,144 > 232,448 B)
XLA_MAX_SCORE_BYTES = 8 << 30  # the XLA reference is skipped where [B,H,T,T] f32 exceeds this
DENSE_BIAS_MAX_BYTES = 16 << 30  # cuDNN/tokamax ALiBi: the dense [1,H,T,S] bias (f32 while built)
FWD_BWD_FACTOR = 3.5
FLOPS_NOTE = ("fwd = 4*B*H*D*visible_pairs (QK^T and PV, 2 FLOPs per multiply-add, visible "
              "pairs counted exactly for the mask); fwd_bwd = 3.5 x fwd: a flash-style "
              "backward does 5 matmuls (recomputed QK^T, dV=P^T dO, dP=dO V^T, dQ=dS K, "
              "dK=dS^T Q), 2.5x the forward's 2, plus the forward; the same nominal count for "
              "every implementation")


def visible_pairs(t, s, *, causal=True, window=None, global_tokens=0, lengths=None,
                  q_start=None):
  """Exact number of (query, key) pairs that ``masks.make_mask`` leaves visible, in O(T).

  Query i sits at key index q_start + i (default S - T); each row's visible keys are the
  interval [0, hi] (hi: causality, ``lengths``, S) cut to the window |i - j| < window, united
  with the global keys j < global_tokens.

  Returns:
    An int for one (example, head) when ``lengths`` is None, else an int64 array [B].
  """
  if global_tokens and window is None:
    raise ValueError("global_tokens needs a window (the Lambda mask is window + global tokens)")
  q_start = s - t if q_start is None else q_start
  qi = q_start + np.arange(t, dtype=np.int64)[None, :]                      # [1, T]
  limit = np.full((1, 1), s, np.int64) if lengths is None else (
      np.minimum(np.asarray(lengths, np.int64), s)[:, None])                # [B|1, 1]
  hi = np.minimum(limit - 1, qi) if causal else limit - 1 + 0 * qi            # [B|1, T]
  if window is None:
    count = np.maximum(hi + 1, 0)
  else:
    lo_w, hi_w = np.maximum(qi - window + 1, 0), np.minimum(hi, qi + window - 1)
    local = np.maximum(hi_w - lo_w + 1, 0)
    glob = np.clip(hi + 1, 0, global_tokens)
    both = np.maximum(np.minimum(hi_w, global_tokens - 1) - lo_w + 1, 0)
    count = local + glob - both
  per_example = count.sum(axis=-1)
  return int(per_example[0]) if lengths is None else per_example


def mask_options(options):
  return {k: options[k] for k in ("causal", "window", "global_tokens", "lengths")
          if k in options}


def forward_flops(shape, options):
  """Forward FLOPs of attention over the visible pairs of ``options``' mask: 4*B*H*D*pairs."""
  b, h, t, d = shape
  pairs = visible_pairs(t, t, **mask_options(options))
  return 4.0 * h * d * (b * pairs if np.ndim(pairs) == 0 else float(np.sum(pairs)))


def variants(h, smoke):
  """name -> (options, implementations that compute exactly this variant)."""
  alibi = AlibiBias(jnp.asarray(pe.alibi_slopes(h)))
  return {
      "causal_softmax": (dict(causal=True), ("ours", "cudnn", "xla", "tokamax")),
      "causal_alibi": (dict(causal=True, bias=alibi), ("ours", "cudnn", "xla", "tokamax")),
      "lambda_mask": (dict(causal=True, window=16 if smoke else 4096, global_tokens=10),
                      ("ours", "xla")),
      "causal_softplus": (dict(causal=True, normalizer="softplus"), ("ours", "xla")),
  }


def sample_blocks(t, rows, block=8):
  """[(start, size)]: about ``rows`` query rows in blocks of ``block``, spread over 0..T-1."""
  block = min(block, t)
  n = max(1, min(-(-rows // block), t // block))
  starts = np.unique(np.linspace(0, t - block, n).round().astype(int))
  return [(int(s0), block) for s0 in starts]


def row_cotangent(shape, blocks, seed=1):
  """G [B, T, H, D] float32: standard normal on the sampled rows, 0 elsewhere."""
  b, h, t, d = shape
  g = np.zeros((b, t, h, d), np.float32)
  rng = np.random.default_rng(seed)
  for s0, n in blocks:
    g[:, s0:s0 + n] = rng.normal(size=(b, n, h, d))
  return jnp.asarray(g)


def reference_on_rows(q, k, v, g, blocks, options):
  """f32 reference output on the sampled rows [B, R, H, D] and the gradients of sum(out * G)."""
  def loss(q, k, v):
    outs = [reference.attention(q[:, s0:s0 + n], k, v, q_start=s0, **options)
            for s0, n in blocks]
    rows = jnp.concatenate(outs, axis=1)
    g_rows = jnp.concatenate([g[:, s0:s0 + n] for s0, n in blocks], axis=1)
    return jnp.sum(rows * g_rows), rows

  f32 = [x.astype(jnp.float32) for x in (q, k, v)]
  with jax.default_matmul_precision("highest"):
    (_, rows), grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True))(*f32)
  return rows, grads


def _dense_bias(bias, shape, dtype):
  """The bias spec as a dense [1, H, T, T] array in ``dtype`` (built before any timing)."""
  _, h, t, _ = shape
  if bias is None:
    return ()
  if h * t * t * 4 > DENSE_BIAS_MAX_BYTES:
    raise MemoryError(f"dense bias [1,{h},{t},{t}] f32 exceeds {DENSE_BIAS_MAX_BYTES >> 30} GiB")
  return (jax.block_until_ready(materialize(bias, *default_positions(1, t, t)).astype(dtype)),)


def implementation(impl, options, shape, dtype, interpret):
  """(fn(q, k, v, *extra) -> out, extra inputs, note), or a string saying why it cannot run."""
  b, h, t, d = shape
  bias = options.get("bias")
  if impl.startswith("ours"):  # ours (default blocks) or ours_b<N>: N x N query/key blocks
    blocks = {} if impl == "ours" else dict(block_q=int(impl[6:]), block_k=int(impl[6:]))
    n = blocks.get("block_q", kernels.BLOCK_Q)
    return (lambda q, k, v: kernels.flash_attention(q, k, v, interpret=interpret, **blocks,
                                                    **options)), (), f"{n}x{n} blocks"
  if impl == "xla":
    if b * h * t * t * 4 > XLA_MAX_SCORE_BYTES:
      return f"[B,H,T,T] f32 scores exceed {XLA_MAX_SCORE_BYTES >> 30} GiB"
    return (lambda q, k, v: reference.attention(q, k, v, **options)), (), "dense reference"
  if impl in ("cudnn", "tokamax"):
    if impl == "cudnn" and jax.default_backend() != "gpu":
      return "cuDNN needs a GPU"
    if impl == "tokamax":
      try:
        import tokamax  # pylint: disable=import-outside-toplevel  # optional baseline
      except ImportError:
        return "tokamax is not installed"
    try:
      extra = _dense_bias(bias, shape, dtype)
    except MemoryError as e:
      return str(e)
    note = "dense ALiBi bias [1,H,T,S] built outside the timed function" if extra else ""
    causal = options.get("causal", False)
    if impl == "cudnn":
      return (lambda q, k, v, *e: jax.nn.dot_product_attention(
          q, k, v, bias=e[0] if e else None, is_causal=causal, implementation="cudnn")), \
          extra, note
    return (lambda q, k, v, *e: tokamax.dot_product_attention(
        q, k, v, bias=e[0] if e else None, is_causal=causal)), extra, note
  raise ValueError(f"unknown implementation {impl!r}")


def plan(smoke, implementations=None, variant_names=None):
  """[(shape, variant, implementation)] in priority order (headline comparisons first)."""
  if smoke:
    shapes, long_shape, ours = SMOKE_SHAPES, SMOKE_LONG_SHAPE, ("ours",)
  else:
    shapes, long_shape = GPU_SHAPES, LONG_SHAPE
    ours = ("ours",) + tuple(f"ours_b{n}" for n in OUR_BLOCKS)

  def fits(impl, d):
    return not impl.startswith("ours_b") or int(impl[6:]) * d <= MAX_BLOCK_X_D

  order = []
  def add(shape, variant, impls):
    for impl in impls:
      allowed = variants(shape[1], smoke)[variant][1]
      if impl.split("_b")[0] in allowed and fits(impl, shape[3]):
        order.append((tuple(shape), variant, impl))

  first_two = ("ours", "ours_b64") if not smoke else ours
  for shape in shapes:  # 1: causal softmax, cuDNN against ours
    add(shape, "causal_softmax", ("cudnn",) + first_two)
  for variant in LONG_VARIANTS:  # 2: the Lambda mask against the dense causal kernel
    add(long_shape, variant, first_two + ("cudnn",))
  for variant in ("causal_alibi", "causal_softplus", "lambda_mask"):  # 3: the other variants
    for shape in shapes:
      add(shape, variant, first_two + ("cudnn",))
  for shape in shapes:  # 4: the rest: XLA, tokamax, the other block sizes
    for variant in variants(shape[1], smoke):
      add(shape, variant, ("xla", "tokamax") + ours[2:])
  return [p for p in order
          if (implementations is None or p[2].split("_b")[0] in implementations)
          and (variant_names is None or p[1] in variant_names)]


def _time(fn, args, iters, min_rep_s):
  """Seconds per call: best of ``iters`` repetitions of n back-to-back calls, one sync each."""
  t0 = time.perf_counter()
  jax.block_until_ready(fn(*args))
  n = max(1, min(50, int(min_rep_s / max(time.perf_counter() - t0, 1e-6))))
  best = float("inf")
  for _ in range(iters):
    t0 = time.perf_counter()
    for _ in range(n):
      r = fn(*args)
    jax.block_until_ready(r)
    best = min(best, (time.perf_counter() - t0) / n)
  return best, n


def _errors(prefix, got, want):
  got, want = got.astype(jnp.float32), want.astype(jnp.float32)
  diff = got - want
  return {f"{prefix}_max_abs_err_vs_f32": float(jnp.max(jnp.abs(diff))),
          f"{prefix}_rel_err_vs_f32": float(jnp.linalg.norm(diff)
                                            / jnp.maximum(jnp.linalg.norm(want), 1e-30))}


class Bench:
  """Runs rows of the plan; inputs and f32 references are made once per shape and variant."""

  def __init__(self, dtype, iters, error_rows, smoke, min_rep_s):
    self.dtype, self.iters, self.error_rows, self.smoke = dtype, iters, error_rows, smoke
    self.min_rep_s = min_rep_s
    self.interpret = jax.default_backend() not in ("gpu", "tpu")
    self._inputs, self._refs = {}, {}

  def inputs(self, shape):
    """((q, k, v) in the benchmark's dtype, sampled row blocks, cotangent G) for ``shape``."""
    if shape not in self._inputs:
      b, h, t, d = shape
      rng = np.random.default_rng(0)
      qkv = [jnp.asarray(rng.normal(size=(b, t, h, d)), self.dtype) for _ in range(3)]
      blocks = sample_blocks(t, self.error_rows)
      self._inputs[shape] = (qkv, blocks, row_cotangent(shape, blocks))
    return self._inputs[shape]

  def reference(self, shape, variant, options):
    if (shape, variant) not in self._refs:
      (q, k, v), blocks, g = self.inputs(shape)
      self._refs[shape, variant] = reference_on_rows(q, k, v, g, blocks, options)
    return self._refs[shape, variant]

  def measure(self, shape, variant, impl):
    b, h, t, d = shape
    options = variants(h, self.smoke)[variant][0]
    row = dict(shape=list(shape), dtype=jnp.dtype(self.dtype).name, variant=variant,
               implementation=impl, interpret=self.interpret and impl.startswith("ours"))
    pairs = visible_pairs(t, t, **mask_options(options))
    flops = forward_flops(shape, options)
    row.update(visible_pairs=pairs, visible_fraction=pairs / (t * t), fwd_flops=flops,
               fwd_bwd_flops=FWD_BWD_FACTOR * flops)
    t_row = time.perf_counter()
    try:
      made = implementation(impl, options, shape, self.dtype, self.interpret)  # dense inputs
      if isinstance(made, str):
        return None, made
      fn, extra, note = made
      row["note"] = note
      (q, k, v), blocks, g = self.inputs(shape)
      t_compile = time.perf_counter()
      args = (q, k, v) + tuple(extra)
      grad_fn = jax.grad(lambda q, k, v, g, *e: jnp.sum(fn(q, k, v, *e).astype(jnp.float32) * g),
                         argnums=(0, 1, 2))
      fwd = jax.jit(fn).lower(*args).compile()
      fwd_bwd = jax.jit(grad_fn).lower(q, k, v, g, *extra).compile()
      row["compile_s"] = time.perf_counter() - t_compile
      row["fwd_s"], row["fwd_calls_per_rep"] = _time(fwd, args, self.iters, self.min_rep_s)
      row["fwd_bwd_s"], row["fwd_bwd_calls_per_rep"] = _time(
          fwd_bwd, (q, k, v, g) + tuple(extra), self.iters, self.min_rep_s)
      out, grads = fwd(*args), fwd_bwd(q, k, v, g, *extra)
      ref_rows, ref_grads = self.reference(shape, variant, options)
      out_rows = jnp.concatenate([out[:, s0:s0 + n] for s0, n in blocks], axis=1)
      row.update(_errors("out", out_rows, ref_rows))
      for name, got, want in zip(("dq", "dk", "dv"), grads, ref_grads):
        row.update(_errors(name, got, want))
      row["fwd_tflops"] = flops / row["fwd_s"] / 1e12
      row["fwd_bwd_tflops"] = FWD_BWD_FACTOR * flops / row["fwd_bwd_s"] / 1e12
    except Exception as e:  # pylint: disable=broad-except  # recorded, the run goes on
      row["error"] = f"{type(e).__name__}: {str(e)[:400]}"
      print(f"{impl} {variant} {list(shape)} failed: {row['error']}", flush=True)
    row["wall_s"] = time.perf_counter() - t_row
    return row, None


def add_ratios(rows):
  """Ratios between rows of one shape: to cuDNN and to the same implementation's causal softmax."""
  ok = {(tuple(r["shape"]), r["variant"], r["implementation"]): r for r in rows
        if "fwd_s" in r}
  for (shape, variant, impl), r in ok.items():
    for key, name in (((shape, variant, "cudnn"), "cudnn"),
                      ((shape, "causal_softmax", impl), "causal_softmax_same_impl")):
      other = ok.get(key)
      if other is not None and other is not r:
        r[f"fwd_vs_{name}"] = other["fwd_s"] / r["fwd_s"]
        r[f"fwd_bwd_vs_{name}"] = other["fwd_bwd_s"] / r["fwd_bwd_s"]
  return rows


def markdown(meta, rows, skipped):
  """The table as markdown: one line per row, the conventions above it."""
  def f(r, key, fmt):
    return format(r[key], fmt) if key in r else "-"
  lines = [f"# Attention benchmark ({meta['device']}, {meta['backend']}, jax {meta['jax']})", "",
           f"- FLOPs: {meta['flops']}", f"- timing: {meta['timing']}",
           f"- errors: {meta['error_reference']}", ""]
  if meta.get("smoke"):
    lines += ["CPU smoke run: the times measure the Pallas interpreter, not the kernels.", ""]
  lines += ["| B,H,T,D | variant | impl | visible | fwd ms | fwd TF/s | f+b ms | f+b TF/s | "
            "vs cuDNN fwd / f+b | out rel err | dq / dk / dv rel err | note |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
  for r in rows:
    shape = ",".join(map(str, r["shape"]))
    if "error" in r:
      lines.append(f"| {shape} | {r['variant']} | {r['implementation']} | - | FAILED: "
                   f"{r['error'][:120].replace('|', '/')} |||||||||")
      continue
    grads = " / ".join(f(r, f"{n}_rel_err_vs_f32", ".1e") for n in ("dq", "dk", "dv"))
    lines.append(
        f"| {shape} | {r['variant']} | {r['implementation']} | {r['visible_fraction']:.3f} | "
        f"{r['fwd_s'] * 1e3:.3f} | {r['fwd_tflops']:.3g} | {r['fwd_bwd_s'] * 1e3:.3f} | "
        f"{r['fwd_bwd_tflops']:.3g} | {f(r, 'fwd_vs_cudnn', '.2f')} / "
        f"{f(r, 'fwd_bwd_vs_cudnn', '.2f')} | {r['out_rel_err_vs_f32']:.1e} | {grads} | "
        f"{r.get('note', '')} |")
  if skipped:
    lines += ["", "Not run: " + "; ".join(
        f"{s['implementation']} {s['variant']} {s['shape']} ({s['why']})" for s in skipped)]
  return "\n".join(lines) + "\n"


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--smoke", action="store_true", help="tiny shapes, interpret mode on CPU")
  parser.add_argument("--dtype", default=None, choices=["bfloat16", "float32"])
  parser.add_argument("--iters", type=int, default=None, help="timed repetitions (best of)")
  parser.add_argument("--out", default=None, help="JSON path")
  parser.add_argument("--markdown", default=None, help="markdown path (default: JSON's, .md)")
  parser.add_argument("--deadline_s", type=float, default=None,
                      help="start no row after this many seconds (the rest are listed)")
  parser.add_argument("--error_rows", type=int, default=64, help="query rows sampled for errors")
  parser.add_argument("--implementations", default=None,
                      help="comma-separated subset of ours,cudnn,xla,tokamax")
  parser.add_argument("--variants", default=None, help="comma-separated subset of the variants")
  args = parser.parse_args(argv)
  t_start = time.perf_counter()
  dtype = jnp.dtype(args.dtype or ("float32" if args.smoke else "bfloat16"))
  iters = args.iters or (1 if args.smoke else 5)
  split = lambda x: None if x is None else tuple(x.split(","))  # noqa: E731
  todo = plan(args.smoke, split(args.implementations), split(args.variants))
  meta = dict(jax=jax.__version__, backend=jax.default_backend(),
              device=jax.devices()[0].device_kind, python=platform.python_version(),
              smoke=args.smoke, dtype=dtype.name, iters=iters, flops=FLOPS_NOTE,
              fwd_bwd_factor=FWD_BWD_FACTOR,
              timing=f"best of {iters} repetitions of n back-to-back calls (n: about 20 ms "
                     "per repetition, at most 50), one sync each, AOT-compiled; compile and "
                     "a warm-up call excluded",
              error_reference=(
                  f"lengthgen.attention.reference.attention on float32 copies of the inputs "
                  f"(matmul precision highest) for {args.error_rows} sampled query rows (blocks "
                  "of 8 spread over T), all keys; out_*: those rows; dq/dk/dv_*: gradients of "
                  "sum(out * G), G ~ N(0, 1) on the sampled rows, 0 elsewhere (G is also the "
                  "cotangent of the timed fwd+bwd); rel = ||got - ref|| / ||ref||"),
              deadline_s=args.deadline_s)
  out = Path(args.out or f"benchmarks/attention_{'smoke' if args.smoke else meta['backend']}.json")
  md = Path(args.markdown or out.with_suffix(".md"))
  out.parent.mkdir(parents=True, exist_ok=True)
  md.parent.mkdir(parents=True, exist_ok=True)
  bench = Bench(dtype, iters, args.error_rows, args.smoke, 0.0 if args.smoke else 0.02)
  rows, skipped, longest = [], [], {}
  for shape, variant, impl in todo:
    elapsed = time.perf_counter() - t_start
    need = 1.5 * longest.get(shape, max(longest.values(), default=0.0))
    if args.deadline_s is not None and elapsed + need > args.deadline_s:
      skipped.append(dict(shape=list(shape), variant=variant, implementation=impl,
                          why=f"deadline ({elapsed:.0f} s of {args.deadline_s:.0f} s)"))
    else:
      row, why = bench.measure(shape, variant, impl)
      if row is None:
        skipped.append(dict(shape=list(shape), variant=variant, implementation=impl, why=why))
      else:
        rows.append(row)
        longest[shape] = max(longest.get(shape, 0.0), row["wall_s"])
        if "error" not in row:
          print(f"{str(list(shape)):>20} {variant:>16} {impl:>9} fwd {row['fwd_tflops']:9.4f} "
                f"f+b {row['fwd_bwd_tflops']:9.4f} TF/s  out err {row['out_rel_err_vs_f32']:.1e}"
                f"  ({row['wall_s']:.1f} s)", flush=True)
    table = sorted(add_ratios(rows), key=lambda r: (r["shape"][2], r["shape"][3],
                                                    r["variant"], r["implementation"]))
    meta["total_s"] = time.perf_counter() - t_start
    out.write_text(json.dumps(dict(meta=meta, results=table, skipped=skipped), indent=1))
    md.write_text(markdown(meta, table, skipped))
  print(md.read_text() if todo else "nothing to run")
  print(f"wrote {out} and {md}")


if __name__ == "__main__":
  main()
