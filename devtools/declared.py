"""Compatibility alias of :mod:`devtools.harness` (the mocked-evaluation harness), where this code now lives.

``tests/infra``, ``tests/components``, ``tests/ops/test_ops_observability.py`` and ``docs/configuration.md``
(``python -m devtools.declared``) still use this name, and ``tests/components/urn_support.py`` imports it
from the tree of any commit it evaluates; remove this module once nothing does. Nothing else belongs here.
"""

import sys

from devtools.harness import *  # noqa: F403
from devtools.harness.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
