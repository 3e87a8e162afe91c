"""sandbox.digest computes what hashlib, hmac and secrets compute, without OpenSSL (issue 19:
libcrypto was 3.7 MB of every session's resident memory)."""

from __future__ import annotations

import hashlib
import hmac
import os

import pytest

from sandbox import digest

# RFC 4231 (HMAC-SHA256 test vectors): cases 1, 2, 6 (a key longer than the block).
RFC4231 = [
    (
        b"\x0b" * 20,
        b"Hi There",
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
    ),
    (
        b"Jefe",
        b"what do ya want for nothing?",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ),
    (
        b"\xaa" * 131,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
]


@pytest.mark.parametrize(("key", "msg", "want"), RFC4231)
def test_hmac_sha256_rfc4231(key: bytes, msg: bytes, want: str) -> None:
    assert digest.hmac_sha256(key, msg).hex() == want


def test_hmac_sha256_is_hmac_new_for_every_key_length() -> None:
    # Around the block size (64) the key is padded, taken as is, or hashed first.
    for n in (0, 1, 32, 63, 64, 65, 128, 200):
        key, msg = os.urandom(n), os.urandom(n * 3 + 1)
        assert digest.hmac_sha256(key, msg) == hmac.new(key, msg, hashlib.sha256).digest()
    # the twin: another key gives another tag
    assert digest.hmac_sha256(b"k1", b"m") != digest.hmac_sha256(b"k2", b"m")


def test_sha256_and_blake2s_are_hashlibs() -> None:
    data = os.urandom(1000)
    assert digest.sha256(data).hexdigest() == hashlib.sha256(data).hexdigest()
    h = digest.sha256(b"a")
    h.update(b"bc")
    assert h.digest() == hashlib.sha256(b"abc").digest()
    k = b"key"
    assert (
        digest.blake2s(data, key=k, digest_size=16, person=b"p").hexdigest()
        == hashlib.blake2s(data, key=k, digest_size=16, person=b"p").hexdigest()
    )


def test_compare_digest() -> None:
    assert digest.compare_digest(b"abc", b"abc")
    assert not digest.compare_digest(b"abc", b"abd")
    assert not digest.compare_digest(b"abc", b"ab")
    assert digest.compare_digest("deadbeef", "deadbeef")
    assert not digest.compare_digest("deadbeef", "deadbeee")
    with pytest.raises(TypeError):
        digest.compare_digest(b"abc", "abc")


def test_tokens() -> None:
    assert len(digest.token_bytes(16)) == 16
    t = digest.token_hex(4)
    assert len(t) == 8 and int(t, 16) >= 0
    assert digest.token_hex(16) != digest.token_hex(16)
