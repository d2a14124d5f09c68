"""Encoder tasks of Deletang et al. 2023 (neural_networks_chomsky_hierarchy).

Each shows its input, then blank slots ``_`` that the (non-causal) model fills with the
answer; see ``common`` for the layout and each module's docstring for examples.
"""

from lengthgen.tasks.chomsky.binary import BinaryAddition, BinaryMultiplication, ComputeSqrt
from lengthgen.tasks.chomsky.brackets import ModularArithmeticBrackets, SolveEquation
from lengthgen.tasks.chomsky.common import BLANK, EncoderTask, encoder_batch
from lengthgen.tasks.chomsky.regular import (CycleNavigation, EvenPairs, ModularArithmetic,
                                             ParityCheck)
from lengthgen.tasks.chomsky.stack import StackManipulation
from lengthgen.tasks.chomsky.strings import (BucketSort, DuplicateString, MissingDuplicateString,
                                             OddsFirst, ReverseString)

CHOMSKY_TASKS = {cls.name: cls for cls in (
    EvenPairs, ModularArithmetic, ParityCheck, CycleNavigation,                 # regular
    StackManipulation, ReverseString, ModularArithmeticBrackets, SolveEquation,  # context-free
    DuplicateString, MissingDuplicateString, OddsFirst, BinaryAddition,         # sensitive
    BinaryMultiplication, ComputeSqrt, BucketSort)}

__all__ = ["BLANK", "CHOMSKY_TASKS", "EncoderTask", "encoder_batch"]
