"""Reports over the run store, each laid out by the protocol's own ``table:`` field: tables in the
paper's layout (:mod:`.tables`), plots (:mod:`.plots`), side-by-side videos (:mod:`.compare`),
the HTML page (:mod:`.html`) and the metric regression against a reference (:mod:`.regress`)."""
