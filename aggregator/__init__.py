"""Feed aggregator for Indonesian regional government news."""

__version__ = "0.1.0"
