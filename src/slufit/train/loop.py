"""The training loop: one function, `train`, readable top to bottom (setup, fit, evaluate).

Schemes decide which items flow in and when (slufit.train.schemes); this loop only runs
the schedule: for each stage, modality-homogeneous length-bucketed batches
(slufit.train.sampler) -> `model.collate` -> `model.loss` -> backward, with gradient
accumulation, clipping, and one AdamW + one LR schedule for the whole run (warm-up then
cosine within each stage, each stage at its own peak LR). It runs unchanged on one CPU or
under `accelerate launch` (DDP; FSDP2 through slufit.train.distributed). Under several processes
each rank trains on its share of the same single-kind global batch, its loss weighted by its share
of the batch's target tokens, so the gradient is the one a single process would compute.

RUN_DIR is laid out as in docs/architecture.md; checkpoints/last/ is rewritten every
`train.checkpoint_every` steps and at every stage end, and `resume=True` continues from it
with the same batches, optimizer state and RNG states, so an interrupted run ends with the
same metrics as one never interrupted.
"""

from __future__ import annotations

import contextlib
import copy
import math
import shutil
import platform
import subprocess
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import torch

from slufit import __version__
from slufit.errors import SlufitError
from slufit.files import atomic_open, write_json
from slufit.train.augment import FillerSwap
from slufit.train.checkpoint import TrainState, load_checkpoint, save_checkpoint
from slufit.train.config import Config, Trainable, dump_config
from slufit.train.distributed import (clip_gradients, close, encoder_cache_allowed, encoder_parameters,
                                      fsdp_settings, full_root, gradient_sync, save_full_model, shard_model)
from slufit.train.evaluate import evaluate_to_dir, headline
from slufit.train.precision import generation_precision, load_options
from slufit.train.prefetch import prefetched
from slufit.train.sampler import StageSampler, batches_per_epoch, shard
IGNORE = -100
from slufit.train.schemes import Dataset, Stage, build_schedule, speech_budget, stage_plan


# ---- the schedule and the learning rate ----

def plan_schedule(config: Config, world: int = 1) -> tuple[list[Stage], list[dict], dict, int]:
    """Read the data and build (stages, per-stage plans, budget manifest, grad_accum); loads no weights."""
    t = config.train
    if not config.data.train:
        raise SlufitError("data.train is empty: give at least one canonical JSONL file")
    grad_accum = t.grad_accum
    if t.global_batch is not None:
        per_step = t.batch_size * world
        if t.global_batch % per_step:
            raise SlufitError(f"train.global_batch={t.global_batch} is not a multiple of train.batch_size x processes "
                              f"= {per_step}")
        grad_accum = t.global_batch // per_step
    train_data = Dataset.read(config.data.train)
    budget = speech_budget(config, train_data)
    rehearsal = Dataset.read([config.data.rehearsal]) if config.data.rehearsal else None
    stages = build_schedule(config, train_data, set(budget["ids"]), rehearsal)
    plans = []
    for stage in stages:
        plan = stage_plan(stage, batches_per_epoch(stage, t.batch_size * world), grad_accum)
        plans.append({"name": stage.name, "items": stage.counts(), "epochs": stage.epochs, **plan,
                      "lr": stage.lr, "warmup_ratio": stage.warmup_ratio, "trainable": asdict(stage.trainable)})
    return stages, plans, budget, grad_accum


def lr_at(step: int, plans: list[dict]) -> float:
    """Learning rate of optimizer step `step` (0-based): linear warm-up then cosine to 0, per stage."""
    for plan in plans:
        if step < plan["steps"]:
            warmup = plan["warmup_steps"]
            if step < warmup:
                return plan["lr"] * (step + 1) / (warmup + 1)
            progress = (step - warmup) / max(1, plan["steps"] - warmup)
            return plan["lr"] * 0.5 * (1.0 + math.cos(math.pi * progress))
        step -= plan["steps"]
    return 0.0


def format_schedule(config: Config, plans: list[dict], budget: dict | None, grad_accum: int) -> str:
    lines = [f"scheme {config.scheme.name}: {len(plans)} stage(s), micro-batch {config.train.batch_size}, "
             f"grad accumulation {grad_accum}"]
    if budget is not None:
        lines.append(f"speech budget: {len(budget['ids'])} training examples may use speech")
    for i, p in enumerate(plans, 1):
        parts = [k for k, v in p["trainable"].items() if v]
        lines.append(f"  stage {i} {p['name']}: {p['items']['text']} text + {p['items']['speech']} speech"
                     + (f" + {p['items']['rehearsal']} rehearsal" if p["items"]["rehearsal"] else "")
                     + f" items x {p['epochs']:g} epoch(s) = {p['batches']} batches, {p['steps']} steps "
                     f"(warm-up {p['warmup_steps']}), peak lr {p['lr']:g}, trains {', '.join(parts)}")
    return "\n".join(lines)


def version_info() -> dict[str, Any]:
    import transformers

    try:
        git = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        git = None
    return {"slufit": __version__, "git": git, "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__}


# ---- small helpers the loop reads through ----

def _union(stages: list[Stage]) -> Trainable:
    return Trainable(*(any(getattr(s.trainable, part) for s in stages)
                       for part in ("audio_encoder", "projector", "language_model")))


def _collate(model: Any, kind: str, items: list, device: torch.device) -> dict[str, torch.Tensor]:
    if kind == "rehearsal":
        batch = model.collate_rehearsal(items)  # speech -> transcript (the pretraining objective)
    else:
        batch = model.collate(items)
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def _collating_copy(model: Any) -> Any:
    """The adapter the prefetch thread collates with: a shallow copy, because `_wrapped` swaps the adapter's
    module for accelerate's wrapper during each step and the thread must keep reading the plain module (its
    caches, the bridge's head); with its own tokenizer and processor, because a fast tokenizer's padding
    state is shared by concurrent calls (two threads padding at once gave ragged batches). None when they
    cannot be copied: then everything is collated on the training thread."""
    view = copy.copy(model)
    for attr in ("tokenizer", "processor"):
        if getattr(model, attr, None) is not None:
            try:
                setattr(view, attr, copy.deepcopy(getattr(model, attr)))
            except Exception:  # noqa: BLE001 - any tokenizer that refuses to be copied
                return None
    return view


@contextlib.contextmanager
def _wrapped(model: Any, wrapped: torch.nn.Module):
    """Let the adapter's forward go through accelerate's wrapper (DDP/FSDP) during training."""
    plain, model.module = model.module, wrapped
    try:
        yield
    finally:
        model.module = plain


def _token_share(batch: dict[str, torch.Tensor], real: bool, accelerator: Any) -> torch.Tensor:
    """processes x this rank's share of the global batch's target tokens (1 on one process): the factor that
    makes the ranks' averaged gradient the gradient of the global batch's mean loss. A rank that only
    repeats an item to keep step with the others (sampler.shard) weighs 0."""
    tokens = (batch["labels"][:, 1:] != IGNORE).sum().float() * real
    if accelerator.num_processes == 1:
        return torch.ones((), device=tokens.device)
    total = accelerator.reduce(tokens.clone(), "sum")
    return tokens * accelerator.num_processes / total.clamp(min=1)


def _log_items(stage: int, batch: int, kind: str, items: list, rank: int) -> None:
    """SLUFIT_ITEM_LOG=DIR: each rank appends the ids it trains on (a check that every item is used once)."""
    import json
    import os

    folder = os.environ.get("SLUFIT_ITEM_LOG")
    if folder:
        with open(Path(folder) / f"items-rank{rank}.jsonl", "a", encoding="utf-8") as handle:
            ids = [i.example.id + ("@" + Path(i.audio_path).name if i.audio_path else "") for i in items]
            handle.write(json.dumps({"stage": stage, "batch": batch, "kind": kind, "ids": ids,
                                     "seed": torch.initial_seed()}) + "\n")


def _evaluate(model: Any, config: Config, data: Dataset, name: str, run_dir: Path, accelerator: Any,
              limit: int | None = None, wrapped: torch.nn.Module | None = None) -> dict[str, Any]:
    """Evaluate `data` with each modality of eval.modalities that it has items for (every rank enters)."""
    examples, files = data.examples[:limit], data.files[:limit]
    results = {}
    model.module.eval()
    sharded = wrapped is not None and wrapped is model.module and hasattr(wrapped, "unshard")
    precision = contextlib.nullcontext() if sharded else generation_precision(accelerator)
    with torch.no_grad(), full_root(wrapped if sharded else torch.nn.Module()), precision:
        for modality in config.eval.modalities:
            if modality == "speech" and not any(e.recordings for e in examples):
                continue  # a text-only eval set (e.g. a target locale without audio)
            eval_name = f"{name}-{modality}"
            results[eval_name] = evaluate_to_dir(
                model, examples, files, modality, run_dir / "eval" / eval_name, beams=config.eval.beams,
                batch_size=config.eval.batch_size, max_new_tokens=config.eval.max_new_tokens, accelerator=accelerator)
            accelerator.print(f"  {eval_name}: {headline(results[eval_name])}")
    return results


def _final_evaluation(model: Any, config: Config, dev: Dataset | None, test: Dataset | None, state: TrainState,
                      run_dir: Path, accelerator: Any, wrapped: torch.nn.Module) -> dict[str, Any]:
    """dev-<modality> and test-<modality> metrics of the final model."""
    results = {}
    last = state.stages_done[-1] if state.stages_done else {}
    if dev is not None and config.eval.dev_limit is None and last.get("metrics"):
        # The last stage already scored the whole dev set with this very model: reuse it.
        for stage_eval, metrics in last["metrics"].items():
            name = "dev-" + stage_eval.rsplit("-", 1)[1]
            results[name] = metrics
            if accelerator.is_main_process:
                shutil.copytree(run_dir / "eval" / stage_eval, run_dir / "eval" / name, dirs_exist_ok=True)
    elif dev is not None:
        results.update(_evaluate(model, config, dev, "dev", run_dir, accelerator, wrapped=wrapped))
    if test is not None:
        results.update(_evaluate(model, config, test, "test", run_dir, accelerator, wrapped=wrapped))
    return results


def warm_start_mismatch(source: Path, config: Config, plans: list[dict], trainable: list[str]) -> str | None:
    """Why `source`'s checkpoint cannot stand for this run's first stage, or None when it can.

    It can when `source` finished exactly one stage, that stage's plan (items, epochs, steps, warm-up, peak LR,
    trainable parts) equals this run's first stage, the optimizer holds the same parameters, and the model,
    training data and seed are the same: the checkpoint is then bit for bit what this run would hold after
    its first stage (a resumed run ends exactly like an uninterrupted one), so training it again is waste.
    This is how a grid's curriculum runs reuse its text-only run (slufit.grid.runner).
    """
    from slufit.files import read_json
    from slufit.train.checkpoint import checkpoint_dir
    from slufit.train.config import load_config

    folder = checkpoint_dir(source)
    if not (folder / "train_state.json").is_file() or not (source / "schedule.json").is_file():
        return "no finished checkpoint"
    state, schedule = read_json(folder / "train_state.json"), read_json(source / "schedule.json")
    if state.get("stage") != 1 or state.get("batch") != 0:
        return "its checkpoint is not at the end of its first stage"
    strip = lambda plan: {k: v for k, v in plan.items() if k != "name"}  # noqa: E731
    if strip(schedule["stages"][0]) != strip(plans[0]):
        return "its first stage differs from this run's"
    if state.get("trainable") != trainable:
        return "its optimizer holds other parameters"
    other = load_config(source / "config.yaml")
    same = ((other.model, other.data.train, other.data.filler_swap, other.train)
            == (config.model, config.data.train, config.data.filler_swap, config.train))
    return None if same else "its model, training data or optimisation settings differ"


def _start_run_dir(config: Config, run_dir: Path, plans: list[dict], budget: dict, grad_accum: int) -> None:
    """Write what a run is made of before anything trains: config, code version, schedule, budget."""
    if (run_dir / "checkpoints").exists() or (run_dir / "summary.json").exists():
        raise SlufitError(f"{run_dir}: already holds a run; continue it with `slufit train --resume {run_dir}` "
                          f"or choose another run_dir=")
    with atomic_open(run_dir / "config.yaml") as handle:
        handle.write(dump_config(config))
    write_json(run_dir / "version.json", version_info())
    write_json(run_dir / "schedule.json", {"grad_accum": grad_accum, "stages": plans})
    write_json(run_dir / "budget.json", budget)


# ---- the loop ----

def train(config: Config, resume: bool = False, load: Callable[..., Any] | None = None,
          warm_start: Path | None = None) -> dict[str, Any]:
    """Run (or resume) one training run; returns summary.json's content.

    `load(name, **options) -> SLUModel` defaults to slufit.models.registry.load_model.
    `warm_start`: another run folder whose end-of-first-stage checkpoint stands for this run's first stage
    when `warm_start_mismatch` finds nothing against it (otherwise this run trains that stage itself).
    """
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, set_seed
    from tqdm.auto import tqdm

    # -- setup: accelerator, data, schedule, run folder, model, optimizer
    t, run_dir = config.train, Path(config.run_dir or "runs/run")
    fsdp = fsdp_settings()  # before the Accelerator: slufit shards the model itself (slufit.train.distributed)
    accelerator = Accelerator(mixed_precision=t.mixed_precision, kwargs_handlers=[
        # Text batches leave the audio encoder and projector without gradients.
        DistributedDataParallelKwargs(find_unused_parameters=True)])
    main, world, rank = accelerator.is_main_process, accelerator.num_processes, accelerator.process_index
    set_seed(t.seed)  # the same on every rank until the model is built: the same initial weights everywhere
    stages, plans, budget, grad_accum = plan_schedule(config, world)
    samplers = [StageSampler(s, i, t.seed, t.batch_size * world, t.bucket_batches) for i, s in enumerate(stages)]
    augment = FillerSwap((i.example for s in stages for i in s.items if i.modality == "text"), config.data.filler_swap)
    dev = Dataset.read(config.data.dev) if config.data.dev else None
    test = Dataset.read(config.data.test) if config.data.test else None
    if main and not resume:
        _start_run_dir(config, run_dir, plans, budget, grad_accum)
    accelerator.wait_for_everyone()
    accelerator.print(dump_config(config) + format_schedule(config, plans, budget, grad_accum))

    if load is None:
        from slufit.models.registry import load_model as load
    options = load_options(config, accelerator.device)
    model = load(config.model.name, **options)
    if any(s.rehearsal for s in stages) and not hasattr(model, "collate_rehearsal"):
        raise SlufitError(f"{config.model.name}: this model adapter has no speech->transcript rehearsal "
                          f"(collate_rehearsal); remove `rehearsal` from the stages")
    # Every part any stage trains needs requires_grad before accelerate wraps the model (DDP
    # registers its gradient hooks then); each stage then freezes what it does not train.
    union = _union(stages)
    if fsdp is not None:
        encoder_cache_allowed(model, union.audio_encoder)
    model.set_trainable(**asdict(union))
    if fsdp is not None:
        # Parts no stage trains in the encoder stay outside the shards (replicated; the cache is safe there).
        ignored = [p for p in encoder_parameters(model) if not p.requires_grad]
        wrapped = shard_model(model.module, fsdp, ignored, t.mixed_precision, accelerator.device)
    params = [p for p in model.module.parameters() if p.requires_grad]
    # lr=1: the scheduler's factor is the learning rate itself (see lr_at).
    optimizer = torch.optim.AdamW(params, lr=1.0, weight_decay=t.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_at(step, plans))
    if fsdp is None:
        wrapped, optimizer = accelerator.prepare(model.module, optimizer)
    sharded = (wrapped, optimizer) if fsdp is not None else None  # what torch.distributed.checkpoint writes
    # From here each rank draws its own dropout and augmentation; rank 0 goes on drawing what one process would.
    if rank > 0:
        set_seed(t.seed + rank)
    state = TrainState(trainable=[n for n, p in model.module.named_parameters() if p.requires_grad])
    accelerator.register_for_checkpointing(scheduler, state)  # scheduler stepped by us, once per step
    if warm_start is not None and not resume:
        reason = warm_start_mismatch(Path(warm_start), config, plans, state.trainable)
        if reason is None:
            from slufit.train.checkpoint import checkpoint_dir

            if main:
                shutil.copytree(checkpoint_dir(Path(warm_start)), run_dir / "checkpoints" / "last")
            accelerator.wait_for_everyone()
            resume = True
            accelerator.print(f"stage 1/{len(stages)} {stages[0].name}: reused from {warm_start} (same plan, data, "
                              f"model and seed)")
        else:
            accelerator.print(f"not reusing {warm_start}: {reason}; training stage 1 here")
    if resume and not load_checkpoint(accelerator, run_dir, sharded):
        accelerator.print(f"{run_dir}: no checkpoint yet; starting from the beginning")
    if resume:
        # The optimizer's learning rate in a checkpoint is the one its run's last scheduler step set; the next
        # step must use this run's schedule (the same value for a plain resume; for a warm start, the source's
        # schedule had ended, at 0).
        for group in optimizer.param_groups:
            group["lr"] = lr_at(state.step, plans)
    if resume and warm_start is not None and state.warm_start is None:
        state.warm_start = str(warm_start)
    writer = None
    if main:
        from torch.utils.tensorboard import SummaryWriter
        writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=state.step)
    started = time.time() - state.train_seconds

    # -- fit: each stage, batch by batch, then evaluate on dev and checkpoint
    for stage_index in range(state.stage, len(stages)):
        stage, sampler = stages[stage_index], samplers[stage_index]
        model.set_trainable(**asdict(stage.trainable))
        if hasattr(model, "begin_stage"):  # optional: a model that adapts to the stage's items (the tiny bridge)
            model.begin_stage(stage.items)
        model.module.train()
        bar = tqdm(total=len(sampler), initial=state.batch, disable=not main, unit="batch",
                   desc=f"stage {stage_index + 1}/{len(stages)} {stage.name}")
        losses: dict[str, list[float]] = {}
        items_seen, clock = 0, time.time()
        # Speech batches are collated ahead in a background thread (text batches here: they draw random numbers).
        depth = t.prefetch if t.prefetch is not None else (2 if accelerator.device.type == "cuda" else 0)
        view = _collating_copy(model) if depth else model

        def prepare(kind: str, items: list) -> dict:
            return _collate(view, kind, shard(items, rank, world), torch.device("cpu"))
        for kind, items, ready in prefetched(sampler.iterate(state.batch), prepare, depth if view else 0):
            # The micro-batches of this optimizer step (the last step of a stage may be short).
            step_start = state.batch - state.batch % grad_accum
            in_step = min(grad_accum, len(sampler) - step_start)
            step_end = state.batch + 1 == step_start + in_step
            items = augment(items) if kind == "text" else items
            mine = shard(items, rank, world)
            _log_items(stage_index, state.batch, kind, items[rank::world], rank)
            batch = ready.result() if ready is not None else _collate(model, kind, mine, torch.device("cpu"))
            batch = {k: v.to(accelerator.device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            share = _token_share(batch, bool(items[rank::world]), accelerator)
            with gradient_sync(wrapped, accelerator, step_end), _wrapped(model, wrapped):
                loss = model.loss(batch) * share
                accelerator.backward(loss / in_step)
            losses.setdefault(kind, []).append(loss.item())
            items_seen += len(items)
            state.batch += 1
            bar.update(1)
            if not step_end:
                continue
            clip_gradients(wrapped, params, accelerator, t.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)  # free the gradients as soon as they are used
            state.step += 1
            speed = items_seen / max(time.time() - clock, 1e-9)
            bar.set_postfix(step=state.step, loss=f"{loss.item():.4f}", items_s=f"{speed:.1f}")
            if state.step % t.log_every == 0:
                # Every rank saw the same kinds: the mean over ranks is the global batch's loss.
                names = sorted(losses)
                means = torch.tensor([sum(losses[n]) / len(losses[n]) for n in names], device=accelerator.device)
                means = accelerator.reduce(means, "mean") if world > 1 else means
                for name, value in zip(names, means.tolist()):
                    if writer:
                        writer.add_scalar(f"loss/{name}", value, state.step)
                if writer:
                    writer.add_scalar("lr", scheduler.get_last_lr()[0], state.step)
                    writer.add_scalar("items_per_s", speed, state.step)
                losses = {}
            if t.checkpoint_every and state.step % t.checkpoint_every == 0 and state.batch < len(sampler):
                state.train_seconds = time.time() - started
                save_checkpoint(accelerator, run_dir, state, sharded)
        bar.close()
        accelerator.print(f"stage {stage_index + 1}/{len(stages)} {stage.name} done at step {state.step}"
                          + ("; evaluating on dev" if dev else ""))
        metrics = _evaluate(model, config, dev, f"stage{stage_index + 1}-{stage.name}.dev", run_dir, accelerator,
                            config.eval.dev_limit, wrapped=wrapped) if dev else {}
        state.stages_done.append({"stage": stage.name, "step": state.step, "metrics": metrics})
        state.stage, state.batch = stage_index + 1, 0
        state.train_seconds = time.time() - started
        save_checkpoint(accelerator, run_dir, state, sharded)

    # -- evaluate: save the final model, score dev and test, write summary.json last
    if sharded is not None:  # gathered into a full model, saved as one process would save it
        save_full_model(model, wrapped, load, ((config.model.name,), options), run_dir / "model", asdict(union), main)
    elif main:
        model.save(run_dir / "model")
    accelerator.wait_for_everyone()
    results = _final_evaluation(model, config, dev, test, state, run_dir, accelerator, wrapped)
    state.train_seconds = time.time() - started
    summary = {"done": True, "train_seconds": round(state.train_seconds, 1), "steps": state.step,
               "metrics": results, "stages": state.stages_done, "warm_start": state.warm_start}
    if writer:
        for name, m in results.items():
            writer.add_scalar(f"eval/{name}/intent", m["intent"]["f1"], state.step)
            writer.add_scalar(f"eval/{name}/slu_f1", m["slu_f1"]["f1"], state.step)
        writer.close()
    if main:
        write_json(run_dir / "summary.json", summary)
    close(accelerator)
    return summary
