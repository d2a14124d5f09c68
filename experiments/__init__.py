"""The checkout's entry point (``python -m experiments.train``, which is ``lengthgen-train``)
and ``configs`` (a link to ``lengthgen/configs``). Not installed: the package is ``lengthgen``."""
