"""charter.compiler package."""
