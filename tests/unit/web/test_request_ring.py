"""The request journal: bounded per VM, in arrival order, filtered and limited on read,
secrets redacted on read, no answer body kept."""

from __future__ import annotations

from openimds.web.metadata.request_ring import REDACTED, RequestRing

HEADERS = [
    (b"Metadata", b"true"),
    (b"Authorization", b"Basic c2VjcmV0"),
    (b"X-IDENTITY-HEADER", b"app-service-secret"),
    (b"secret", b"service-fabric-secret"),
    (b"User-Agent", b"azsdk-python-identity/1.27.0"),
]


def test_rings_are_bounded_per_vm_and_read_in_order() -> None:
    journal = RequestRing(size=2)
    for n in range(3):
        journal.record("a", "GET", f"/p{n}".encode(), [], 200, "instance", "10.0.0.4")
    journal.record("b", "GET", b"/q", [], 404, "unknown", "10.0.0.5")
    assert [e["path"] for e in journal.entries()] == ["/p1", "/p2", "/q"]
    assert [e["path"] for e in journal.entries("a")] == ["/p1", "/p2"]
    assert journal.entries("nobody") == []
    assert [e["seq"] for e in journal.entries(after=3)] == [4]
    assert [e["path"] for e in journal.entries(limit=1)] == ["/q"]
    assert journal.entries(limit=0) == []
    journal.clear()
    assert journal.entries() == []


def test_entries_decode_query_headers_vm_and_fault() -> None:
    journal = RequestRing(size=10)
    target = b"/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fv"
    journal.record("vm-a", "GET", target, HEADERS, 429, "hook:flaky", "127.0.0.1")
    journal.record("-", "GET", b"/metadata/instance", [], 404, "unknown", "10.9.9.9")
    first, second = journal.entries()
    assert first["query"] == {"api-version": "2018-02-01", "resource": "https://v"}
    assert first["headers"] == {
        "Metadata": "true",
        "Authorization": REDACTED,
        "X-IDENTITY-HEADER": REDACTED,
        "secret": REDACTED,
        "User-Agent": "azsdk-python-identity/1.27.0",
    }
    assert (first["vm"], first["status"], first["fault"]) == ("vm-a", 429, "flaky")
    assert second["vm"] is None and "fault" not in second


def test_secret_query_parameters_are_redacted() -> None:
    journal = RequestRing(size=1)
    journal.record("a", "GET", b"/x?client_secret=s3&sig=abc&api-version=1", [], 200, "r", "p")
    assert journal.entries()[0]["query"] == {
        "client_secret": REDACTED,
        "sig": REDACTED,
        "api-version": "1",
    }


def test_recent_counts_a_vms_requests_after_a_moment() -> None:
    journal = RequestRing(size=10)
    for _ in range(3):
        journal.record("a", "GET", b"/p", [], 200, "instance", "10.0.0.4")
    journal.record("b", "GET", b"/q", [], 200, "instance", "10.0.0.5")
    stamps = [entry["at"] for entry in journal.entries("a")]
    assert journal.recent("a", stamps[0] - 1) == 3
    assert journal.recent("a", stamps[-1]) == 0  # only those after the moment
    assert journal.recent("b", 0) == 1
    assert journal.recent("nobody", 0) == 0


def test_reads_after_a_sequence_number_take_only_newer_entries_of_every_ring() -> None:
    journal = RequestRing(size=3)
    for n in range(5):  # seq 1..5, alternating VMs; ring a keeps 1, 3, 5 and b keeps 2, 4
        journal.record("ab"[n % 2], "GET", f"/p{n}".encode(), [], 200, "r", "p")
    assert [e["seq"] for e in journal.entries(after=0)] == [1, 2, 3, 4, 5]
    assert [e["seq"] for e in journal.entries(after=2)] == [3, 4, 5]
    assert [e["seq"] for e in journal.entries("a", after=3)] == [5]
    assert journal.entries(after=5) == []


def test_a_keep_filter_sees_the_stored_entry_and_limits_count_what_it_kept() -> None:
    journal = RequestRing(size=10)
    for status in (200, 404, 429, 200):
        journal.record("a", "GET", b"/x", [], status, "r", "p")
    kept = journal.entries(keep=lambda entry: entry[5] >= 400)
    assert [e["status"] for e in kept] == [404, 429]
    assert [e["seq"] for e in journal.entries(limit=1, keep=lambda e: e[5] == 200)] == [4]


def test_a_ring_wraps_around_in_order_with_repeats_and_changes() -> None:
    journal = RequestRing(size=3)
    paths = ["/a", "/a", "/b", "/b", "/b", "/c", "/a"]
    for n, path in enumerate(paths):
        journal.record("vm", "GET", path.encode(), [(b"N", str(n).encode())], 200, "r", "p")
    entries = journal.entries("vm")
    assert [(e["seq"], e["path"], e["headers"]["N"]) for e in entries] == [
        (5, "/b", "4"),
        (6, "/c", "5"),
        (7, "/a", "6"),
    ]
    assert entries[0]["at"] <= entries[1]["at"] <= entries[2]["at"]
    assert [e["seq"] for e in journal.entries(after=5)] == [6, 7]


def test_a_repeated_request_shares_the_objects_of_the_one_before() -> None:
    # An agent polling one path: the ring holds one copy of its target and headers, not
    # one per request (what kept a busy fleet's rings from fitting in the CPU cache).
    journal = RequestRing(size=100)
    for _ in range(50):
        target, headers = "/metadata/instance".encode("latin-1"), [(b"Metadata", b"true")]
        journal.record("vm", "GET", target, headers, 200, "instance", "10.0.0.4")
    journal.record("vm", "GET", b"/metadata/instance", [], 200, "instance", "10.0.0.4")
    requests = journal._rings["vm"].requests
    assert len(requests) == 51
    assert all(request is requests[0] for request in requests[:50])
    assert requests[50] is not requests[0]
    assert [e["headers"] for e in journal.entries()][-2:] == [{"Metadata": "true"}, {}]


def test_a_ring_grows_with_its_entries_up_to_the_size() -> None:
    journal = RequestRing(size=100_000)
    journal.record("vm", "GET", b"/x", [], 200, "r", "p")
    assert len(journal._rings["vm"].requests) == 1  # nothing set aside for the rest
