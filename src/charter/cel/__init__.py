"""charter.cel package."""
