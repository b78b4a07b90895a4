"""The command-line interface: thin click commands over the public API."""
