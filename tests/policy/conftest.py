"""Shared set-up of the policy pack's tests."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
POLICY_DIR = ROOT / "policy"

# The Pulumi CLI runs the pack with policy/ on sys.path; the tests import its modules the same way.
if str(POLICY_DIR) not in sys.path:
    sys.path.insert(0, str(POLICY_DIR))
