"""Schemathesis as a school and as social services: tests/integration/fuzzing.py."""

from tests.integration.fuzzing import fuzzed_as

test_no_server_errors_and_schema_conformance = fuzzed_as("school", "social_services")
