"""Who the caller is: credentials and client address read from call metadata."""

from __future__ import annotations

from server.auth import BRIDGE_SECRET_KEY, Credentials, ForwardingTrust, peer_address

SPOOFED = [("x-forwarded-for", "203.0.113.7")]


def test_forwarded_address_is_believed_only_from_a_trusted_proxy() -> None:
    trusted = ForwardingTrust.of(["10.0.0.5"])

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


def test_no_forwarded_address_is_believed_by_default_not_even_from_loopback() -> None:
    local = Credentials.from_metadata(SPOOFED, "ipv4:127.0.0.1:41000")
    local6 = Credentials.from_metadata(SPOOFED, "ipv6:[::1]:41000")

    assert (local.client_ip, local6.client_ip) == ("127.0.0.1", "::1")


def test_the_bridge_is_believed_only_with_its_secret() -> None:
    trust = ForwardingTrust.of(secret="s3cret-of-the-bridge")

    secret = (BRIDGE_SECRET_KEY, "s3cret-of-the-bridge")
    vouched = Credentials.from_metadata([*SPOOFED, secret], "ipv4:127.0.0.1:1", trust)
    guessed = Credentials.from_metadata([*SPOOFED, (BRIDGE_SECRET_KEY, "guess")], "ipv4:127.0.0.1:1", trust)

    assert vouched.client_ip == "203.0.113.7"
    assert guessed.client_ip == "127.0.0.1"


def test_a_chain_through_trusted_networks_yields_its_first_untrusted_hop_from_the_right() -> None:
    trust = ForwardingTrust.of(["10.0.0.0/8"])
    chain = [("x-forwarded-for", "198.51.100.1, 203.0.113.7, 10.1.2.3")]

    credentials = Credentials.from_metadata(chain, "ipv4:10.0.0.5:41000", trust)

    # 198.51.100.1 was written by the client itself: only what trusted proxies appended counts.
    assert credentials.client_ip == "203.0.113.7"
