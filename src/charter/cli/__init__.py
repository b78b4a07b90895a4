"""charter.cli package."""
