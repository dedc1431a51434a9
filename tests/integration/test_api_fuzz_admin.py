"""Schemathesis as the admin and with a garbage token: tests/integration/fuzzing.py."""

from tests.integration.fuzzing import fuzzed_as

test_no_server_errors_and_schema_conformance = fuzzed_as("admin", "invalid")
