"""Load the spec helpers first: they import the oracles (h2, the hpack library) before the
learner's own hpack.py can take the name ``hpack``."""

import _helpers  # noqa: F401
