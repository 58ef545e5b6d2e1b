"""`embed --workers N`: N spawned processes write disjoint shares of the blocks of one store (the parent converts
it when all are done); a worker's refusal of the input reaches the parent as one line, and the others stop."""

from __future__ import annotations

import dataclasses
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from geodino.cpus import usable_cpus
from geodino.embed.config import EmbedConfig, rank_device
from geodino.embed.workdir import WorkDirGone, init_work_dir
from geodino.errors import ConfigError, GeoDinoError, InputError, plural
from geodino.io import StorageError

if TYPE_CHECKING:
    from geodino.embed.pipeline import PreparedRun

__all__ = ["place_backbone", "spawn_workers", "worker_error", "worker_main"]


def worker_main(input: Any, bb: Any, cfg: EmbedConfig, conn: Any = None, formatwarning: Any = None) -> None:
    """A spawned worker's run. A refusal (a `GeoDinoError`: bad input or setting) is not printed here: it goes to
    the parent through `conn` with its traceback, and the worker exits with its exit code; the parent says it in
    one line. Anything else is a crash and prints its traceback here (multiprocessing's exit code 1). Warnings are
    written as the parent writes them (`formatwarning`: the CLI's one `geodino: warning:` line), by worker 0 only:
    they are about the input, the same in every worker."""
    import signal

    if formatwarning is not None:
        warnings.formatwarning = formatwarning
    if cfg.rank > 0:
        warnings.simplefilter("ignore")

    # the parent stops the others when one refuses the input (SIGTERM): exit through Python, so that what the worker
    # holds (the multiprocessing locks zarr's codecs create) is released, not reported as leaked by the parent
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    torch.set_num_threads(max(1, cfg.threads or 1))
    try:
        from geodino.embed.pipeline import _config, _run
        from geodino.embed.workdir import kept_for_resume

        bb = place_backbone(bb, cfg.device)
        # a write the storage refused (a full disk) is a `StorageError` line naming the path, sent to the parent as a
        # refusal: it crashed with a traceback here, and the parent said only "workers failed ..."
        with kept_for_resume(Path(cfg.out).expanduser()):
            _run(input, _config(cfg, bb, cfg.out, {}), finalize=False)
    except GeoDinoError as exc:
        if conn is None:
            raise
        import pickle
        import traceback

        try:
            blob: bytes | None = pickle.dumps(exc)
        except Exception:  # an error that does not pickle: the parent rebuilds it from its kind and message
            blob = None
        kind = next(c.__name__ for c in type(exc).__mro__ if c.__module__ == "geodino.errors")
        conn.send((blob, kind, str(exc), traceback.format_exc()))
        conn.close()
        sys.exit(exc.exit_code)


def place_backbone(bb: Any, device: str) -> Any:
    """`bb` on `device` (a worker's own GPU from `rank_device`, a rank's cuda:LOCAL_RANK, or the host before
    spawning). A fast path prepared elsewhere (`geodino.inference.accelerate`) holds a copy of the weights on that
    other device: the eager model is put back and the prepared copies dropped, so the run prepares one where it
    runs. The object is sent to workers rather than its spec, so that every worker runs the weights the parent
    checked and fingerprinted (a spec may not load the same weights twice: an unseeded `arch:`, an object changed in
    place, no spec at all). A backbone already there (a bare device type: any index of it), or an object without
    weights, is returned as it is."""
    if not isinstance(bb, torch.nn.Module):
        return bb
    target = torch.device(device)
    held = [t.device for t in (*bb.parameters(), *bb.buffers())]
    if not held or all(_same_device(d, target) for d in held):
        return bb
    eager = bb.__dict__.pop("_eager_model", None)
    bb.__dict__.pop("_fast_models", None)
    if eager is not None and getattr(bb, "model", None) is not eager:  # the parent's fast path: not moved, redone
        bb.model = eager
    return bb.to(target)


def _same_device(held: torch.device, target: torch.device) -> bool:
    """Whether a tensor on `held` is on `target`; a target without an index is any device of its type (as
    `inference_device` reads a bare "cuda": the weights' own GPU)."""
    if held.type != target.type:
        return False
    return target.index is None or held.index == target.index


def worker_error(rank: int, n: int, payload: tuple[bytes | None, str, str, str]) -> GeoDinoError:
    """The error a worker refused the input with (`worker_main`), raised again here; when it does not unpickle, the
    same message as its geodino.errors kind. Its traceback in the worker becomes a note (shown with --debug)."""
    import pickle

    from geodino import errors

    blob, kind, message, trace = payload
    try:
        exc = pickle.loads(blob) if blob else None
    except Exception:
        exc = None
    if not isinstance(exc, GeoDinoError):
        exc = getattr(errors, kind, GeoDinoError)(message)
    exc.add_note(f"raised in embedding worker {rank} of {n}:\n{trace}")
    return exc


def spawn_workers(input: Any, bb: Any, cfg: EmbedConfig, work: Path, prep: PreparedRun, *, fresh: bool = False) -> None:
    """Run `cfg.workers` processes on disjoint contiguous shares of the blocks of one store; wait for all.

    A worker that refuses the input (a `GeoDinoError`, e.g. 16-bit values above 255 with an 8-bit --sensor) hands
    its error to this process, which raises it: one line and exit 2, as a single process does, and like it the
    partial output is removed when this run started it (`fresh`; kept for --resume otherwise). The other workers
    are stopped at once, not left to finish shares whose output is discarded. A worker that crashes prints its
    traceback, and this process says which ones failed; the others finish, for --resume."""
    if not isinstance(input, (str, Path)):
        raise ConfigError("workers > 1 needs the input as a path (each process opens it itself)")
    init_work_dir(work, prep, join=cfg.resume)
    home = _accelerator_of(bb)
    if home is None:
        _run_workers(input, bb, cfg, work, prep, fresh)
        return
    # the backbone crosses on the host: CUDA tensors would reach every worker through CUDA IPC on the parent's GPU,
    # a CUDA context there per worker; each worker moves it to its own GPU (place_backbone). Only an object the
    # caller put on a GPU gets here (a spec is loaded on the host), and the parent keeps its own context on that GPU.
    # The caller's object goes back to its device after the run (its fast path dropped, the model it had put back
    # by `_embed`).
    bb = place_backbone(bb, "cpu")
    if home.type == "cuda":  # the blocks the weights and the parent's fast path held, for worker 0 on that GPU
        torch.cuda.empty_cache()
    try:
        _run_workers(input, bb, cfg, work, prep, fresh)
    finally:
        bb.to(home)


def _picklable(fn: Any) -> Any:
    """`fn` when it can be sent to a spawned process (a module-level function), else None."""
    import pickle

    try:
        pickle.dumps(fn)
    except Exception:
        return None
    return fn


def _accelerator_of(bb: Any) -> torch.device | None:
    """The device of a backbone's weights when not the CPU (None for CPU weights and objects without any)."""
    if not isinstance(bb, torch.nn.Module):
        return None
    from geodino.embed.backbone import weights_device

    held = torch.device(weights_device(bb, "cpu"))
    return held if held.type != "cpu" else None


def _run_workers(input: Any, bb: Any, cfg: EmbedConfig, work: Path, prep: PreparedRun, fresh: bool) -> None:
    """`spawn_workers`' processes, once the backbone is ready to send."""
    import multiprocessing as mp
    from multiprocessing.connection import wait

    n = cfg.workers
    threads = cfg.threads or max(1, usable_cpus() // n)
    ctx = mp.get_context("spawn")
    procs, pipes, fmt = [], [], _picklable(warnings.formatwarning)
    for r in range(n):
        device = rank_device(cfg.device, r, n, local=r)  # "cuda" on a machine with several GPUs: one each
        wcfg = dataclasses.replace(cfg, workers=1, world_size=n, rank=r, resume=True, overwrite=False, threads=threads)
        wcfg.device = device
        wcfg.progress = cfg.progress and r == 0
        recv, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=worker_main, args=(str(input), bb, wcfg, send, fmt), name=f"geodino-embed-{r}")
        proc.start()
        send.close()  # the worker holds the sending end: when it exits without a word, recv() ends (EOFError)
        procs.append(proc)
        pipes.append(recv)
    failed, refused = [], []
    pending = dict(enumerate(zip(procs, pipes)))
    while pending:  # whichever worker speaks or exits first: a refusal need not wait for the others' shares
        ready = wait([recv for _, recv in pending.values()])
        for r in [r for r, (_, recv) in pending.items() if recv in ready]:
            proc, recv = pending.pop(r)
            try:
                refused.append(worker_error(r, n, recv.recv()))  # the worker refused the input
            except EOFError:  # it exited without a word: done, or crashed (its traceback is printed)
                pass
            recv.close()
            proc.join()
            if proc.exitcode != 0:
                failed.append(r)
        if refused and pending:  # the input is refused: the rest of the work is wasted, stop it now
            for proc, _ in pending.values():
                proc.terminate()
            for proc, recv in pending.values():
                proc.join()
                recv.close()
            pending.clear()
    if refused:  # the first worker's refusal (they may all have refused the same input)
        # as a single process: a resume cannot fix bad input, but finishes once a full disk has space again
        if fresh and not isinstance(refused[0], WorkDirGone | StorageError):
            from geodino.embed.writers import remove_tree

            remove_tree(work)
        raise refused[0]
    if failed:
        which = ", ".join(map(str, sorted(failed)))
        raise InputError(
            f"{plural(len(failed), 'embedding worker')} of {n} failed ({'worker' if len(failed) == 1 else 'workers'} "
            f"{which}; see {'its' if len(failed) == 1 else 'their'} messages above); rerun with --resume "
            f"(resume=True in Python) to finish {cfg.out}"
        )
