"""Parameter sweeps: specs (``spec``), the Dask runner and its results store (``runner``),
Sobol sensitivity (``sensitivity``) and the paper's recomputation (``paper``).

The specs and scenarios themselves are data, in ``experiments/sweeps`` and
``experiments/scenarios``.
"""
