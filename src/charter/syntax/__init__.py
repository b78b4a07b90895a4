"""The syntax package: the only importer of lark. Parser, typed AST, transformer and printer."""

from charter.syntax.parser import ParseResult, grammar_text, parse_file, parse_text

__all__ = ["ParseResult", "grammar_text", "parse_file", "parse_text"]
