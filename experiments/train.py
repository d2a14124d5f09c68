"""The training entry point as a checkout runs it: the same as ``lengthgen-train``.

    python -m experiments.train --config=experiments/configs/demo.py --workdir=workdirs/demo
    python -m experiments.train --config=demo:tiny --workdir=/tmp/t --config.train.steps=50

``experiments/`` is not installed (it stays in the repository); the entry point is
``lengthgen.cli`` and ``experiments/configs`` is a link to the packaged ``lengthgen/configs``.
"""

from lengthgen import cli

if __name__ == "__main__":
  cli.main()
