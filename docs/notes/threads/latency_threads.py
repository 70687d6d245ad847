"""Latency and throughput of the running pipeline with the LiteRT interpreters (detector,
verifier, classifier) at 1 and at 2 threads, on a 2-core machine where the render
thread (drawing and JPEG) competes for the same cores.

    .venv/bin/python -P docs/notes/threads/latency_threads.py OUT.json [ROUNDS]

`screwcam bench`'s own parts 3 (latency: the 640x480 5-head video paced at 30 fps for
15 s, published - captured of every result) and 2's running-pipeline throughput (a 1000
fps replay for 10 s), with the pipeline built at the given thread count (what `[model]
num_threads` sets in the service); 1 and 2 threads alternate, ROUNDS (3) times each."""

import functools
import json
import sys
import tempfile
from pathlib import Path

from screwcam.bench import bench as B

MODEL = B.resolve_bundle_path(B.DEFAULT_BUNDLE)
BUILD = B._make_pipeline


def main() -> None:
    out = Path(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        video = B.make_video(Path(tmp) / "bench.mp4", 150)
        frames = B.read_frames(video)
        for r in range(rounds):
            for threads in (1, 2):
                B._make_pipeline = functools.partial(BUILD, threads=threads)
                lat = B.bench_latency(MODEL, video, quick=False)
                thr = B._threaded_throughput(MODEL, frames, 10.0)
                row = {"round": r, "threads": threads, **lat, **thr}
                runs.append(row)
                print(
                    f"round {r} threads {threads}: latency p50 {lat['p50_ms']:.2f} p95 "
                    f"{lat['p95_ms']:.2f} ms, {thr['analysed_fps']:.0f} frames/s analysed",
                    flush=True,
                )
    tmp_out = out.with_suffix(".tmp")
    tmp_out.write_text(json.dumps({"runs": runs}, indent=2) + "\n")
    tmp_out.replace(out)


if __name__ == "__main__":
    main()
