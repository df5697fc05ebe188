"""workbench.models."""
