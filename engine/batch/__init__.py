"""Batch jobs: many shots, the same treatment, run unattended — on one machine, a Ray cluster or a farm.

* :mod:`engine.batch.jobfile` — the job file (JSON or YAML), validated with pydantic
  (``docs/formats/batch-job.md``);
* :mod:`engine.batch.runner` — :func:`run_batch`: every shot in turn, progress per shot and
  overall, a failed shot reported while the others go on, finished work skipped on a re-run;
* :mod:`engine.batch.shot` — one shot on one machine: the stages (decode → colour → track →
  matte → depth → export) run as threads joined by bounded queues and frame gates, so the
  slowest stage sets the pace and memory stays bounded;
* :mod:`engine.batch.stages` — the stage work shared by the local runner and the Ray workers
  (matte chunks with warm-up, export chunks, track runs, validation of finished outputs);
* :mod:`engine.batch.journal` — the per-shot journal that makes a crash (``kill -9``) lose
  nothing but the work in flight;
* :mod:`engine.batch.pipeline` — bounded-queue stage threads and frame gates;
* :mod:`engine.batch.warm` — cache warming ahead of a moving position (pre-decode, pre-embed);
* :mod:`engine.batch.ray_exec` — the same job on a Ray cluster (``--ray auto|ADDRESS``);
* :mod:`engine.batch.farm` — Deadline submission files calling ``roto batch`` on frame chunks.

See ``docs/decisions/DR012-batch-and-scale-out.md``.
"""
