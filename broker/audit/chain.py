"""The hash chain: canonical encoding, record hashes, checkpoint signatures and verification.

``hash = SHA-256(prev_hash || canonical JSON of the record with its seq)``. A checkpoint signs
``seq`` and the head hash at that seq with Ed25519, so a truncated tail or a rewritten chain that
recomputes every hash is caught by the last signed checkpoint.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

GENESIS = "0" * 64
# A key id that matches any checkpoint: one public key given for a whole export.
ANY_KEY = "*"
HASHED_FIELDS = (
    "seq",
    "record_id",
    "time",
    "actor_org",
    "actor_client",
    "action",
    "subject_pseudonym",
    "event_id",
    "recipient_org",
    "outcome",
    "legal_ground",
    "purpose",
    "categories_shared",
    "categories_withheld",
    "reasons",
    "policy_revision",
    "decision_id",
)
# Fields added later (the statute a disclosure rests on, whether it is an open review item):
# hashed when a record has them, so that records sealed before they existed still verify.
OPTIONAL_HASHED_FIELDS = ("statute", "review")


# The bytes of ``json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
# (the chain's encoding since its first record; a test pins it over every code point) at a
# third of the CPU: hashing was a tenth of the sealer's.
_encoder = msgspec.json.Encoder(order="sorted")


def canonical(record: dict[str, Any]) -> bytes:
    body = {k: record.get(k) for k in HASHED_FIELDS}
    body.update({k: record[k] for k in OPTIONAL_HASHED_FIELDS if record.get(k) is not None})
    return _encoder.encode(body)


def record_hash(prev_hash: str, record: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical(record)).hexdigest()


def checkpoint_message(seq: int, head_hash: str) -> bytes:
    return f"samsyn-audit-checkpoint:{seq}:{head_hash}".encode()


def sign_checkpoint(key: Ed25519PrivateKey, seq: int, head_hash: str) -> str:
    return base64.b64encode(key.sign(checkpoint_message(seq, head_hash))).decode()


@dataclass(frozen=True)
class Verdict:
    ok: bool
    records: int
    head: str
    first_bad_seq: int | None
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "head": self.head,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
        }


class ChainWalk:
    """Verification one record at a time, in constant memory: only the head hashes at the
    checkpoints' seqs are kept, so a chain of tens of millions of records verifies as it is
    read (from the database page by page, or from an export file as it is parsed)."""

    def __init__(self, checkpoints: Iterable[dict[str, Any]]) -> None:
        self.checkpoints = sorted(checkpoints, key=lambda c: int(c["seq"]))
        self._wanted = {int(c["seq"]) for c in self.checkpoints}
        self._at: dict[int, str] = {}
        self.prev, self.count, self._expected = GENESIS, 0, 1

    def step(self, rec: dict[str, Any]) -> Verdict | None:
        """Take the next record; the failing verdict when it breaks the chain, else None."""
        seq = int(rec["seq"])
        if seq != self._expected:
            return Verdict(
                False, self.count, self.prev, self._expected, f"seq {self._expected} missing"
            )
        if rec["prev_hash"] != self.prev:
            return Verdict(False, self.count, self.prev, seq, "prev_hash does not link")
        if record_hash(self.prev, rec) != rec["hash"]:
            return Verdict(False, self.count, self.prev, seq, "hash does not match the record")
        self.prev, self.count, self._expected = rec["hash"], self.count + 1, seq + 1
        if seq in self._wanted:
            self._at[seq] = self.prev
        return None

    def finish(self, public_keys: Mapping[str, Ed25519PublicKey]) -> Verdict:
        """After the last record: every checkpoint's signature and head."""
        count, prev = self.count, self.prev
        for cp in self.checkpoints:
            seq = int(cp["seq"])
            public_key = public_keys.get(str(cp.get("key_id"))) or public_keys.get(ANY_KEY)
            if public_key is None:
                return Verdict(
                    False, count, prev, seq, f"checkpoint {seq} signed by an unknown key"
                )
            try:
                public_key.verify(
                    base64.b64decode(cp["signature"]), checkpoint_message(seq, cp["head_hash"])
                )
            except (InvalidSignature, ValueError):
                return Verdict(False, count, prev, seq, f"checkpoint {seq} signature invalid")
            if seq not in self._at:
                return Verdict(
                    False,
                    count,
                    prev,
                    count + 1,
                    f"checkpoint {seq} is past the end: records were removed",
                )
            if self._at[seq] != cp["head_hash"]:
                return Verdict(False, count, prev, seq, f"checkpoint {seq} does not match")
        return Verdict(True, count, prev, None)


def verify(
    records: Iterable[dict[str, Any]],
    checkpoints: Iterable[dict[str, Any]],
    public_keys: Mapping[str, Ed25519PublicKey],
) -> Verdict:
    """Walk the chain in seq order; the first record that breaks it is ``first_bad_seq``.

    Edits break that record's hash; deletions and swaps break the seq sequence or the link;
    a cut-off tail leaves a signed checkpoint pointing past the end. Each checkpoint is checked
    with the public key of its ``key_id`` (``ANY_KEY`` stands for one key given for all), so
    checkpoints signed before a key rotation still verify. ``records`` may be any iterable:
    they are walked once and not kept (:class:`ChainWalk`).
    """
    walk = ChainWalk(checkpoints)
    for rec in records:
        if (broken := walk.step(rec)) is not None:
            return broken
    return walk.finish(public_keys)
