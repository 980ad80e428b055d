"""Streaming pieces: bounded stage threads, frame gates, warmers, the tracker's final-frame hook, chunk plans."""

from __future__ import annotations

import threading
import time

import pytest

from engine.batch.pipeline import FrameGate, LinkedCancel, StageFailed, StageStats, run_stages
from engine.batch.stages import plan_chunks, png_complete
from engine.batch.warm import Warmer
from engine.errors import Cancelled, InputError
from engine.util.progress import CancelToken
from tests.test_session import FakeSegmenter, make_session


def test_stages_keep_order_overlap_and_bound_the_frames_in_flight():
    alive = [0]
    peak = [0]
    lock = threading.Lock()
    out = []

    def make(item):
        with lock:
            alive[0] += 1
            peak[0] = max(peak[0], alive[0])
        return item

    def slow(item):
        time.sleep(0.01)
        return item * 2

    def sink(item):
        out.append(item)
        with lock:
            alive[0] -= 1

    stats = StageStats()
    n = run_stages(range(40), [("make", make), ("slow", slow), ("sink", sink)], maxsize=2, stats=stats)
    assert n == 40 and out == [2 * i for i in range(40)]
    assert peak[0] <= 2 * 3 + 2  # queues of 2 between 3 stages, plus one item inside each worker
    t = stats.to_dict()
    assert t["slow"]["items"] == 40 and t["slow"]["busy_s"] >= 0.35
    assert t["make"]["wait_out_s"] > t["slow"]["wait_out_s"]  # the fast stage waits for room behind the slow one


def test_first_error_stops_every_stage_and_is_raised():
    seen = []

    def boom(i):
        if i == 5:
            raise InputError("frame 5 is bad")
        return i

    with pytest.raises(InputError, match="frame 5"):
        run_stages(range(1000), [("a", boom), ("b", seen.append)], maxsize=2)
    assert len(seen) < 20


def test_cancel_stops_between_items():
    token = CancelToken()

    def step(i):
        if i == 3:
            token.cancel("user stop")
        time.sleep(0.005)
        return i

    with pytest.raises(Cancelled, match="user stop"):
        run_stages(range(1000), [("a", step), ("b", lambda i: None)], cancel=token)
    linked = LinkedCancel(token)
    assert linked.cancelled and linked.reason == "user stop"


def test_frame_gate_in_any_order_with_failure_and_close():
    g = FrameGate(range(1, 6), "track")
    got = []
    t = threading.Thread(target=lambda: got.append(g.wait_all(range(1, 6))))
    t.start()
    for f in (5, 3, 1, 2, 4):
        assert not g.ready(4) or f == 4
        g.mark(f)
    t.join(2)
    assert got and g.pending == 0
    g2 = FrameGate([1, 2], "track")
    g2.fail(InputError("the plate is gone"))
    with pytest.raises(StageFailed, match="the plate is gone"):
        g2.wait(2)
    g3 = FrameGate([1, 2])
    g3.mark(1)
    g3.close()
    g3.wait(1)
    with pytest.raises(StageFailed, match="without frame 2"):
        g3.wait(2)


def test_warmer_runs_ahead_in_the_direction_of_travel():
    calls = []
    done = threading.Event()

    def fn(f):
        calls.append(f)
        if len(calls) >= 6:
            done.set()

    w = Warmer(fn, range(1001, 1021), ahead=3)
    w.follow(1001)
    time.sleep(0.2)
    w.follow(1010, -1)
    done.wait(2)
    w.close()
    assert calls[:3] == [1002, 1003, 1004] and calls[3:6] == [1009, 1008, 1007]
    w2 = Warmer(lambda f: 1 / 0, range(5), ahead=2)  # a failing warmer stops quietly
    w2.follow(0)
    time.sleep(0.1)
    w2.close()
    assert isinstance(w2.error, ZeroDivisionError)


def test_propagate_reports_each_frame_once_when_final():
    s = make_session(backend=FakeSegmenter())
    hero = s.add_object("hero")
    s.add_point(hero.id, 1005, 20, 20)
    s.add_point(hero.id, 1012, 20, 20)
    order = []
    results_when_final = {}

    def on_final(f):
        order.append(f)
        results_when_final[f] = s.result(hero.id, f)

    s.propagate(on_final=on_final)
    lo, hi = s.frame_range
    assert sorted(order) == list(range(lo, hi + 1)) and len(order) == len(set(order))
    assert order[:2] == [1005, 1012]  # keyframes: no run touches them
    for f, res in results_when_final.items():  # final = the merged result, never a half
        assert res is not None and res == s.result(hero.id, f)
    assert results_when_final[1008].direction == "merged"


def test_chunk_plan_and_png_check(tmp_path):
    cs = plan_chunks(1001, 1012, 5, 2)
    assert [(c.start, c.first, c.last) for c in cs] == [(1001, 1001, 1005), (1004, 1006, 1010), (1009, 1011, 1012)]
    assert cs[1].unit == "1006-1010" and list(cs[2].frames) == [1011, 1012]
    import cv2
    import numpy as np

    p = tmp_path / "a.png"
    cv2.imwrite(str(p), np.zeros((4, 4), np.uint16))
    assert png_complete(p)
    p.write_bytes(p.read_bytes()[:-3])
    assert not png_complete(p) and not png_complete(tmp_path / "none.png")


def test_matte_queues_hold_fewer_frames_as_frames_grow():
    from engine.batch.stages import QUEUE_BYTES, queue_frames

    assert queue_frames((1080, 1920)) == 3 and queue_frames((360, 640)) == 3
    assert queue_frames((2160, 4096)) == 1 and queue_frames((4320, 8192)) == 1  # never 0
    assert queue_frames((1080, 1920), most=2) == 2
    for shape in ((1080, 1920), (1556, 2048), (2160, 3840)):
        n = queue_frames(shape)
        assert n == 1 or n * shape[0] * shape[1] * 12 <= QUEUE_BYTES
