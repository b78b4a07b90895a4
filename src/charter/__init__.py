"""charter: a declarative policy-as-code boundary engine for orchestrated AI agents."""

__version__ = "0.1.0"
