"""The dashboard's live view: page load time, and how many decisions/s it keeps up with.

    .venv/bin/python bench/bench_ui.py [--rates 5000,10000,20000] [--seconds 5]

A trail segment gets decision lines (the size of real supervisor entries) appended
at a fixed rate, in 10 ms batches, while headless Chromium shows the Live page;
every 0.5 s the page's own count of entries received is read over the DevTools
protocol.  "Keeps up" means the lag (written - received) stays within what one
poll (0.1 s) and one batch carry and is gone within a second after the writes
stop.  Prints one JSON object; nothing here is asserted by a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sandbox.ui.server import Dashboard
from tests.ui.cdp import Browser


def _line(seq: int) -> bytes:
    e = {
        "action": "file_read", "argv": None, "detail": None, "errno": 0, "event_seq": seq,
        "exec_race": False, "flags": [], "hash": "ab" * 48, "layer": "filesystem",
        "mode": "enforce", "origin": "policy", "pid": 4242, "prev": "cd" * 32,
        "result": "deny" if seq % 7 == 0 else "allow", "rule": "rule 3, .landgate.yaml:12",
        "rule_index": 3, "rule_source": ".landgate.yaml:12", "seq": seq,
        "session": "20261204-000000-bench0", "syscall": 257,
        "target": f"/work/project/src/module_{seq % 500}.py", "tid": 4242,
        "ts": time.time(), "ts_decided": time.time(), "type": "decision",
    }  # fmt: skip
    return json.dumps(e, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def run_rate(b: Browser, seg: Path, rate: int, seconds: float, start_seq: int) -> dict:
    written = [0]
    stop = threading.Event()

    def writer() -> None:
        seq, t0 = start_seq, time.monotonic()
        with seg.open("ab", buffering=0) as f:
            while not stop.is_set():
                due = int((time.monotonic() - t0) * rate) - written[0]
                if due > 0:
                    f.write(b"".join(_line(seq + i) for i in range(due)))
                    seq += due
                    written[0] += due
                time.sleep(0.01)

    base = b.js("window.__landgate.received")
    t = threading.Thread(target=writer)
    t0 = time.monotonic()
    t.start()
    lags = []
    while time.monotonic() - t0 < seconds:
        time.sleep(0.5)
        lags.append(written[0] - (b.js("window.__landgate.received") - base))
    stop.set()
    t.join()
    total, t_stop = written[0], time.monotonic()
    while b.js("window.__landgate.received") - base < total and time.monotonic() - t_stop < 10:
        time.sleep(0.05)
    drained = time.monotonic() - t_stop
    got = b.js("window.__landgate.received") - base
    return {
        "target_per_s": rate,
        "written": total,
        "written_per_s": round(total / (t_stop - t0)),
        "received": got,
        "max_lag_entries": max(lags),
        "median_lag_entries": statistics.median(lags),
        "drain_s": round(drained, 3),
        "kept_up": got == total and drained < 1.0,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="5000,10000,20000")
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="lg-bench-ui-"))
    audit = tmp / "audit"
    audit.mkdir()
    seg = audit / "trail-000001.jsonl"
    seg.write_bytes(b"")
    (tmp / "profile").mkdir()
    dash = Dashboard(audit, tmp / ".landgate.yaml", register=False)
    dash.start()
    b = Browser(tmp / "profile")
    out: dict = {"loads_ms": [], "rates": []}
    try:
        for _ in range(6):
            b.goto(dash.url)
            b.wait("document.getElementById('main')?.dataset.view === 'live'")
            load = b.js(
                "(() => { const n = performance.getEntriesByType('navigation')[0];"
                " return n.loadEventEnd - n.startTime; })()"
            )
            out["loads_ms"].append(load)
        out["loads_ms"] = out["loads_ms"][1:]  # the first one also starts the browser's caches
        out["page_load_ms_median"] = statistics.median(out["loads_ms"])
        seq = 1
        for rate in (int(r) for r in args.rates.split(",")):
            r = run_rate(b, seg, rate, args.seconds, seq)
            seq += r["written"]
            out["rates"].append(r)
    finally:
        b.close()
        dash.close()
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
