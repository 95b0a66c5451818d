"""The test suite (a package, so ``tests.conftest`` and ``tests.servicehelpers`` import the
same way under ``pytest`` and ``python -m pytest``)."""
