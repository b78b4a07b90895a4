"""charter.syntax package."""
