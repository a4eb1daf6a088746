#!/usr/bin/env python3
"""Checks serial_ast.py: threads that build ASTs while the garbage collector runs Python code
(and so lets another thread in mid-build) race on CPython 3.11, and do not once serial_ast's
lock is installed.

usage: serial_ast_check.py

Prints how many builds failed without the lock (on an interpreter without the race, 0: that
part is informative) and with it; exits 0 only if none failed with the lock.
"""
import ast
import gc
import inspect
import json.decoder
import sys
import threading

import serial_ast

SOURCE = inspect.getsource(json.decoder) * 3
THREADS = 4
BUILDS = 60


def race() -> int:
    """Builds ASTs on several threads at once; returns how many builds failed."""
    failures = []

    def build():
        for _ in range(BUILDS):
            try:
                compile(SOURCE, "race", "exec", ast.PyCF_ONLY_AST)
            except SystemError as error:
                failures.append(error)
            # ast.parse goes through the same call.
            ast.parse("x = [1, (2, {3: 4})]")

    threads = [threading.Thread(target=build) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(failures)


def switch_threads(phase, info):
    # Python code run by a collection in the middle of a build: the interpreter may hand the
    # GIL to another thread here, as a finalizer or a weakref callback would.
    count = 0
    for _ in range(300):
        count += 1


def main() -> int:
    sys.setswitchinterval(1e-6)
    gc.set_threshold(100, 5, 5)
    gc.callbacks.append(switch_threads)
    without = race()
    serial_ast.install()
    with_lock = race()
    print(f"without the lock: {without} failed builds")
    print(f"with the lock: {with_lock} failed builds")
    return 0 if with_lock == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
