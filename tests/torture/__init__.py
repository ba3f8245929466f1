"""The torture suite: a chaos run with a checker that proves no job is lost.

``python -m tests.torture.run`` (``make torture``) is the harness; see
``run.py`` for what it does and ``check.py`` for what it proves.
"""
