"""The training loop: `train(TrainConfig(...))`, one process or every process of a torchrun job.

A run folder OUTPUT/NAME holds
  config.yaml        the resolved TrainConfig
  results.csv        one row per epoch: lr, loss parts (means over the epoch), val metrics, time
  last.safetensors   model, EMA, classifier, optimizer, RNG states, epoch (see `checkpoint`)
  best.safetensors   the same at the best validation HOTA (lowest training loss without val)
  weights.safetensors  best's EMA weights alone with their architecture, input size and class
                     names (`class_names`): `cstrack track --model` it
The model detects the classes the data config names (`names:`, label classes 0, 1, ...), or
`nc` of them (`--nc`; it must agree with `names`); one, pedestrian, when neither says.
`train(resume=RUN_DIR)` continues from last.safetensors exactly: an interrupted run and an
uninterrupted one with the same seed log the same losses (on CPU; CUDA kernels may differ).

Each epoch: YOLOv5 warmup, then the scheduled lr; SGD Nesterov over three parameter groups
(weights with decay; BatchNorm and other 1-d weights, and biases, without); gradients summed
over `accumulate` batches; AMP on CUDA only; weight EMA after every step; the last partial
accumulation of an epoch is applied at the epoch's end (so epochs are self-contained).

DDP: run the same command under torchrun. RANK / WORLD_SIZE / LOCAL_RANK select the process;
the process group is gloo on CPU, NCCL on CUDA. `batch` is global, split evenly over the
processes by a DistributedSampler seeded like the single-process sampler (same permutation);
loss normalisers are summed over processes so each step equals the single-process step on the
same global batch, up to BatchNorm statistics, which are per process (no SyncBN; `freeze_bn`
removes the difference). Only rank 0 validates and writes files.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from cstrack.atomic import atomic_write
from cstrack.data.jde import DataConfig, label_path_for, read_data_config
from cstrack.errors import InputError
from cstrack.models.classes import (
    CLASS_NAMES_KEY,
    adapt_class_layers,
    default_class_names,
    recorded_class_names,
)
from cstrack.models.device import resolve_device
from cstrack.models.network import OMC, TrackingNetwork
from cstrack.models.registry import count_parameters, create_model, weights_file
from cstrack.models.weights import load_weights, save_weights, weights_metadata
from cstrack.training.checkpoint import (
    META_KEY,
    TrainingState,
    capture_rng,
    load_checkpoint,
    read_weights,
    restore_rng,
    save_checkpoint,
)
from cstrack.training.config import RunResult, TrainConfig
from cstrack.training.dataset import (
    DetectionDataset,
    Frame,
    PairDataset,
    collate_detection,
    collate_pairs,
    load_frames,
    worker_init,
)
from cstrack.training.objectives import PARTS, DetectionObjective, ReCheckObjective
from cstrack.training.schedule import LRSchedule, ModelEMA, Warmup, set_lr
from cstrack.training.validate import val_sequences, validate

TRAIN_CONFIG_FILE = "config.yaml"
RESULTS_FILE = "results.csv"
logger = logging.getLogger(__name__)
LAST, BEST = "last.safetensors", "best.safetensors"
WEIGHTS = "weights.safetensors"  # the best EMA weights alone, as `cstrack track --model` loads them
RECHECK_PREFIXES = ("siambox.", "siamheatmap.")
VAL_COLUMNS = ("AP50", "recall", "precision", "HOTA", "MOTA", "IDF1", "IDSW", "FP", "FN")

#: Called on rank 0 after each epoch's files are written, with the epoch (0-based) and its CSV row.
EpochCallback = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class Distributed:
    """Where this process sits in the run: rank, world size and device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.world_size == 1:
            return tensor
        tensor = tensor.clone()
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def init_distributed(device_choice: str) -> Distributed:
    """Join the torchrun job described by RANK / WORLD_SIZE / LOCAL_RANK, if there is one."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(resolve_device(device_choice, local_rank))
    owns_group = False
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        owns_group = True
    return Distributed(rank, world_size, local_rank, device, owns_group)


def parameter_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """YOLOv5's groups: decayed weights; BatchNorm and other 1-d weights; biases (warmup's bias group)."""
    decayed, plain, biases = [], [], []
    for owner in module.modules():
        for name, param in owner.named_parameters(recurse=False):
            if not param.requires_grad:
                continue
            if name == "bias":
                biases.append(param)
            elif isinstance(owner, nn.modules.batchnorm._BatchNorm) or param.ndim <= 1:
                plain.append(param)
            else:
                decayed.append(param)
    groups = [
        {"params": decayed, "weight_decay": weight_decay},
        {"params": plain, "weight_decay": 0.0},
        {"params": biases, "weight_decay": 0.0, "bias": True},
    ]
    return [group for group in groups if group["params"]]


def _freeze_batchnorm(module: nn.Module) -> None:
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.eval()


def _freeze(model: TrackingNetwork, prefixes: tuple[str, ...]) -> str:
    """Stop the base network's parameters named PREFIX... from training; returns a one-line report."""
    base = model.model if isinstance(model, OMC) else model
    named = dict(base.named_parameters())
    unmatched = [p for p in prefixes if not any(name.startswith(p) for name in named)]
    if unmatched:
        raise InputError(
            None, f"--freeze {' '.join(unmatched)}: no parameter of {type(base).__name__} starts so"
        )
    frozen = [p for name, p in named.items() if name.startswith(prefixes)]
    for parameter in frozen:
        parameter.requires_grad_(False)
    return f"froze {sum(p.numel() for p in frozen):,} parameters ({', '.join(prefixes)})"


def _check_label_classes(frames: list[Frame], nc: int) -> None:
    """Every label's class must be one the model predicts: a larger one would train nothing."""
    for frame in frames:
        classes = frame.labels[:, 0]
        if len(classes) and classes.max() >= nc:
            raise InputError(
                label_path_for(frame.image),
                f"class {int(classes.max())} but the model has {nc} class(es) (0..{nc - 1}): name the "
                "classes in the data config (`names: [...]`) or give --nc",
            )


def class_names_for(config: TrainConfig, data: DataConfig) -> tuple[str, ...]:
    """The names of the classes a run trains: the data config's `names`, or `nc` defaults."""
    if data.names is not None:
        if config.nc is not None and config.nc != len(data.names):
            raise InputError(
                data.path,
                f"names {len(data.names)} class(es) ({', '.join(data.names)}) but --nc is {config.nc}",
            )
        return data.names
    return default_class_names(config.nc or 1)


def _file_class_names(path: Path) -> tuple[str, ...] | None:
    """The class names a weights file or training checkpoint records, None when it records none."""
    metadata = weights_metadata(path)
    if META_KEY in metadata:  # a checkpoint: the names are in its training metadata
        names = json.loads(metadata[META_KEY]).get(CLASS_NAMES_KEY)
        metadata = {CLASS_NAMES_KEY: json.dumps(names)} if names else {}
    return recorded_class_names(path, metadata)


def _next_run_dir(output: Path, name: str) -> Path:
    """OUTPUT/NAME, or NAME-2, NAME-3 ... when taken (YOLOv5's increment_path)."""
    existing = next(folder for folder in (output, *output.parents) if folder.exists())
    if not existing.is_dir():
        raise InputError(existing, "is a file: --output must name a folder")
    candidate, suffix = output / name, 2
    while candidate.exists():
        candidate, suffix = output / f"{name}-{suffix}", suffix + 1
    return candidate


def _load_initial_weights(
    model: TrackingNetwork, spec: str, stage: str, class_names: tuple[str, ...] | None = None
) -> str:
    """Load --weights (plain weights, a checkpoint's EMA weights, or a bundled model by name, e.g.
    to fine-tune the default); returns a one-line report.

    In the re-check stage only the base network is taken: the re-check heads start from their
    initialisation (a stage-1 file holds untrained ones, which would skip the heat-map prior).
    Weights with another number of classes load too: the class layers keep the rows of the
    classes the file and `class_names` (default: the model's default names) share, by name,
    and start afresh for the others.
    """
    if class_names is None:
        class_names = default_class_names(model.detect.nc)
    path = weights_file(spec) or Path(spec)
    state = read_weights(path, ema=True)
    if stage == "recheck":
        state = {k: v for k, v in state.items() if not k.removeprefix("module.").startswith(RECHECK_PREFIXES)}
    state, refitted = adapt_class_layers(model, model.detect, state, _file_class_names(path), class_names)
    missing, unexpected = load_weights(model, state, strict=False)
    if stage == "recheck":
        base_missing = [key for key in missing if not key.startswith(RECHECK_PREFIXES)]
        if base_missing:
            raise InputError(
                path, f"{len(base_missing)} base-network tensors missing, e.g. {base_missing[0]}"
            )
    report = (
        f"loaded {path}: {len(missing)} model tensors not in the file, {len(unexpected)} file tensors unused"
    )
    return report if refitted is None else f"{report}; {refitted}"


def _read_rows(path: Path, before_epoch: int) -> list[dict[str, str]]:
    """The CSV rows of the epochs already done (a crash between checkpoint and CSV leaves extras)."""
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as stream:
        return [row for row in csv.DictReader(stream) if int(row["epoch"]) <= before_epoch]


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_write(path) as stream:
        stream.write(buffer.getvalue())


def _stage(
    config: TrainConfig, model: TrackingNetwork, frames: list[Frame], num_ids: int, amp: bool
) -> tuple[DetectionDataset | PairDataset, DetectionObjective | ReCheckObjective, Callable[..., Any]]:
    """The dataset, training wrapper and collate function of the configured stage."""
    size = tuple(config.img_size)
    if config.stage == "recheck":
        pairs = PairDataset(frames, size, config.augment, config.seed, config.pair_gap)
        return pairs, ReCheckObjective(model, amp), collate_pairs
    if isinstance(model, OMC):  # the re-check heads wait for stage 2
        model.siambox.requires_grad_(False)
        model.siamheatmap.requires_grad_(False)
    images = DetectionDataset(frames, size, config.augment, config.seed)
    return images, DetectionObjective(model, num_ids, config.id_weight, amp), collate_detection


class _Run:
    """One call of `train`: the model, data, optimizer and files of this process."""

    @property
    def weights_metadata(self) -> dict[str, str]:
        """What `cstrack track --model weights.safetensors` needs: the architecture (with the
        number of classes, when not 1), the input size and the class names."""
        width, height = self.config.img_size
        metadata = {
            "arch": self.config.model,
            "img_size": f"{width},{height}",
            CLASS_NAMES_KEY: json.dumps(list(self.class_names)),
        }
        if len(self.class_names) != 1:
            metadata["options"] = json.dumps({"nc": len(self.class_names)})
        return metadata

    def __init__(self, config: TrainConfig, run_dir: Path, ctx: Distributed, resuming: bool):
        self.config = config
        self.run_dir = run_dir
        self.ctx = ctx
        if config.batch % ctx.world_size:
            raise InputError(
                None, f"batch {config.batch} does not split evenly over {ctx.world_size} processes"
            )
        self.amp = ctx.device.type == "cuda"
        random.seed(config.seed)
        np.random.seed(config.seed)
        torch.manual_seed(config.seed)

        data = read_data_config(config.data)
        self.val = val_sequences(load_frames(data.val)) if data.val is not None and config.val_every else []
        frames = load_frames(data.train)
        self.class_names = class_names_for(config, data)
        nc = len(self.class_names)
        model = create_model(config.model, **({"nc": nc} if nc != 1 else {}))
        _check_label_classes(frames, model.detect.nc)
        self.log_lines: list[str] = []
        if config.weights is not None and not resuming:
            self.log_lines.append(
                _load_initial_weights(model, config.weights, config.stage, self.class_names)
            )
        elif config.stage == "recheck" and not resuming:
            raise InputError(None, "the re-check stage needs --weights: a trained base network")
        self.dataset, objective, collate = _stage(config, model, frames, data.train.num_ids, self.amp)
        if config.freeze:
            self.log_lines.append(_freeze(model, config.freeze))
        self.model = model.to(ctx.device)
        self.objective = objective.to(ctx.device)
        self.num_ids = data.train.num_ids

        self.sampler = DistributedSampler(
            self.dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=config.seed
        )
        self.loader = DataLoader(
            self.dataset,
            batch_size=config.batch // ctx.world_size,
            sampler=self.sampler,
            num_workers=config.workers,
            collate_fn=collate,
            worker_init_fn=worker_init,
            pin_memory=ctx.device.type == "cuda",
        )
        weight_decay = config.weight_decay * config.batch * config.accumulate / config.nominal_batch
        self.optimizer = torch.optim.SGD(
            parameter_groups(self.objective, weight_decay),
            lr=config.lr,
            momentum=config.momentum,
            nesterov=True,
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.ema = ModelEMA(self.model) if config.ema else None
        self.schedule = LRSchedule(config.schedule, config.epochs, config.step_epoch)
        self.warmup = Warmup(
            round(config.warmup_epochs * len(self.loader)), config.warmup_bias_lr, config.warmup_momentum
        )
        self.parts = PARTS[objective.stage]
        self.start_epoch = 0
        self.best_fitness = -math.inf
        self.rows: list[dict[str, Any]] = []
        self.trained: nn.Module = self.objective
        if ctx.world_size > 1:
            self.trained = DistributedDataParallel(
                self.objective,
                device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
                find_unused_parameters=self.objective.has_unused_parameters,
            )

    # --- state ---------------------------------------------------------------------------

    def state(self, epoch: int) -> TrainingState:
        classifier = self.objective.identity.state_dict() if self.objective.identity is not None else {}
        return TrainingState(
            model=self.model.state_dict(),
            ema=self.ema.module.state_dict() if self.ema else None,
            classifier=classifier,
            optimizer=self.optimizer.state_dict(),
            rng=capture_rng(),
            meta={
                "epoch": epoch,
                "best_fitness": self.best_fitness,
                "ema_updates": self.ema.updates if self.ema else 0,
                "schedule": self.schedule.state_dict(),
                "scaler": self.scaler.state_dict(),
                "model_name": self.config.model,
                "stage": self.config.stage,
                "num_ids": self.num_ids,
                "nc": len(self.class_names),
                CLASS_NAMES_KEY: list(self.class_names),
                "rows": self.rows,
            },
        )

    def restore(self, state: TrainingState) -> None:
        self.model.load_state_dict(state.model)
        if self.objective.identity is not None:
            self.objective.identity.load_state_dict(state.classifier)
        self.optimizer.load_state_dict(state.optimizer)
        if self.ema is not None:
            if state.ema is None:
                raise InputError(self.run_dir / LAST, "checkpoint has no EMA weights but the run uses EMA")
            self.ema.module.load_state_dict(state.ema)
            self.ema.updates = int(state.meta["ema_updates"])
        if state.meta.get("scaler"):
            self.scaler.load_state_dict(state.meta["scaler"])
        restore_rng(state.rng)
        self.start_epoch = int(state.meta["epoch"]) + 1
        self.best_fitness = float(state.meta["best_fitness"])
        if "rows" in state.meta:
            self.rows = list(state.meta["rows"])
        else:  # a checkpoint of a version that kept the rows in results.csv only
            self.rows = _read_rows(self.run_dir / RESULTS_FILE, self.start_epoch)
        if self.ctx.is_main:
            _write_rows(self.run_dir / RESULTS_FILE, self.rows)

    # --- loop ----------------------------------------------------------------------------

    def _set_train_mode(self) -> None:
        self.objective.train()
        if self.config.freeze_bn:
            _freeze_batchnorm(self.objective)

    def _step(self) -> None:
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model)

    def train_epoch(self, epoch: int) -> dict[str, float]:
        config, ctx = self.config, self.ctx
        self.sampler.set_epoch(epoch)
        self.dataset.set_epoch(epoch)
        lr = config.lr * self.schedule.factor(epoch)
        set_lr(self.optimizer, lr, config.momentum)
        self._set_train_mode()
        batches = len(self.loader)
        sums = torch.zeros(len(self.parts) + 1, dtype=torch.float64)
        images, pending, started = 0, 0, time.perf_counter()
        bar = tqdm(
            self.loader,
            total=batches,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            disable=config.quiet or not ctx.is_main,
            dynamic_ncols=True,
            leave=False,
        )
        for index, batch in enumerate(bar):
            iteration = index + batches * epoch
            accumulate = config.accumulate
            if self.warmup.active(iteration):
                accumulate = self.warmup.accumulate(iteration, config.accumulate)
                self.warmup.apply(self.optimizer, iteration, lr, config.momentum)
            tensors = [t.to(ctx.device, non_blocking=True) for t in batch]
            steps_now = pending + 1 >= accumulate or index == batches - 1
            sync = nullcontext() if steps_now or ctx.world_size == 1 else self.trained.no_sync()
            global_batch = tensors[0].shape[0] * ctx.world_size
            with sync:
                loss, parts = self.trained(*tensors, reduce_counts=ctx.all_sum)
                # YOLOv5's loss x batch; x world size again because DDP averages the gradients.
                self.scaler.scale(loss * global_batch * ctx.world_size).backward()
            pending += 1
            if steps_now:
                self._step()
                pending = 0
            logged = ctx.all_sum(torch.cat((parts, loss.detach()[None]))).double().cpu()
            sums += logged
            images += global_batch
            if not bar.disable:
                rate = images / max(time.perf_counter() - started, 1e-9)
                bar.set_postfix({**dict(zip(self.parts, logged.tolist())), "img/s": rate}, refresh=False)
        seconds = time.perf_counter() - started
        means = (sums / max(batches, 1)).tolist()
        row: dict[str, float] = {"epoch": epoch + 1, "lr": lr}
        row.update(zip((*self.parts, "loss"), means))
        row.update({"images_per_s": images / max(seconds, 1e-9), "train_s": seconds})
        return row

    def _validate(self, epoch: int) -> dict[str, float]:
        config = self.config
        due = config.val_every and ((epoch + 1) % config.val_every == 0 or epoch + 1 == config.epochs)
        if not (self.val and due and self.ctx.is_main):
            return {}
        model = self.ema.module if self.ema else self.model
        started = time.perf_counter()
        metrics = validate(
            model,
            self.val,
            tuple(config.img_size),
            self.ctx.device,
            recheck=config.recheck_in_validation,
            frame_rate=config.val_frame_rate,
            class_names=self.class_names,
        )
        metrics["val_s"] = time.perf_counter() - started
        return metrics

    def run(self, on_epoch_end: EpochCallback | None) -> RunResult:
        ctx, config = self.ctx, self.config
        history = []
        if ctx.is_main and not config.quiet:
            logger.info(
                "cstrack train: %s (%.1fM parameters), stage %s, %d samples, %d identities, "
                "classes %s, %d process(es) on %s, run folder %s",
                config.model,
                count_parameters(self.model) / 1e6,
                config.stage,
                len(self.dataset),
                self.num_ids,
                ", ".join(self.class_names),
                ctx.world_size,
                ctx.device,
                self.run_dir,
            )
            for line in self.log_lines:
                logger.info("%s", line)
        for epoch in range(self.start_epoch, config.epochs):
            row = self.train_epoch(epoch)
            metrics = self._validate(epoch)
            row.update(metrics)
            if ctx.is_main:
                fitness = metrics["HOTA"] if "HOTA" in metrics else (-row["loss"] if not self.val else None)
                improved = fitness is not None and fitness > self.best_fitness
                if improved:
                    self.best_fitness = fitness
                row["best_fitness"] = self.best_fitness
                self.rows.append(row)
                state = self.state(epoch)
                # LAST is the commit point; it holds the rows, and results.csv is derived from them.
                # A kill before LAST is replaced repeats this epoch on --resume (bit for bit), which
                # writes BEST and the weights again; a kill after it only leaves the CSV a row
                # short until --resume rewrites it from LAST.
                if improved:
                    save_checkpoint(self.run_dir / BEST, state)
                    deployed = self.ema.module if self.ema else self.model
                    save_weights(deployed, self.run_dir / WEIGHTS, metadata=self.weights_metadata)
                save_checkpoint(self.run_dir / LAST, state)
                _write_rows(self.run_dir / RESULTS_FILE, self.rows)
                history.append(row)
                if not config.quiet:
                    columns = ("loss", *self.parts, *VAL_COLUMNS, *(f"AP50_{n}" for n in self.class_names))
                    shown = ", ".join(f"{k} {row[k]:.4g}" for k in columns if k in row)
                    logger.info("epoch %d/%d: %s", epoch + 1, config.epochs, shown)
                if on_epoch_end is not None:
                    on_epoch_end(epoch, row)
            ctx.barrier()
        return RunResult(
            run_dir=self.run_dir,
            last=self.run_dir / LAST,
            best=self.run_dir / BEST,
            epochs=config.epochs,
            best_fitness=self.best_fitness,
            history=history,
        )


def train(
    config: TrainConfig | None = None,
    *,
    resume: str | PathLike | None = None,
    on_epoch_end: EpochCallback | None = None,
) -> RunResult:
    """Train as `config` says, or continue the run in folder `resume` (its config.yaml) exactly.

    Under torchrun every process calls this; rank 0 alone writes the run folder and validates.
    """
    if (config is None) == (resume is None):
        raise InputError(None, "pass either a training config or a run folder to resume")
    if resume is not None:
        run_dir = Path(resume)
        config = TrainConfig.load(run_dir / TRAIN_CONFIG_FILE)
        if not (run_dir / LAST).is_file():
            raise InputError(run_dir / LAST, "no checkpoint to resume from")
    else:
        run_dir = _next_run_dir(Path(config.output), config.name or f"{config.model}-{config.stage}")
    ctx = init_distributed(config.device)
    try:
        ctx.barrier()  # every rank has chosen the run folder before rank 0 creates it
        run = _Run(config, run_dir, ctx, resuming=resume is not None)
        if resume is not None:
            run.restore(load_checkpoint(run_dir / LAST))
        elif ctx.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            config.save(run_dir / TRAIN_CONFIG_FILE)
        ctx.barrier()
        return run.run(on_epoch_end)
    finally:
        ctx.close()
