"""workbench.runs."""
