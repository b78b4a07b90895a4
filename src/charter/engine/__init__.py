"""charter.engine package."""
