"""The Ray engine on a real local cluster: two file streams pinned to two nodes store every sampled frame exactly
once, in order, with the same labels and events as the single-process runner; a worker node killed mid-run leaves
its stream to finish on the head with a clean store."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any

import av
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from streamlabel.config import Config
from streamlabel.daemon.runner import Runner
from streamlabel.store.check import check_store
from streamlabel.store.dataset import DatasetStore
from streamlabel.tiny.scene import SceneSpec, write_clip
from tests.cluster import stages as factories
from tests.cluster.conftest import NODE
from tests.daemon.harness import scripted_stages, wait_until
from tests.fixtures.rtsp import free_port

ray = pytest.importorskip("ray")
from streamlabel.cluster import ClusterRunner  # noqa: E402  (needs ray)

FPS = 5.0
ROOT = Path(__file__).resolve().parents[2]
VOLATILE = {"id", "created", "config_hash"}  # differ between any two runs


def dated_clip(path: Path, seconds: float, seed: int) -> Path:
    """A scene clip with a creation time, so a re-read gives the same frame ids (the store skips them)."""
    raw = path.with_suffix(".raw.mp4")
    write_clip(SceneSpec(seconds=seconds, seed=seed), raw)
    with av.open(str(raw)) as src, av.open(str(path), "w") as out:
        out.metadata["creation_time"] = "2026-01-01T00:00:00.000000Z"
        stream = out.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    raw.unlink()
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two different 4 s scenes (20 sampled frames each at 5 fps)."""
    folder = tmp_path_factory.mktemp("clips")
    return {name: dated_clip(folder / f"{name}.mp4", 4.0, seed) for name, seed in (("a", 1), ("b", 2))}


def config(clips: dict[str, Path], root: Path, cluster: dict[str, Any] | None, **extra: Any) -> Config:
    data: dict[str, Any] = {
        **extra,
        "streams": {name: {"url": str(path), "fps": FPS, "queue_size": 4} for name, path in clips.items()},
        "models": {"batch_size": 2},
        "store": {"path": str(root)},
        "review": {"address": None},
    }
    if cluster is not None:
        data["cluster"] = cluster
    return Config.model_validate(data)


PINNED = {
    "labelers": 2,
    "reader_num_cpus": 0,
    "frames_in_flight": 4,
    "streams": {"a": {"resources": {"cam_head": 0.01}}, "b": {"resources": {"cam_worker": 0.01}}},
}


def frames(root: Path) -> list[tuple]:
    with sqlite3.connect(root / "manifest.sqlite") as db:
        return db.execute("SELECT stream, seq, frame_id, round(pts, 6), split FROM frames ORDER BY rowid").fetchall()


def labels(root: Path) -> list[tuple]:
    with sqlite3.connect(root / "manifest.sqlite") as db:
        return db.execute("SELECT frame_id, idx, status, xyxy, polygon FROM labels ORDER BY frame_id, idx").fetchall()


def events(root: Path) -> list[tuple]:
    """Outbox rows per stream in order, without ids, times and config hashes."""
    with sqlite3.connect(root / "manifest.sqlite") as db:
        rows = db.execute("SELECT stream, kind, topic, payload FROM outbox ORDER BY seq").fetchall()
    out = []
    for stream, kind, topic, payload in rows:
        data = {k: v for k, v in json.loads(payload).items() if k not in VOLATILE}
        out.append((stream, kind, topic, json.dumps(data, sort_keys=True)))
    return sorted(out, key=lambda r: r[0])  # streams interleave differently; each stream keeps its order


def run_in_process(cfg: Config, root: Path) -> dict[str, dict[str, int]]:
    """Run the single-process runner; its novelty gate and budget counts per stream."""
    store = DatasetStore(root, ["eye"])
    try:
        runner = Runner(cfg, scripted_stages(), store)
        runner.run_until_done()
        return runner.sift_counts()
    finally:
        store.close()


def cluster_runner(cfg: Config, root: Path, factory: Any) -> tuple[ClusterRunner, DatasetStore]:
    store = DatasetStore(root, ["eye"])
    return ClusterRunner(cfg, scripted_stages(), store, stages_factory=factory), store


def test_two_pinned_streams_store_every_frame_once_as_one_process_does(
    ray_cluster: Any, clips: dict[str, Path], tmp_path: Path
) -> None:
    single = tmp_path / "single"
    sift = run_in_process(config(clips, single, None), single)
    root = tmp_path / "cluster"
    runner, store = cluster_runner(config(clips, root, PINNED), root, factories.scripted)
    try:
        stats = runner.run_until_done()
    finally:
        store.close()
    assert stats.frames == 40
    assert stats.ended == {"a": None, "b": None}
    got, want = frames(root), frames(single)
    assert len(want) >= 8  # the novelty gate keeps only some frames of a still dog; enough to compare
    for name in ("a", "b"):
        seqs = [r[1] for r in got if r[0] == name]
        assert seqs == sorted(set(seqs)), f"stream {name}: a duplicate or out of order"
        assert [r for r in got if r[0] == name] == [r for r in want if r[0] == name]
    assert labels(root) == labels(single)
    assert {kind for _, kind, _, _ in events(single)} == {"label", "clip"}  # labels, and clips of ended tracks
    assert events(root) == events(single)
    slots = {s.name: s for s in runner.supervisor.slots()}
    assert slots["a"].node == ray_cluster.head_node.node_id
    assert slots["b"].node == ray_cluster.worker.node_id
    assert {lab.node for lab in runner.labelers} == {ray_cluster.head_node.node_id, ray_cluster.worker.node_id}
    assert all(s.restarts == 0 and s.in_flight == 0 for s in slots.values())
    assert sum(c["gate_dropped"] for c in sift.values()) > 0  # the gate acted, so the counts say something
    assert runner.sift_counts() == sift  # the actors' gate and budget counts reach /status and /metrics
    assert check_store(root) == []


def stored_seqs(root: Path, stream: str) -> list[int]:
    with sqlite3.connect(root / "manifest.sqlite", timeout=10) as db:
        return [r[0] for r in db.execute("SELECT seq FROM frames WHERE stream = ? ORDER BY rowid", (stream,))]


@pytest.mark.slow
def test_killed_actors_restart_their_streams_with_no_gap_and_no_duplicate(ray_cluster: Any, tmp_path: Path) -> None:
    """``ray.kill`` of stream a's labeler and of stream b's reader mid-run: a moves to the other labeler (a
    replacement starts), b gets a new reader that resumes after its last stored frame."""
    folder = tmp_path / "clips"
    folder.mkdir()
    long = {name: dated_clip(folder / f"{name}.mp4", 6.0, seed) for name, seed in (("a", 7), ("b", 8))}
    root = tmp_path / "store"
    runner, store = cluster_runner(config(long, root, PINNED, tracking={"enabled": False}), root, factories.slow)
    done = threading.Event()
    thread = threading.Thread(target=lambda: (runner.run_until_done(), done.set()), daemon=True)
    thread.start()
    try:
        wait_until(lambda: min(stored_count(root, "a"), stored_count(root, "b")) >= 4 or done.is_set(), "frames")
        assert not done.is_set(), "the run ended before the actors could be killed"
        slots = {s.name: s for s in runner.supervisor.slots()}
        killed = slots["a"].labeler
        ray.kill(runner.labelers[killed].handle, no_restart=True)
        ray.kill(slots["b"].reader, no_restart=True)
        thread.join(240)
        assert done.is_set(), "the run did not finish after the kills"
    finally:
        runner.stop(1.0)
        thread.join(30)
        store.close()
    for name in ("a", "b"):
        assert stored_seqs(root, name) == list(range(30)), f"stream {name}: a gap or a duplicate"
    assert slots["a"].restarts == 1 and slots["a"].labeler != killed
    assert slots["b"].restarts >= 1 and slots["b"].node == ray_cluster.worker.node_id  # its node is alive: pinned
    assert runner.labelers[killed].restarts == 1
    assert runner.stats.ended == {"a": None, "b": None}
    assert check_store(root) == []


@pytest.mark.slow
def test_a_stop_stores_the_frames_in_flight_and_the_next_run_resumes_after_them(
    ray_cluster: Any, tmp_path: Path
) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    clip = {"a": dated_clip(folder / "a.mp4", 6.0, 9)}
    root = tmp_path / "store"
    cfg = config(clip, root, {"labelers": 1, "reader_num_cpus": 0}, tracking={"enabled": False})
    runner, store = cluster_runner(cfg, root, factories.slow)
    thread = threading.Thread(target=runner.run_until_done, daemon=True)
    thread.start()
    try:
        wait_until(lambda: stored_count(root, "a") >= 3 or not thread.is_alive(), "frames")
        assert thread.is_alive(), "the run ended before the stop"
        runner.stop(60.0)
        thread.join(90)
        assert not thread.is_alive(), "the stop did not end the run"
    finally:
        store.close()
    first = stored_seqs(root, "a")
    assert first == list(range(len(first))) and 3 <= len(first) < 30  # what was in flight is stored, no gap
    assert runner.stats.unlabeled == 0
    again, store = cluster_runner(cfg, root, factories.scripted)
    try:
        again.run_until_done()
    finally:
        store.close()
    assert stored_seqs(root, "a") == list(range(30))
    assert check_store(root) == []


def scrape(address: str) -> dict[tuple[str, str], float]:
    """``/metrics`` of the cluster families: (sample name, first label value) -> value."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as response:
        text = response.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        if family.name.startswith("streamlabel_cluster"):
            for sample in family.samples:
                out[(sample.name, next(iter(sample.labels.values()), ""))] = sample.value
    return out


def stored_count(root: Path, stream: str) -> int:
    """Frames of ``stream`` stored so far (0 before the manifest has its tables)."""
    try:
        return len(stored_seqs(root, stream))
    except sqlite3.OperationalError:
        return 0


def undelivered(root: Path) -> int:
    with sqlite3.connect(root / "manifest.sqlite", timeout=10) as db:
        return db.execute("SELECT COUNT(*) FROM outbox WHERE delivered IS NULL").fetchone()[0]


def start_driver(config_path: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.cluster.driver_main", str(config_path)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )


@pytest.mark.slow
def test_the_driver_killed_and_restarted_stores_every_frame_once_and_delivers_the_events(
    ray_cluster: Any, tmp_path: Path, mosquitto_factory: Any
) -> None:
    """SIGKILL of the daemon (the driver) mid-run, broker down; the restart resumes each file after its last stored
    frame and delivers the events the first run left in the outbox."""
    broker = mosquitto_factory()  # not started yet: the first run's events stay in the outbox
    folder = tmp_path / "clips"
    folder.mkdir()
    long = {name: dated_clip(folder / f"{name}.mp4", 6.0, seed) for name, seed in (("a", 5), ("b", 6))}
    root = tmp_path / "store"
    cluster = {"address": ray_cluster.address, "labelers": 1, "reader_num_cpus": 0, "frames_in_flight": 4}
    cfg = config(long, root, cluster, tracking={"enabled": False}, mqtt={"host": broker.host, "port": broker.port})
    config_path = tmp_path / "streamlabel.yml"
    data = cfg.model_dump(mode="json", by_alias=True)
    data["daemon"]["metrics_address"] = address = f"127.0.0.1:{free_port()}"
    config_path.write_text(yaml.safe_dump(data))
    log = tmp_path / "driver.log"
    first = start_driver(config_path, log)
    try:
        wait_until(
            lambda: first.poll() is not None or stored_count(root, "a") >= 5,
            "the first driver stores frames",
            240,
        )
        assert first.poll() is None, log.read_text()[-4000:]
        metrics = scrape(address)
        assert metrics[("streamlabel_cluster_labeler_alive", "0")] == 1.0
        assert ("streamlabel_cluster_stream_frames_in_flight", "a") in metrics
        assert metrics[("streamlabel_cluster_stream_restarts_total", "a")] == 0.0
        with urllib.request.urlopen(f"http://{address}/status", timeout=10) as response:
            status = json.loads(response.read())
        assert status["cluster"]["labelers"]["0"]["alive"] is True
        assert status["streams"]["a"]["node"] in {ray_cluster.head_node.node_id, ray_cluster.worker.node_id}
        shown = subprocess.run(
            [sys.executable, "-m", "streamlabel.cli", "status", "--address", address],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "COLUMNS": "160"},
        )
        assert shown.returncode == 0, shown.stderr
        assert "cluster: labelers" in shown.stdout and "cluster: streams" in shown.stdout
        first.kill()
        first.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
    assert undelivered(root) > 0
    broker.start()
    second = start_driver(config_path, log)
    try:
        assert second.wait(300) == 0, log.read_text()[-4000:]
    finally:
        if second.poll() is None:
            second.kill()
    for name in ("a", "b"):
        assert stored_seqs(root, name) == list(range(30)), f"stream {name}: a gap or a duplicate"
    assert undelivered(root) == 0
    assert check_store(root) == []


@pytest.mark.slow
def test_a_worker_node_killed_mid_run_leaves_its_stream_to_finish_on_the_head(
    ray_cluster: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Last in the module: it removes the worker node. Tracking is off, so every sampled frame is stored."""
    folder = tmp_path / "clips"
    folder.mkdir()
    long = {name: dated_clip(folder / f"{name}.mp4", 8.0, seed) for name, seed in (("a", 3), ("b", 4))}
    root = tmp_path / "store"
    cfg = config(long, root, PINNED, tracking={"enabled": False})
    runner, store = cluster_runner(cfg, root, factories.slow)
    done = threading.Event()
    thread = threading.Thread(target=lambda: (runner.run_until_done(), done.set()), daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(stored_seqs(root, "b")) >= 5 or done.is_set(), "stream b stores frames")
        assert not done.is_set(), "the run ended before the node could be killed"
        ray_cluster.remove_node(ray_cluster.worker, allow_graceful=False)
        thread.join(240)
        assert done.is_set(), "the run did not finish after the node died"
    finally:
        runner.stop(1.0)
        thread.join(30)
        store.close()
    for name in ("a", "b"):
        assert stored_seqs(root, name) == list(range(40)), f"stream {name}: a gap or a duplicate"
    slots = {s.name: s for s in runner.supervisor.slots()}
    # the reader's death and the labeler's are seen one by one: a node loss may count twice for a stream
    assert 1 <= slots["b"].restarts <= 2 and slots["a"].restarts <= 2
    assert slots["b"].node == ray_cluster.head_node.node_id  # re-placed on the head: its camera resource died
    assert runner.stats.ended == {"a": None, "b": None}
    assert check_store(root) == []
    assert "no live node offers" in caplog.text


@pytest.mark.slow
def test_a_reload_adds_and_removes_streams_on_a_running_cluster(ray_cluster: Any, tmp_path: Path) -> None:
    """SIGHUP's stream changes (``Daemon.reload`` calls ``reconfigure``): a removed stream stops with what it stored
    kept and nothing twice; an added one is read to its end; re-added, a file resumes after its last stored frame."""
    folder = tmp_path / "clips"
    folder.mkdir()
    clip = {"a": dated_clip(folder / "a.mp4", 6.0, 9), "b": dated_clip(folder / "b.mp4", 2.0, 3)}
    root = tmp_path / "store"
    cluster = {"labelers": 1, "reader_num_cpus": 0}
    first = config({"a": clip["a"]}, root, cluster, tracking={"enabled": False})
    both = config(clip, root, cluster, tracking={"enabled": False})
    store = DatasetStore(root, ["eye"])
    runner = ClusterRunner(first, scripted_stages(), store, service=True, stages_factory=factories.slow)
    thread = threading.Thread(target=runner.run_until_done, daemon=True)
    thread.start()
    try:
        wait_until(lambda: stored_count(root, "a") >= 3, "frames of a")
        runner.reconfigure(config({"b": clip["b"]}, root, cluster), {"b": both.streams["b"]}, ["a"], {})
        wait_until(lambda: runner.stats.ended.get("b", "?") is None, "b read to its end", 120)
        kept_a = stored_seqs(root, "a")
        assert {s.name for s in runner.supervisor.slots()} == {"b"}
        assert kept_a == list(range(len(kept_a))) and len(kept_a) < 30  # a stopped part-way, no gap, no duplicate
        assert stored_seqs(root, "b") == list(range(10))
        runner.reconfigure(both, {"a": both.streams["a"]}, [], {})
        wait_until(lambda: runner.stats.ended.get("a", "?") is None, "a read to its end", 120)
        runner.stop(30.0)
        thread.join(60)
        assert not thread.is_alive()
    finally:
        store.close()
    assert stored_seqs(root, "a") == list(range(30))  # resumed after what it had stored: once each
    assert check_store(root) == []


def stored_times(root: Path, stream: str) -> list[tuple[int, float, str]]:
    with sqlite3.connect(root / "manifest.sqlite", timeout=10) as db:
        return db.execute("SELECT seq, pts, time FROM frames WHERE stream = ? ORDER BY rowid", (stream,)).fetchall()


@pytest.mark.slow
def test_a_camera_whose_labeler_dies_counts_the_frames_it_lost_and_keeps_its_clock(
    ray_cluster: Any, tmp_path: Path, rtsp_server: Any
) -> None:
    """A live stream cannot re-read what was in flight: a new reader goes on from the last stored frame (seq, pts and
    time keep rising, no frame id twice) and the frames lost with the labeler are counted as missed."""
    root = tmp_path / "store"
    # One labeler, replaced when it dies (the module's worker node may be gone by now: the head alone must hold it).
    cluster = {"labelers": 1, "labeler_num_cpus": 0.5, "reader_num_cpus": 0, "frames_in_flight": 4}
    cfg = Config.model_validate(
        {
            "streams": {"cam": {"url": rtsp_server.url, "fps": 2.0, "queue_size": 4}},
            "models": {"batch_size": 1},
            "store": {"path": str(root)},
            "review": {"address": None},
            "tracking": {"enabled": False},
            "cluster": cluster,
        }
    )
    store = DatasetStore(root, ["eye"])
    runner = ClusterRunner(cfg, scripted_stages(), store, service=True, stages_factory=factories.behind)
    thread = threading.Thread(target=runner.run_until_done, daemon=True)
    thread.start()
    try:
        wait_until(lambda: stored_count(root, "cam") >= 3, "frames of the camera", 120)
        slot = runner.supervisor.slots()[0]
        wait_until(lambda: slot.in_flight >= 2, "the labeler to fall behind the camera")
        killed = slot.labeler
        ray.kill(runner.labelers[killed].handle, no_restart=True)
        wait_until(lambda: slot.restarts == 1, "the stream to restart")
        before = stored_count(root, "cam")
        wait_until(lambda: stored_count(root, "cam") >= before + 3, "frames after the restart", 120)
        runner.stop(30.0)
        thread.join(60)
        assert not thread.is_alive()
    finally:
        store.close()
    rows = stored_times(root, "cam")
    assert [r[0] for r in rows] == list(range(len(rows)))  # seq goes on from the last stored frame: no id twice
    assert all(a[1] < b[1] and a[2] < b[2] for a, b in itertools.pairwise(rows))  # pts and time rise
    assert 1 <= slot.missed <= cluster["frames_in_flight"]  # what was in flight with the dead labeler
    assert runner.labelers[killed].restarts == 1  # a new labeler took the camera on
    assert check_store(root) == []


@pytest.mark.slow
def test_labelers_asking_for_a_gpu_run_on_the_gpu_node_only(ray_cluster: Any, tmp_path: Path) -> None:
    """``cluster.labeler_num_gpus``: the labeler runs only on a node with a GPU. The GPU is a logical Ray resource
    here (no CUDA needed); the speed with real GPUs is `streamlabel bench cluster --gpus N` on a GPU machine."""
    gpu_node = ray_cluster.add_node(**NODE, num_cpus=1, num_gpus=1)
    ray_cluster.wait_for_nodes()
    try:
        folder = tmp_path / "clips"
        folder.mkdir()
        clips = {name: dated_clip(folder / f"{name}.mp4", 2.0, seed) for name, seed in (("a", 4), ("b", 5))}
        root = tmp_path / "store"
        cluster = {"labelers": 2, "labeler_num_gpus": 0.5, "labeler_num_cpus": 0.5, "reader_num_cpus": 0}
        cfg = config(clips, root, cluster, tracking={"enabled": False})
        runner, store = cluster_runner(cfg, root, factories.scripted)
        try:
            stats = runner.run_until_done()
        finally:
            store.close()
        assert [lab.node for lab in runner.labelers] == [gpu_node.node_id] * 2  # not the head, not the CPU worker
        assert stats.frames == 20
        for name in clips:
            assert stored_seqs(root, name) == list(range(10))
        assert check_store(root) == []
    finally:
        ray_cluster.remove_node(gpu_node)
