"""Signed legacy session ids."""

from libs.common.authn import Principal
from services.gateway.clients.sessions import SessionCodec

ALICE = Principal(kind="user", id="alice", name="alice")
BOB = Principal(kind="user", id="bob", name="bob")


def test_an_issued_session_opens_for_its_owner() -> None:
    codec = SessionCodec(b"secret", 60)
    sid = codec.issue(ALICE, "2025-06-18", "client/1")
    info = codec.open(sid, ALICE)
    assert info is not None and info.protocol == "2025-06-18" and info.client == "client/1"


def test_another_replica_with_the_same_secret_accepts_the_session() -> None:
    sid = SessionCodec(b"secret", 60).issue(ALICE, "2025-11-25", None)
    assert SessionCodec(b"secret", 60).open(sid, ALICE) is not None
    assert SessionCodec(b"other", 60).open(sid, ALICE) is None


def test_a_forged_or_foreign_or_ended_session_does_not_open() -> None:
    codec = SessionCodec(b"secret", 60)
    sid = codec.issue(ALICE, "2025-11-25", None)
    assert codec.open(sid[:-1] + ("0" if sid[-1] != "0" else "1"), ALICE) is None
    assert codec.open(sid, BOB) is None
    codec.end(sid)
    assert codec.open(sid, ALICE) is None


def test_an_expired_session_does_not_open() -> None:
    codec = SessionCodec(b"secret", -1)
    assert codec.open(codec.issue(ALICE, "2025-11-25", None), ALICE) is None
