"""Generation speed of the Deletang et al. encoder tasks on the CPU (examples per second).

    python scripts/bench_chomsky.py [--out benchmarks/chomsky_tasks]

Batch 1024 at length 20 (the speed that feeds training), and batch 512 at length 500 (the
longest evaluation length of the protocol), and the seconds to generate the protocol's whole
evaluation set (512 examples at every length 1..500). Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from lengthgen.tasks.base import examples_per_second
from lengthgen.tasks.chomsky import CHOMSKY_TASKS


def measure(name, batch_size, length, seconds):
  return examples_per_second(CHOMSKY_TASKS[name](), batch_size, length, seconds)


def protocol_seconds(name):
  task = CHOMSKY_TASKS[name]()
  start = time.perf_counter()
  for length in range(1, 501):
    task.sample(np.random.default_rng(length), 512, length)
  return time.perf_counter() - start


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--out", default="benchmarks/chomsky_tasks")
  parser.add_argument("--seconds", type=float, default=0.5)
  args = parser.parse_args()
  rows = []
  for name in CHOMSKY_TASKS:
    short = measure(name, 1024, 20, args.seconds)
    long = measure(name, 512, 500, args.seconds)
    whole = protocol_seconds(name)
    rows.append({"task": name, "examples_per_s_length20": round(short),
                 "examples_per_s_length500": round(long), "protocol_eval_set_s": round(whole, 1)})
    print(f"{name:30s} {short:12,.0f} /s at 20 {long:10,.0f} /s at 500 "
          f"{whole:6.1f} s for the evaluation set", flush=True)
  meta = {"batch_size": {"20": 1024, "500": 512}, "machine": platform.machine(),
          "python": platform.python_version(), "numpy": np.__version__,
          "note": "2-core CPU shared with other jobs; numbers are indicative"}
  with open(args.out + ".json", "w") as f:
    json.dump({"meta": meta, "rows": rows}, f, indent=2)
  with open(args.out + ".md", "w") as f:
    f.write(f"Encoder-task generation speed on the CPU (numpy {np.__version__}, Python "
            f"{meta['python']}; shared 2-core machine).\n\n"
            "| task | examples/s, batch 1024, length 20 | examples/s, batch 512, length 500 | "
            "s for the evaluation set (1..500 x 512) |\n|---|---|---|---|\n")
    f.writelines(f"| {r['task']} | {r['examples_per_s_length20']:,} | "
                 f"{r['examples_per_s_length500']:,} | {r['protocol_eval_set_s']} |\n" for r in rows)


if __name__ == "__main__":
  main()
