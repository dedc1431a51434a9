"""The router: every event decided per candidate recipient by OPA, sliced, delivered, audited."""
