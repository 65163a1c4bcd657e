"""Moderate load for SOAK seconds: no 5xx, and the workers' memory levels off (recycling is off, so a leak shows)."""

from __future__ import annotations

import statistics
import threading
import time

from scripts.chaos.report import Report
from scripts.chaos.shop import WORKERS, Checkout, Shop, new_checkout, unexpected
from scripts.lib.http import Answer

SHOPPERS = 4
Sample = tuple[float, dict[int, float]]  # (seconds since start, RSS in MB by worker pid)


def shop_while_sampling(shop: Shop, ledger: list[Checkout], seconds: float) -> tuple[list[Answer], list[Sample]]:
    """Shoppers list, look, add one seat and check out, in a loop; worker RSS sampled about 12 times meanwhile."""
    ticket_type = shop.new_ticket_type("soak", capacity=1_000_000)
    first_event = shop.call("GET", "/api/events").body["events"][0]["id"]
    stop, lock, answers = threading.Event(), threading.Lock(), []

    def shopper() -> None:
        while not stop.is_set():
            batch = [shop.call("GET", "/api/events"), shop.call("GET", f"/api/events/{first_event}")]
            added, token = shop.basket(ticket_type, 1)
            batch.append(added)
            if token:
                attempt = new_checkout(token, 1)
                batch.append(shop.checkout(attempt))
                with lock:
                    ledger.append(attempt)
            with lock:
                answers.extend(batch)
            time.sleep(0.1)

    threads = [threading.Thread(target=shopper) for _ in range(SHOPPERS)]
    for thread in threads:
        thread.start()
    samples: list[Sample] = []
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        samples.append((time.monotonic() - started, shop.served.worker_rss_mb()))
        time.sleep(min(5.0, seconds / 12))
    samples.append((time.monotonic() - started, shop.served.worker_rss_mb()))
    stop.set()
    for thread in threads:
        thread.join(60)
    return answers, samples


def growth(since: Sample, until: Sample) -> dict[int, float]:
    return {pid: until[1][pid] - since[1][pid] for pid in until[1] if pid in since[1]}


def soak(shop: Shop, report: Report, ledger: list[Checkout], seconds: float) -> None:
    answers, samples = shop_while_sampling(shop, ledger, seconds)
    warm, last = next(s for s in samples if s[0] >= min(15.0, seconds / 4)), samples[-1]
    middle = min(samples, key=lambda s: abs(s[0] - (warm[0] + last[0]) / 2))
    bad = unexpected(answers, lambda a: a.status in (200, 201))
    report.check(
        "soak",
        f"{len(answers)} requests over {last[0]:.0f} s ({len(answers) / last[0]:.0f}/s)",
        "all 200/201",
        f"{len(bad)} others {bad[:3]}",
        bool(answers) and not bad,
    )
    # Flat: after warm-up a worker grows by at most 10 MB, and by at most 3 MB over the second half of the soak (a
    # leak keeps growing; a warming process levels off).
    overall, late = growth(warm, last), growth(middle, last)
    worst, worst_late = max(overall.values(), default=float("nan")), max(late.values(), default=float("nan"))
    report.check(
        "soak",
        "worker RSS growth after warm-up (same worker processes, recycling off)",
        "≤ 10 MB per worker, ≤ 3 MB over the second half",
        f"worst {worst:+.1f} MB over {(last[0] - warm[0]) / 60:.1f} min, {worst_late:+.1f} MB over the second half "
        f"(end: {statistics.mean(last[1].values()):.0f} MB average)",
        len(overall) == WORKERS and worst <= 10 and worst_late <= 3,
    )
    report.figures["soak"] = {
        "seconds": round(last[0], 1),
        "requests": len(answers),
        "requests_per_second": round(len(answers) / last[0], 1),
        "samples": [(round(t, 1), {str(p): round(v, 1) for p, v in rss.items()}) for t, rss in samples],
    }
