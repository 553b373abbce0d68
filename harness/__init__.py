"""The harness: everything above the methods and metrics.

- :mod:`~aebench.registry`: the method registry (built-in and entry-point plugins);
- :mod:`~aebench.harness.protocol`: protocol files, cell expansion, the runner, its launchers
  and the run store;
- :mod:`~aebench.harness.report`: tables, plots, the HTML report, side-by-side videos and the
  metric regression, all read from the run store;
- :mod:`~aebench.harness.cli`: the ``aebench`` command line.

Layers (DESIGN.md, checked by the import-linter contracts in ``pyproject.toml``): the CLI
imports reports, reports import the protocol package and the registry, and those import the
methods, the metrics and the foundation; nothing imports a layer above it.
"""
