"""workbench.data."""
