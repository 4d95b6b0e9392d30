"""Readers: files of model outputs -> the arrays :func:`trueprob.evaluate` takes.

Formats by suffix: ``.npz`` and ``.npy`` (NumPy; never unpickled), ``.csv`` (header row
required), ``.parquet`` (pyarrow, streamed in record batches; one column per class or one list
column), ``.pt`` (a dict of tensors, ``torch.load(weights_only=True)``), and ``-`` for an
``.npz`` on standard input. Which array is which is decided by names only: explicit field names
(globs and comma lists allowed), else the canonical names (``logits``, ``probs``, ``labels``,
...). :func:`read_inputs` reads everything; :func:`iter_inputs` yields bounded batches.
Every problem with a file is a :class:`FileFormatError` naming the file and the problem.
:func:`atomic_write` is how every output file is written (complete or absent, never partial).
"""

from trueprob.io.errors import FileFormatError
from trueprob.io.read import iter_inputs, read_columns, read_inputs
from trueprob.io.write import atomic_write

__all__ = ["FileFormatError", "atomic_write", "iter_inputs", "read_columns", "read_inputs"]
