"""CNN Workbench: pick a convolutional network, inspect it, train it, watch it learn."""

__version__ = "0.1.0"
