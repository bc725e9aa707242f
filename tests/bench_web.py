"""Bench: the time /subscribe takes with the mail server down, for an address that is new,
subscribed or unsubscribed (issue #13: it was 4 ms against 15 ms, and 200 against 503, a
membership oracle). Measured on the WSGI app itself, requests interleaved, so the machine's
noise hits every kind alike; the ratios to 'new' should stay near 1."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from pipeline import services, store
from pipeline.core.models import Subscriber
from pipeline.core.runtime import Runtime
from pipeline.interfaces.serve import create_app
from tests.deliver_support import SECRET, newsletter

ROUNDS = int(os.environ.get("BENCH_WEB_ROUNDS", "300"))
KINDS = {"new": None, "subscribed": "active", "unsubscribed": "unsubscribed"}


def main() -> None:
    """Print the median /subscribe time per kind of address and the ratio to 'new'."""
    os.environ.setdefault("DIGEST_SECRET", SECRET)
    with tempfile.TemporaryDirectory() as tmp:
        settings = newsletter(Path(tmp), port=1)  # nothing listens on port 1
        conn = services.open_store(settings)
        with store.transaction(conn):
            for kind, status in KINDS.items():
                for i in range(ROUNDS if status else 0):
                    store.save_subscriber(
                        conn, Subscriber(f"{kind}{i}@example.org", "all", (), status))
        conn.close()
        client = create_app(settings, Runtime()).test_client()  # its mail worker not started
        times: dict[str, list[float]] = {kind: [] for kind in KINDS}
        for i in range(ROUNDS):
            for n, kind in enumerate(KINDS):
                start = time.perf_counter()
                reply = client.post("/subscribe", data={"email": f"{kind}{i}@example.org"},
                                    environ_base={"REMOTE_ADDR": f"10.{n}.{i // 250}.{i % 250}"})
                times[kind].append(time.perf_counter() - start)
                assert reply.status_code == 200, reply.status_code
    new = statistics.median(times["new"])
    for kind, values in times.items():
        median = statistics.median(values)
        print(f"subscribe {kind:13} median {median * 1000:6.3f} ms  ratio to new "
              f"{median / new:4.2f}  ({ROUNDS} requests)")


if __name__ == "__main__":
    main()
