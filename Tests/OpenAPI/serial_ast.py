#!/usr/bin/env python3
"""Runs a module as `python -m MODULE ARGS...` would, with Python's AST construction made one
thread at a time.

usage: serial_ast.py MODULE [ARGS]...

Why: CPython 3.11 keeps the AST constructor's recursion depth per interpreter, not per thread
(see python/cpython#106905). When two threads build ASTs at once (`compile` with
`ast.PyCF_ONLY_AST`, which `ast.parse` calls), one of them can fail with "SystemError: AST
constructor recursion depth mismatch". schemathesis runs its workers in threads, and anyio builds
an AST of its own source the first time a worker imports it: a CI run failed so, on a
schemathesis check that had nothing to do with the server. A lock around those calls removes the
race; compiling to bytecode (imports) does not build Python AST objects and is left alone.
"""
import ast
import builtins
import runpy
import sys
import threading

_compile = builtins.compile
# Reentrant: a finalizer run by the garbage collector in the middle of a build may build one too.
_ast_lock = threading.RLock()


def _serial_compile(source, filename, mode, flags=0, *args, **kwargs):
    if flags & ast.PyCF_ONLY_AST:
        with _ast_lock:
            return _compile(source, filename, mode, flags, *args, **kwargs)
    return _compile(source, filename, mode, flags, *args, **kwargs)


def install() -> None:
    """From now on, this interpreter builds one AST at a time."""
    builtins.compile = _serial_compile


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    install()
    module = sys.argv[1]
    sys.argv = [module] + sys.argv[2:]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
