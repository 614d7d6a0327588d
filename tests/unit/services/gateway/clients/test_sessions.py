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


def test_a_session_opened_before_still_refuses_another_principal() -> None:
    codec = SessionCodec(b"secret", 60)
    sid = codec.issue(ALICE, "2025-11-25", None)
    assert codec.open(sid, ALICE) is not None
    assert codec.open(sid, ALICE) is not None  # remembered
    assert codec.open(sid, BOB) is None
    assert codec.open(sid, ALICE) is not None


def test_a_session_opened_before_no_longer_opens_once_ended() -> None:
    codec = SessionCodec(b"secret", 60)
    sid = codec.issue(ALICE, "2025-11-25", None)
    assert codec.open(sid, ALICE) is not None
    codec.end(sid)
    assert codec.open(sid, ALICE) is None


def test_a_session_opened_before_expires_with_its_id() -> None:
    now = [1_000_000.0]
    codec = SessionCodec(b"secret", 60, clock=lambda: now[0])
    sid = codec.issue(ALICE, "2025-11-25", None)
    now[0] += 59
    assert codec.open(sid, ALICE) is not None
    now[0] += 2
    assert codec.open(sid, ALICE) is None


def test_an_id_issued_with_a_shorter_lifetime_expires_when_its_issuer_said() -> None:
    now = [1_000_000.0]
    sid = SessionCodec(b"secret", 10, clock=lambda: now[0]).issue(ALICE, "2025-11-25", None)
    codec = SessionCodec(b"secret", 3600, clock=lambda: now[0])  # a replica told otherwise
    assert codec.open(sid, ALICE) is not None
    now[0] += 11
    assert codec.open(sid, ALICE) is None
