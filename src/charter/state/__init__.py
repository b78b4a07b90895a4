"""charter.state package."""
