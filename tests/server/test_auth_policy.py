"""Who the caller is: credentials and client address read from call metadata."""

from __future__ import annotations

from server.auth import Credentials, peer_address

SPOOFED = [("x-forwarded-for", "203.0.113.7")]


def test_forwarded_address_is_believed_only_from_a_trusted_proxy() -> None:
    trusted = frozenset({"10.0.0.5"})

    from_proxy = Credentials.from_metadata(SPOOFED, "ipv4:10.0.0.5:41000", trusted)
    from_elsewhere = Credentials.from_metadata(SPOOFED, "ipv4:198.51.100.9:41000", trusted)
    unknown_peer = Credentials.from_metadata(SPOOFED, "", trusted)

    assert from_proxy.client_ip == "203.0.113.7"
    assert from_elsewhere.client_ip == "198.51.100.9"
    assert unknown_peer.client_ip is None


def test_peer_addresses_of_both_families() -> None:
    assert peer_address("ipv4:127.0.0.1:5000") == "127.0.0.1"
    assert peer_address("ipv6:[::1]:5000") == "::1"
    assert peer_address("unix:/tmp/socket") == ""


def test_credentials_are_read_from_their_headers() -> None:
    credentials = Credentials.from_metadata(
        [
            ("authorization", "Bearer abc"),
            ("x-api-key", "rls_x"),
            ("cookie", "theme=1; access_token=tok"),
            ("x-csrf-token", "c"),
            ("x-session-id", "s"),
            ("x-http-method", "PUT"),
        ],
        "ipv4:127.0.0.1:1",
    )

    assert (credentials.bearer, credentials.api_key, credentials.cookie_token) == ("abc", "rls_x", "tok")
    assert (credentials.csrf_token, credentials.session_id, credentials.http_method) == ("c", "s", "PUT")
    assert Credentials.from_metadata([("authorization", "Basic abc")]).bearer is None
