"""Policy tests: YAML test files beside the policies, a runner with rule and branch coverage."""

from charter.testing.loader import TestFile, TestLoadError, discover, load_test_file
from charter.testing.runner import CaseResult, FileResult, run_file

__all__ = ["CaseResult", "FileResult", "TestFile", "TestLoadError", "discover", "load_test_file", "run_file"]
