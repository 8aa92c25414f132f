#!/usr/bin/python3
"""Runs subrelay's integration suite against a built binary.

    run_tests.py --binary build/relay/subrelay [-k PATTERN] [test_module ...]

Exit status is non-zero on any failure or error. Skipped tests are listed
loudly. A missing tool (swaks, curl, openssl, aiosmtpd) is a failure.
"""
import argparse
import os
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

REQUIRED_TOOLS = ("swaks", "curl", "openssl")


def check_prerequisites(binary):
    problems = []
    for tool in REQUIRED_TOOLS:
        if shutil.which(tool) is None:
            problems.append("required tool %r is not installed" % tool)
    try:
        import aiosmtpd  # noqa: F401
    except ImportError:
        problems.append("the Python module aiosmtpd is not importable by %s" % sys.executable)
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        problems.append("subrelay binary %r is missing or not executable" % binary)
    return problems


class LoudResult(unittest.TextTestResult):
    """Prints the tail of the logs of a failing test's processes."""

    def _dump_logs(self, test):
        import harness
        for path in getattr(test, "log_files", []):
            self.stream.writeln("---- %s (tail) ----" % path)
            self.stream.write(harness.tail(path, 40))
        if getattr(test, "log_files", None):
            self.stream.writeln("---- end of logs ----")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._dump_logs(test)

    def addError(self, test, err):
        super().addError(test, err)
        self._dump_logs(test)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True, help="path to the subrelay executable")
    parser.add_argument("-k", dest="patterns", action="append", default=[],
                        help="only run tests matching this substring/glob (repeatable)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("modules", nargs="*", help="test modules (default: all test_*.py)")
    args = parser.parse_args()

    binary = os.path.abspath(args.binary)
    problems = check_prerequisites(binary)
    if problems:
        for p in problems:
            print("FAILURE: " + p, file=sys.stderr)
        return 2

    os.environ["SUBRELAY_BINARY"] = binary
    root = tempfile.mkdtemp(prefix="subrelay-it-")
    os.environ["SUBRELAY_IT_ROOT"] = root

    loader = unittest.TestLoader()
    if args.patterns:
        loader.testNamePatterns = [p if "*" in p else "*%s*" % p for p in args.patterns]
    if args.modules:
        suite = unittest.TestSuite(loader.loadTestsFromName(m.removesuffix(".py"))
                                   for m in args.modules)
    else:
        suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)

    runner = unittest.TextTestRunner(verbosity=2, resultclass=LoudResult, stream=sys.stdout)
    result = runner.run(suite)

    if result.skipped:
        print("\n" + "!" * 70)
        print("!!! %d TEST(S) SKIPPED:" % len(result.skipped))
        for test, reason in result.skipped:
            print("!!!   %s: %s" % (test.id(), reason))
        print("!" * 70)
    ok = result.wasSuccessful() and result.testsRun > 0
    if ok and not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print("test files kept in %s" % root)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
