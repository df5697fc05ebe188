"""workbench.training."""
