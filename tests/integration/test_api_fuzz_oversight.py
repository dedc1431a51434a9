"""Schemathesis as an auditor and as a follow-up reader: tests/integration/fuzzing.py."""

from tests.integration.fuzzing import fuzzed_as

test_no_server_errors_and_schema_conformance = fuzzed_as("oversight", "followup")
