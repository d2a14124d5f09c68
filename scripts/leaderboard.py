"""The leaderboard across sweep directories: a markdown table, a heat map and the MRR.

  .venv/bin/python scripts/leaderboard.py --sweeps='results/*_cpu' --out=results/leaderboard

Reads every sweep directory matching ``--sweeps`` (scripts/sweep.py's layout), averages
each grid point over its seeds, ranks the methods (encoding, position sampler, normalizer)
of every task by out-of-distribution exact match and writes ``OUT.md`` (the ranked table and
the mean reciprocal rank over the tasks every method was run on, Kazemnejad et al.'s
Figure 1 score) and ``OUT.png`` (task x method heat map). Each file is replaced whole.
"""

import argparse
import glob
import os

from lengthgen import analysis
from lengthgen.sweeps import report


def write_leaderboard(sweeps: str, out: str, mrr_methods=None) -> dict:
  """Writes OUT.md and OUT.png from the sweep directories matching the glob ``sweeps``;
  the mean reciprocal rank ranks ``mrr_methods`` (default: all) among themselves."""
  dirs = sorted(d for d in glob.glob(sweeps) if os.path.isdir(d))
  records = [r for d in dirs for r in analysis.load_sweep(d)]
  if not records:
    raise SystemExit(f'no finished runs in the sweep directories matching {sweeps!r} '
                     f'({len(dirs)} directories)')
  header = '\n'.join([
      f'# Leaderboard ({len(dirs)} sweep directories, {len(records)} runs)', '',
      f'Regenerate: `python scripts/leaderboard.py --sweeps={sweeps!r} --out={out}'
      + (f' --mrr_methods={",".join(mrr_methods)}' if mrr_methods else '') + '`.'])
  return report.write_leaderboard(analysis.aggregate_over_seeds(records), out, header=header,
                                  mrr_methods=mrr_methods)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--sweeps', default='results/*_cpu',
                 help='glob of sweep directories (default results/*_cpu)')
  p.add_argument('--out', default='results/leaderboard',
                 help='output path without extension: OUT.md and OUT.png')
  p.add_argument('--mrr_methods', default='',
                 help='comma-separated methods the mean reciprocal rank ranks among '
                      'themselves (default: every method)')
  args = p.parse_args(argv)
  methods = [m for m in args.mrr_methods.split(',') if m] or None
  write_leaderboard(args.sweeps, args.out, methods)
  print(f'wrote {args.out}.md and {args.out}.png')


if __name__ == '__main__':
  main()
