"""Key material: from settings in production, generated once and kept in the database otherwise.

Four keys: the RS256 key that signs access tokens, the HMAC keys behind child pseudonyms, the
Ed25519 key that signs audit checkpoints, the key-encryption keys (KEKs) that wrap each
child's data key and the follow-up's token key. Every process of a deployment must use the
same keys, so a generated key is stored (first writer wins) and read back by the others.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from joserfc.jwk import RSAKey
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broker.config import Settings
from broker.privacy.kek import KEK_BYTES, LocalKeks
from broker.privacy.keylog import KeyLog
from broker.privacy.keyring import SubjectKeys
from broker.registry.models import KeyMaterial
from broker.subjects.pseudonym import Pseudonymiser


@dataclass(frozen=True)
class Keys:
    jwt: RSAKey
    pseudonymiser: Pseudonymiser
    audit: Ed25519PrivateKey
    audit_kid: str
    # Checkpoint verification keys by key id: the current one and those rotated out.
    audit_public_keys: dict[str, Ed25519PublicKey]
    keks: LocalKeks
    followup: bytes  # makes the follow-up's ledger tokens (broker/followup/store.py)


async def _stored(
    factory: async_sessionmaker[AsyncSession], purpose: str, generate: str
) -> tuple[str, str]:
    """Return (kid, material) for ``purpose``, storing ``generate`` if none exists yet."""
    async with factory() as session:
        row = (
            (
                await session.execute(
                    select(KeyMaterial)
                    .where(KeyMaterial.purpose == purpose)
                    .order_by(KeyMaterial.created_at)
                )
            )
            .scalars()
            .first()
        )
        if row is not None:
            return row.kid, row.material
        kid = f"{purpose}-{secrets.token_hex(4)}"
        session.add(KeyMaterial(kid=kid, purpose=purpose, material=generate))
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
    return await _stored(factory, purpose, generate)


def _pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


async def load_keys(settings: Settings, factory: async_sessionmaker[AsyncSession]) -> Keys:
    if settings.jwt_private_key is not None:
        jwt_pem, jwt_kid = settings.jwt_private_key.get_secret_value(), settings.jwt_kid
    else:
        fresh = RSAKey.generate_key(2048, private=True).as_pem(private=True).decode()
        jwt_kid, jwt_pem = await _stored(factory, "jwt", fresh)
    jwt_key = RSAKey.import_key(jwt_pem, parameters={"kid": jwt_kid, "use": "sig", "alg": "RS256"})

    if settings.pseudonym_keys:
        secrets_by_kid = {
            kid: base64.b64decode(v.get_secret_value())
            for kid, v in settings.pseudonym_keys.items()
        }
        current = settings.pseudonym_current_kid or sorted(secrets_by_kid)[-1]
    else:
        kid, material = await _stored(
            factory, "pseudonym", base64.b64encode(secrets.token_bytes(32)).decode()
        )
        secrets_by_kid, current = {kid: base64.b64decode(material)}, kid
    pseudonymiser = Pseudonymiser(secrets_by_kid, current)

    if settings.audit_signing_key is not None:
        audit_pem = settings.audit_signing_key.get_secret_value()
        audit_kid = settings.audit_signing_kid
    else:
        audit_kid, audit_pem = await _stored(factory, "audit", _pem(Ed25519PrivateKey.generate()))
    audit_key = serialization.load_pem_private_key(audit_pem.encode(), password=None)
    if not isinstance(audit_key, Ed25519PrivateKey):
        raise ValueError("SAMSYN_AUDIT_SIGNING_KEY must be an Ed25519 private key in PEM")
    public_keys = {kid: public_key(pem) for kid, pem in settings.audit_previous_public_keys.items()}
    public_keys[audit_kid] = audit_key.public_key()

    if settings.kek_keys:
        keks = LocalKeks.from_base64(
            {kid: v.get_secret_value() for kid, v in settings.kek_keys.items()},
            settings.kek_current_kid,
        )
    else:
        # Development and test only: a KEK beside the keys it wraps protects nothing, which is
        # why production must bring its own (settings, or a KMS behind KeyWrapper).
        kid, material = await _stored(
            factory, "kek", base64.b64encode(secrets.token_bytes(KEK_BYTES)).decode()
        )
        keks = LocalKeks.from_base64({kid: material}, kid)
    followup = await secret_key(settings.followup_key, factory, "followup")
    return Keys(
        jwt=jwt_key,
        pseudonymiser=pseudonymiser,
        audit=audit_key,
        audit_kid=audit_kid,
        audit_public_keys=public_keys,
        followup=followup,
        keks=keks,
    )


def subject_keys_of(
    settings: Settings, factory: async_sessionmaker[AsyncSession], keys: Keys, log: KeyLog
) -> SubjectKeys:
    """The children's data keys of this process, wrapped by the deployment's KEKs and written to
    the key log ``log`` too."""
    return SubjectKeys(
        factory,
        keys.keks,
        log,
        cache_size=settings.subject_key_cache_size,
        ttl_s=settings.subject_key_cache_ttl_s,
    )


async def secret_key(
    configured: SecretStr | None, factory: async_sessionmaker[AsyncSession], purpose: str
) -> bytes:
    """32 secret bytes: from settings (base64), or generated at first start and kept."""
    if configured is not None:
        return base64.b64decode(configured.get_secret_value())
    _, material = await _stored(
        factory, purpose, base64.b64encode(secrets.token_bytes(32)).decode()
    )
    return base64.b64decode(material)


def public_key(pem: str) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM, or a ValueError saying it is not one."""
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("an audit checkpoint key must be Ed25519")
    return key


def pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def verification_keys(settings: Settings, signing: RSAKey) -> list[RSAKey]:
    """The token-verifying keys: the signing key, then SAMSYN_JWT_PREVIOUS_PUBLIC_KEYS (public
    keys only, each under its own kid; a kid that clashes with the signing key's is an error,
    since a token could then not name its key)."""
    keys = [signing]
    for kid, pem in sorted(settings.jwt_previous_public_keys.items()):
        if kid == signing.kid:
            raise ValueError(f"SAMSYN_JWT_PREVIOUS_PUBLIC_KEYS repeats the signing kid {kid!r}")
        key = RSAKey.import_key(pem, parameters={"kid": kid, "use": "sig", "alg": "RS256"})
        if key.is_private:
            raise ValueError(f"SAMSYN_JWT_PREVIOUS_PUBLIC_KEYS[{kid!r}] must be a public key")
        keys.append(key)
    return keys
