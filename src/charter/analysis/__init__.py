"""Proved policy analysis: the compiled policy encoded for the z3 SMT solver (the only z3 importer)."""
