"""The auditors' web console at ``/audit/``: server-rendered search, record view, verify, CSV."""
