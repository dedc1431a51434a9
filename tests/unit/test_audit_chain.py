"""Tamper evidence of the audit chain: every edit, deletion, swap and truncation is caught."""

from __future__ import annotations

import copy
import json
from typing import Any

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker.audit.chain import (
    GENESIS,
    HASHED_FIELDS,
    canonical,
    record_hash,
    sign_checkpoint,
    verify,
)
from broker.audit.records import record
from broker.records import AuditAction

KEY = Ed25519PrivateKey.generate()
KEYS = {"k1": KEY.public_key()}


def chain(n: int, checkpoint_every: int = 4) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    records, checkpoints, prev = [], [], GENESIS
    for seq in range(1, n + 1):
        rec: dict[str, Any] = {
            **msgspec.structs.asdict(
                record(
                    action=AuditAction.DECISION,
                    outcome="allow" if seq % 2 else "deny",
                    actor_org="skola",
                    recipient_org="vc",
                    reasons=[f"r{seq}"],
                )
            ),
            "seq": seq,
        }
        rec["prev_hash"] = prev
        rec["hash"] = prev = record_hash(prev, rec)
        records.append(rec)
        if seq % checkpoint_every == 0:
            checkpoints.append(
                {
                    "seq": seq,
                    "head_hash": prev,
                    "signature": sign_checkpoint(KEY, seq, prev),
                    "key_id": "k1",
                }
            )
    return records, checkpoints


def test_intact_chain_verifies() -> None:
    """An untouched chain is ok, with its head and record count."""
    records, cps = chain(10)
    verdict = verify(records, cps, KEYS)
    assert verdict.ok
    assert verdict.records == 10
    assert verdict.head == records[-1]["hash"]
    assert verdict.first_bad_seq is None


@pytest.mark.parametrize("field", ["outcome", "recipient_org", "reasons", "time"])
def test_changed_field_is_detected_at_that_record(field: str) -> None:
    """Editing any hashed field of record 5 makes record 5 the first bad one."""
    records, cps = chain(10)
    tampered = copy.deepcopy(records)
    tampered[4][field] = ["x"] if field == "reasons" else "tampered"
    verdict = verify(tampered, cps, KEYS)
    assert not verdict.ok
    assert verdict.first_bad_seq == 5


def test_deleted_record_is_detected() -> None:
    """Removing record 6 leaves a gap: seq 6 is reported."""
    records, cps = chain(10)
    verdict = verify(records[:5] + records[6:], cps, KEYS)
    assert not verdict.ok
    assert verdict.first_bad_seq == 6


def test_swapped_records_are_detected() -> None:
    """Swapping records 3 and 4 (renumbered to look in order) breaks the link at seq 3."""
    records, cps = chain(10)
    swapped = copy.deepcopy(records)
    swapped[2], swapped[3] = swapped[3], swapped[2]
    swapped[2]["seq"], swapped[3]["seq"] = 3, 4
    verdict = verify(swapped, cps, KEYS)
    assert not verdict.ok
    assert verdict.first_bad_seq == 3


def test_truncated_tail_after_checkpoint_is_detected() -> None:
    """Cutting records 7-10 leaves the checkpoint at 8 pointing past the end."""
    records, cps = chain(10)
    verdict = verify(records[:6], cps, KEYS)
    assert not verdict.ok
    assert verdict.first_bad_seq == 7


def test_rewritten_chain_fails_the_signed_checkpoint() -> None:
    """Re-hashing the whole chain after an edit still contradicts the signed checkpoint."""
    records, cps = chain(8)
    rewritten, prev = copy.deepcopy(records), GENESIS
    rewritten[1]["outcome"] = "allow"  # record 2 was a deny
    for rec in rewritten:
        rec["prev_hash"] = prev
        rec["hash"] = prev = record_hash(prev, rec)
    verdict = verify(rewritten, cps, KEYS)
    assert not verdict.ok
    assert verdict.first_bad_seq == 4


def test_forged_checkpoint_signature_is_detected() -> None:
    """A checkpoint signed by another key is rejected."""
    records, cps = chain(8)
    other = Ed25519PrivateKey.generate()
    cps[0]["signature"] = sign_checkpoint(other, cps[0]["seq"], cps[0]["head_hash"])
    assert not verify(records, cps, KEYS).ok


def test_checkpoints_verify_across_a_key_rotation() -> None:
    """After a rotation, checkpoints signed by the old key verify with its published public key;
    a checkpoint naming a key nobody published fails."""
    records, cps = chain(8)
    new = Ed25519PrivateKey.generate()
    cps[1].update(key_id="k2", signature=sign_checkpoint(new, cps[1]["seq"], cps[1]["head_hash"]))
    assert verify(records, cps, {"k1": KEY.public_key(), "k2": new.public_key()}).ok
    verdict = verify(records, cps, {"k2": new.public_key()})
    assert not verdict.ok
    assert verdict.problem == "checkpoint 4 signed by an unknown key"


def _stdlib_canonical(body: dict[str, Any]) -> bytes:
    """The chain's encoding as its first records were hashed."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def test_the_canonical_bytes_are_those_the_chain_began_with() -> None:
    """Every code point (but lone surrogates, which no record can hold) in a value and in a
    list, nulls, booleans, numbers and the optional fields: the same bytes as the standard
    library's form, so records sealed before the encoder changed still verify."""
    text = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    base = dict.fromkeys(HASHED_FIELDS) | {"seq": 2**40, "review": False}
    for start in range(0, len(text), 4096):
        piece = text[start : start + 4096]
        rec = base | {"purpose": piece, "reasons": [piece, piece[::-1]], "statute": piece[:7]}
        body = {k: rec.get(k) for k in HASHED_FIELDS} | {"statute": rec["statute"], "review": False}
        assert canonical(rec) == _stdlib_canonical(body)
    records, _ = chain(3)
    for r in records:
        body = {k: r.get(k) for k in HASHED_FIELDS}
        body |= {k: r[k] for k in ("statute", "review") if r.get(k) is not None}
        assert canonical(r) == _stdlib_canonical(body)
