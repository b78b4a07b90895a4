"""The charter language server (pygls): a thin shell of LSP types over charter.editing."""
