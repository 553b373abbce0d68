"""Protocols (one YAML per paper experiment) expanded into cells, run into a resumable run store."""

from aebench.harness.protocol.cells import Cell, expand_cells
from aebench.harness.protocol.spec import Protocol, ProtocolError, load_protocol

__all__ = ["Cell", "Protocol", "ProtocolError", "expand_cells", "load_protocol"]
