"""One module per metric (or per group computed in one pass), each defining ``METRICS``;
listed in :data:`aebench.eval.registry.MODULES`."""
