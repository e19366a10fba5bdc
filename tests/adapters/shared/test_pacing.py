"""The write scheduler: budgets hold, finals go first, Retry-After blocks, coalescing keeps the newest."""

import asyncio
import time

from adapters.shared.pacing import FINAL, FIRST, UPDATE, LatestWriter, Pacer, Rate


async def test_sliding_window_budget_is_never_exceeded():
    pacer = Pacer(margin=0.0)
    rate = Rate(5, 0.2)
    grants: list[float] = []

    async def one():
        await pacer.acquire([("m", rate)], UPDATE)
        grants.append(time.monotonic())

    await asyncio.gather(*(one() for _ in range(15)))
    assert len(grants) == 15
    grants.sort()
    for i in range(len(grants) - 5):
        assert grants[i + 5] - grants[i] >= 0.2, "more than 5 grants inside one 0.2 s window"


async def test_final_writes_jump_the_queue_and_reserve_the_budget():
    pacer = Pacer(margin=0.0)
    rate = Rate(1, 0.05)
    order: list[str] = []
    await pacer.acquire([("m", rate)], UPDATE)  # spend the budget

    async def one(name: str, priority: int):
        await pacer.acquire([("m", rate)], priority)
        order.append(name)

    updates = [asyncio.create_task(one(f"u{i}", UPDATE)) for i in range(3)]
    await asyncio.sleep(0)  # let the updates queue first
    first = asyncio.create_task(one("first", FIRST))
    final = asyncio.create_task(one("final", FINAL))
    await asyncio.gather(*updates, first, final)
    assert order[:2] == ["final", "first"]


async def test_block_honours_retry_after():
    pacer = Pacer(margin=0.0)
    rate = Rate(100, 1.0)
    await pacer.acquire([("m", rate)])
    pacer.block(["m"], 0.15)
    t0 = time.monotonic()
    await pacer.acquire([("m", rate)], FINAL)
    assert time.monotonic() - t0 >= 0.14


async def test_cancelled_waiter_releases_its_reservation():
    pacer = Pacer(margin=0.0)
    rate = Rate(1, 10.0)
    other = Rate(10, 1.0)
    await pacer.acquire([("slow", rate)])
    blocked = asyncio.create_task(pacer.acquire([("slow", rate), ("shared", other)], FINAL))
    await asyncio.sleep(0)
    blocked.cancel()
    await asyncio.wait_for(pacer.acquire([("shared", other)], UPDATE), 1)


async def test_latest_writer_coalesces_to_the_newest_text():
    sent: list[str] = []
    gate = asyncio.Event()

    async def acquire(priority):
        await gate.wait()

    async def send(text):
        sent.append(text)

    writer = LatestWriter(acquire, send)
    for i in range(50):
        writer.push(f"text {i}")
    gate.set()
    while writer.writes < 1:
        await asyncio.sleep(0)
    await writer.close()
    assert sent == ["text 49"]


async def test_close_lets_an_in_flight_send_finish_and_drops_a_waiting_one():
    started, release = asyncio.Event(), asyncio.Event()
    sent: list[str] = []

    async def acquire(priority):
        return None

    async def send(text):
        started.set()
        await release.wait()
        sent.append(text)

    writer = LatestWriter(acquire, send)
    writer.push("a")
    await started.wait()
    writer.push("b")
    closing = asyncio.create_task(writer.close())
    await asyncio.sleep(0)
    release.set()
    await closing
    assert sent == ["a"]
