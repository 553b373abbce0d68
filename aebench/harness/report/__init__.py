"""Reports over the run store: tables in the paper's layout and plots."""
