"""The paper's Tables 1-5 as CSV, installed as package data of ``aebench.paper``."""
