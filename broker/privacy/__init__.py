"""Privacy at rest: a data key per child, wrapped by key-encryption keys, and what uses it.

``kek`` holds the seam where a KMS or HSM plugs in (wrap/unwrap), ``models`` the wrapped keys,
``keyring`` the per-child keys with their cache, ``aead`` the record encryption itself.
"""
