"""Training progress a person can plan with: a per-step bar with examples/s and ETAs, and one
line estimating the whole run's duration after its first steps.

Keras' own bar shows the current epoch only and no throughput; on a CPU, where the paper's model
runs for days, the first thing a user needs is how long the whole run will take.
"""
from __future__ import annotations

import sys
import time

WARMUP_STEPS = 1          # the first step includes tracing the graph: excluded from rates
ESTIMATE_AFTER = 3        # steps timed before the run's duration is estimated


def format_seconds(seconds: float) -> str:
    """3725 -> '1 h 02 min'; 95 -> '1 min 35 s'; 12.3 -> '12 s'."""
    seconds = max(0.0, float(seconds))
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
    if seconds >= 60:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{seconds:.0f} s"


class TrainingProgress:
    """Keras callback (`.callback`): bars, rates and the run estimate, on stderr.

    Args:
        epochs: the run's last epoch (exclusive), as Keras counts them.
        initial_epoch: first epoch of this process (after --resume).
        steps: batches per epoch.
        batch_size: examples per batch.
        valid_batches: validation batches run after each epoch (estimated at a third of a step each).
        bar: True = a per-step bar; False = one line per epoch (logs, non-interactive runs).
    """

    def __init__(self, epochs: int, initial_epoch: int, steps: int, batch_size: int, valid_batches: int,
                 bar: bool = True, stream=None):
        import keras
        self.epochs, self.initial_epoch, self.steps = epochs, initial_epoch, steps
        self.batch_size, self.valid_batches, self.show_bar = batch_size, valid_batches, bar
        self.stream = stream or sys.stderr
        self.steps_done, self.timed_steps, self.timed_seconds = 0, 0, 0.0
        self.estimate = None
        self._bar = None
        self._step_started = None
        outer = self

        class _Callback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                outer.epoch_begin(epoch)

            def on_train_batch_begin(self, batch, logs=None):
                outer._step_started = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                outer.step_end(batch, logs or {})

            def on_epoch_end(self, epoch, logs=None):
                outer.epoch_end(epoch, logs or {})

        self.callback = _Callback()

    @property
    def step_seconds(self) -> float | None:
        return self.timed_seconds / self.timed_steps if self.timed_steps else None

    def remaining_seconds(self, epoch: int, batch: int) -> float | None:
        """Seconds left in the run after step `batch` of `epoch`, validation included (None before timing)."""
        if self.step_seconds is None:
            return None
        per_epoch_valid = self.valid_batches * self.step_seconds / 3
        left_in_epoch = (self.steps - batch - 1) * self.step_seconds + per_epoch_valid
        later_epochs = self.epochs - epoch - 1
        return left_in_epoch + later_epochs * (self.steps * self.step_seconds + per_epoch_valid)

    def epoch_begin(self, epoch: int) -> None:
        self.epoch_started = time.perf_counter()
        if self.show_bar:
            from tqdm import tqdm
            self._bar = tqdm(total=self.steps, desc=f"epoch {epoch + 1}/{self.epochs}", unit="step",
                             file=self.stream, dynamic_ncols=True, leave=True,
                             bar_format="{desc}: {percentage:3.0f}%|{bar}| {n}/{total} [{elapsed}<{remaining}{postfix}]")

    def step_end(self, batch: int, logs: dict) -> None:
        seconds = time.perf_counter() - (self._step_started or time.perf_counter())
        self.steps_done += 1
        if self.steps_done > WARMUP_STEPS:
            self.timed_steps += 1
            self.timed_seconds += seconds
        epoch = self.initial_epoch + (self.steps_done - 1) // self.steps
        if self.timed_steps == ESTIMATE_AFTER or (self.estimate is None and batch == self.steps - 1
                                                   and self.timed_steps and epoch == self.epochs - 1):
            self.announce_estimate(epoch, batch)
        if self._bar is not None:
            postfix = []
            if "loss" in logs:
                postfix.append(f"loss {float(logs['loss']):.4g}")
            if self.step_seconds:
                postfix.append(f"{self.batch_size / self.step_seconds:.1f} examples/s")
                run_left = self.remaining_seconds(epoch, batch)
                postfix.append(f"run ETA {format_seconds(run_left)}")
            self._bar.set_postfix_str(", ".join(postfix), refresh=False)
            self._bar.update(1)

    def announce_estimate(self, epoch: int, batch: int) -> None:
        done = time.perf_counter() - self.epoch_started
        left = self.remaining_seconds(epoch, batch) or 0.0
        self.estimate = done + left
        line = (f"train: estimated time for epochs {self.initial_epoch + 1}..{self.epochs}: "
                f"{format_seconds(self.estimate)} ({self.batch_size / self.step_seconds:.1f} examples/s over "
                f"{self.timed_steps} timed steps, {self.steps} steps per epoch)")
        self._write(line)

    def epoch_end(self, epoch: int, logs: dict) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        seconds = time.perf_counter() - self.epoch_started
        parts = [f"{k} {float(v):.5g}" for k, v in logs.items() if k in ("loss", "val_loss")]
        rate = f", {self.batch_size / self.step_seconds:.1f} examples/s" if self.step_seconds else ""
        self._write(f"train: epoch {epoch + 1}/{self.epochs}: {', '.join(parts)} ({format_seconds(seconds)}{rate})")

    def _write(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)
