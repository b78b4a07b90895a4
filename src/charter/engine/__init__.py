"""The decision engine: pure decision logic over a compiled policy; never imports the parser."""
