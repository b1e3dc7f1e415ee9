"""HTTP client comparison: run submissions per second against the simulator, by client model.

httpx sync Client on worker threads (one keep-alive connection each, as watcher.hub.HubClient
does), httpx AsyncClient with N concurrent requests on one event loop, one sync connection alone,
HubClient itself on worker threads, and its LoopPoster (the daemon's run POST) on one loop. The
simulator is a separate process. Imports watcher.hub only to measure HubClient.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bench_lib as L
import httpx

HEADERS = {
    "Authorization": f"Bearer {L.TOKEN}",
    "Content-Type": "application/json",
    "Accept": "application/json",
    "IB-Context": L.CONTEXT,
}
PATH = f"v2/apps/deployments/{L.DEPLOYMENT}/runs"


def _body(i: int) -> dict[str, Any]:
    # The body shape the daemon sends: input_dir plus settings.tags with its drop tag.
    return {
        "input_dir": f"{L.REMOTE}/http-{i:06d}",
        "settings": {"tags": [f"aihub-watcher:drop=d-{i:012x}"]},
    }


def _threads(n: int, workers: int, call: Callable[[int, int], int]) -> Counter[int]:
    """`n` requests split over `workers` threads; call(worker, i) -> HTTP status."""
    statuses: list[Counter[int]] = [Counter() for _ in range(workers)]
    barrier = threading.Barrier(workers + 1)

    def work(w: int) -> None:
        barrier.wait()
        for i in range(w, n, workers):
            statuses[w][call(w, i)] += 1

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    barrier.wait()
    for t in threads:
        t.join()
    return sum(statuses, Counter())


def sync_threads(url: str, n: int, workers: int) -> Counter[int]:
    clients = [
        httpx.Client(base_url=url + "/", headers=HEADERS, timeout=30) for _ in range(workers)
    ]
    try:
        return _threads(n, workers, lambda w, i: clients[w].post(PATH, json=_body(i)).status_code)
    finally:
        for c in clients:
            c.close()


def async_client(url: str, n: int, concurrency: int) -> Counter[int]:
    async def main() -> Counter[int]:
        statuses: Counter[int] = Counter()
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(
            base_url=url + "/", headers=HEADERS, timeout=30, limits=limits
        ) as client:
            sem = asyncio.Semaphore(concurrency)

            async def one(i: int) -> None:
                async with sem:
                    resp = await client.post(PATH, json=_body(i))
                    statuses[resp.status_code] += 1

            await asyncio.gather(*(one(i) for i in range(n)))
        return statuses

    return asyncio.run(main())


def hub_client_threads(url: str, n: int, workers: int) -> Counter[int]:
    from watcher.hub.client import HubClient

    with HubClient(base_url=url, token=L.TOKEN, context=L.CONTEXT, max_connections=workers) as hc:

        def call(_w: int, i: int) -> int:
            body = _body(i)
            hc.run_deployment(
                deployment_id=L.DEPLOYMENT, input_dir=body["input_dir"], settings=body["settings"]
            )
            return 202  # anything else raised

        return _threads(n, workers, call)


def hub_loop_poster(url: str, n: int, concurrency: int) -> Counter[int]:
    """HubClient's LoopPoster: the run POST on one asyncio loop, as the daemon sends it."""
    from watcher.hub.client import HubClient

    async def main() -> Counter[int]:
        with HubClient(
            base_url=url, token=L.TOKEN, context=L.CONTEXT, max_connections=concurrency
        ) as hc:
            poster = hc.loop_poster
            assert poster is not None, "a proxy in the environment: no loop poster"
            sem = asyncio.Semaphore(concurrency)

            async def one(i: int) -> None:
                body = _body(i)
                async with sem:
                    await poster.run_deployment(
                        deployment_id=L.DEPLOYMENT,
                        input_dir=body["input_dir"],
                        settings=body["settings"],
                    )

            await asyncio.gather(*(one(i) for i in range(n)))
        return Counter({202: n})  # anything else raised

    return asyncio.run(main())


CASES: list[tuple[str, Callable[[str, int], Counter[int]]]] = [
    ("httpx.Client, 1 connection", lambda u, n: sync_threads(u, n, 1)),
    ("httpx.Client x 4 threads", lambda u, n: sync_threads(u, n, 4)),
    ("httpx.Client x 16 threads", lambda u, n: sync_threads(u, n, 16)),
    ("httpx.AsyncClient, 4 concurrent", lambda u, n: async_client(u, n, 4)),
    ("httpx.AsyncClient, 16 concurrent", lambda u, n: async_client(u, n, 16)),
    ("watcher HubClient x 16 threads", lambda u, n: hub_client_threads(u, n, 16)),
    ("watcher LoopPoster, 16 concurrent", lambda u, n: hub_loop_poster(u, n, 16)),
]


def compare_clients(wd: Path, n: int = 2000) -> list[dict[str, Any]]:
    """Each case on a fresh simulator, after a short warm-up on the same one."""
    results = []
    for label, fn in CASES:
        with L.Simulator(wd, "sim-" + label.split()[0].replace(".", "-")) as sim:
            fn(sim.url, 50)  # warm-up: imports, connections, the simulator's first requests
            sim_cpu0 = sim.cpu_s()
            cpu0, t0 = time.process_time(), time.perf_counter()
            statuses = fn(sim.url, n)
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            sim_cpu = sim.cpu_s() - sim_cpu0
        results.append(
            {
                "label": label,
                "requests": n,
                "seconds": wall,
                "per_s": n / wall,
                "client_cpu_ms_per_req": cpu / n * 1000,
                "sim_cpu_ms_per_req": sim_cpu / n * 1000,
                "non_202": sum(c for s, c in statuses.items() if s != 202),
            }
        )
    return results


def curl_post_cost(wd: Path, runs: int = 300) -> dict[str, Any] | None:
    """hyperfine: wall time of ONE curl POST, the naive script's unit of work (None: no tool)."""
    hyperfine = shutil.which("hyperfine")
    if hyperfine is None or shutil.which("curl") is None:
        return None
    headers = wd / "curl-headers"
    headers.write_text("".join(f"{k}: {v}\n" for k, v in HEADERS.items()))
    body = wd / "curl-body.json"
    body.write_text(json.dumps(_body(0)))
    export = wd / "hyperfine.json"
    with L.Simulator(wd, "sim-curl") as sim:
        cmd = f"curl -sS -o /dev/null -H @{headers} --data-binary @{body} {sim.url}/{PATH}"
        subprocess.run(
            [
                hyperfine,
                "-N",
                "--warmup",
                "20",
                "--runs",
                str(runs),
                "--style",
                "none",
                "--export-json",
                str(export),
                cmd,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )
    result = json.loads(export.read_text())["results"][0]
    return {
        "runs": runs,
        "mean_ms": result["mean"] * 1000,
        "median_ms": result["median"] * 1000,
        "stddev_ms": result["stddev"] * 1000,
        "per_s": 1 / result["mean"],
    }
