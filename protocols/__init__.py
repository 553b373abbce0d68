"""The protocol files (one YAML per experiment), installed as package data of ``aebench.protocols``."""
