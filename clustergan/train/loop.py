"""The one training function: a local debug run, N Ray Train workers, or one trial of a sweep.

``train_func(config_dict, context)`` rebuilds the typed config from a plain dict (what Ray hands workers),
and talks to the outside world only through ``context`` (:mod:`clustergan.train.dist`). Everything that
must exist before training (the dataset folder, the cluster statistics) is prepared by the driver with
:func:`prepare_run`, so workers only read.

One step, for a batch of (source x, target y, cluster i):
- fakes: ``G(x, z1, i)``, and ``G(x, z2, i)`` when the mode-seeking loss is on (MSGAN), as one batch;
- D: real pair once (MSGAN scores it twice; once is the same gradient up to a factor), the fakes detached;
- G: GAN loss on every fake, ``lambda_l1`` * L1(fake1, y), ``lambda_ms`` * L_MS, and, through the frozen
  encoder E on both fakes, ``lambda_kl1`` * L_kL1 + ``lambda_km`` * L_km toward cluster i's statistics.
A weight of 0 skips its computation (no second fake without L_MS, no encoder pass without feature losses).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from clustergan.config import TrainConfig
from clustergan.errors import ClusterganError, TrainingDiverged
from clustergan.losses import l1_reconstruction, mode_seeking_loss
from clustergan.provenance import provenance
from clustergan.train import checkpoint as ckpt
from clustergan.train.builders import build_config_encoder, build_discriminator, build_generator, load_cluster_stats
from clustergan.train.dist import Context, LocalContext
from clustergan.train.ema import GeneratorEMA
from clustergan.train.monitor import RunMonitor
from clustergan.train.precision import autocast, resolve_amp


def set_threads(config: TrainConfig) -> None:
    """Ray sets OMP_NUM_THREADS=1 per worker, which makes torch 1.5-1.9x slower here: set threads on purpose."""
    if config.train.threads:
        torch.set_num_threads(config.train.threads)


def _autocast(config: TrainConfig, device: torch.device):
    return autocast(resolve_amp(config.train.amp, device), device)


def _lr_lambda(config: TrainConfig):
    keep, decay = config.train.epochs, config.train.epochs_decay

    def factor(epoch: int) -> float:  # pix2pix's linear decay to 0 over `epochs_decay` epochs
        return 1.0 - max(0, epoch + 1 - keep) / float(decay + 1)

    return factor


def _check_finite(losses: dict[str, torch.Tensor], epoch: int, step: int) -> None:
    bad = [name for name, v in losses.items() if not torch.isfinite(v).all()]
    if bad:
        raise TrainingDiverged(
            f"loss {', '.join(bad)} became NaN/Inf at epoch {epoch}, step {step}; the last good checkpoint is "
            "kept. Lower train.lr or the lambdas, or try train.amp=none."
        )


class Trainer:
    """State of one training run. Built identically on every rank."""

    def __init__(self, config: TrainConfig, context: Context):
        from clustergan.data import PairedImageDataset
        from clustergan.losses import GANLoss

        self.config, self.ctx = config, context
        self.device = context.device
        self.run_dir = config.run_dir
        torch.manual_seed(config.seed)
        np.random.seed(config.seed % 2**32)

        d = config.data
        self.dataset = PairedImageDataset(
            d.root, "train", d.direction, d.size, train=True, load_size=d.load_size, seed=config.seed
        )
        self.loader = context.data_loader(self.dataset, config.train.batch_size, config.seed, d.num_workers)

        self.stats = load_cluster_stats(config) if config.cluster.k else None
        if self.stats is not None and len(self.stats.cluster_ids) != len(self.dataset):
            raise ClusterganError(
                f"{config.cluster.stats_dir}: cluster statistics cover {len(self.stats.cluster_ids)} images but "
                f"the training split has {len(self.dataset)}; recompute them with `clustergan cluster`"
            )
        self.cluster_ids = torch.as_tensor(self.stats.cluster_ids, dtype=torch.long) if self.stats is not None else None

        self.G = context.prepare_model(build_generator(config))
        self.D = context.prepare_model(build_discriminator(config))
        t = config.train
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=t.lr, betas=(t.beta1, t.beta2), fused=t.fused_adam)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=t.lr, betas=(t.beta1, t.beta2), fused=t.fused_adam)
        self.sched_G = torch.optim.lr_scheduler.LambdaLR(self.opt_G, _lr_lambda(config))
        self.sched_D = torch.optim.lr_scheduler.LambdaLR(self.opt_D, _lr_lambda(config))
        # what evaluation and sampling use by default (None when train.ema is off); counts global batches
        self.ema = GeneratorEMA.from_config(t.ema, getattr(self.G, "module", self.G), t.batch_size * context.world_size)
        self.gan_loss = GANLoss(config.loss.gan_mode)

        self.encoder = self.targets = None
        if config.uses_encoder:
            from clustergan.losses import ClusterTargets

            self.encoder = build_config_encoder(config).to(self.device)
            seen = {"weights_id": self.encoder.weights_id, "input_size": self.encoder.input_size}
            recorded = {key: self.stats.inputs.get(key) for key in seen}
            if recorded != seen:  # the losses would compare features from another space with the clusters
                raise ClusterganError(
                    f"{config.cluster.stats_dir}: the cluster statistics were computed with encoder weights "
                    f"{recorded['weights_id']} at input size {recorded['input_size']}, but this run's encoder is "
                    f"{seen['weights_id']} ({self.encoder.weights_source}) at {seen['input_size']}; recompute the "
                    "clusters with `clustergan cluster` for this config"
                )
            self.targets = ClusterTargets(self.stats.means, self.stats.precision_cholesky).to(self.device)
        self.start_epoch = 0
        self.global_step = 0

    # ------------------------------------------------------------------------------------------- state
    def state_dict(self, epoch: int) -> dict[str, Any]:
        def plain(m):
            return getattr(m, "module", m).state_dict()

        return {
            "format": "clustergan-checkpoint/1",
            "epoch": epoch,
            "global_step": self.global_step,
            "G": plain(self.G),
            "D": plain(self.D),
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
            "sched_G": self.sched_G.state_dict(),
            "sched_D": self.sched_D.state_dict(),
            "rng_torch": torch.get_rng_state(),
            "config": self.config.to_dict(),
            "cluster_frequencies": self.cluster_frequencies(),
            "provenance": {**provenance(self.device), "resolved_amp": resolve_amp(self.config.train.amp, self.device)},
            **({"G_ema": self.ema.state_dict()} if self.ema is not None else {}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        getattr(self.G, "module", self.G).load_state_dict(state["G"])
        getattr(self.D, "module", self.D).load_state_dict(state["D"])
        if self.ema is not None:  # after G: a checkpoint without an average starts it from its G
            self.ema.restore(state.get("G_ema"), getattr(self.G, "module", self.G), announce=self.ctx.is_main)
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        self.sched_G.load_state_dict(state["sched_G"])
        self.sched_D.load_state_dict(state["sched_D"])
        torch.set_rng_state(state["rng_torch"])
        self.start_epoch = int(state["epoch"])
        self.global_step = int(state["global_step"])
        # the learning rate follows *this* config's schedule, so a run can be resumed with more epochs
        factor = _lr_lambda(self.config)(self.start_epoch)  # LR of the epoch about to run
        for opt, sched in ((self.opt_G, self.sched_G), (self.opt_D, self.sched_D)):
            for group, base in zip(opt.param_groups, sched.base_lrs, strict=False):
                group["lr"] = base * factor

    def cluster_frequencies(self) -> list[float]:
        if self.stats is None:
            return []
        sizes = np.asarray(self.stats.sizes, dtype=np.float64)
        return (sizes / sizes.sum()).tolist()

    # -------------------------------------------------------------------------------------------- step
    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        cfg, lam = self.config, self.config.loss
        x = batch["source"].to(self.device, non_blocking=True)
        y = batch["target"].to(self.device, non_blocking=True)
        ids = self.cluster_ids[batch["index"]].to(self.device) if self.cluster_ids is not None else None
        d_ids = ids if cfg.model.d_condition == "projection" else None  # what D sees of the cluster index
        nz = cfg.model.nz
        z1 = torch.randn(x.shape[0], nz, device=self.device) if nz else None
        two_fakes = lam.lambda_ms > 0
        z2 = torch.randn(x.shape[0], nz, device=self.device) if two_fakes else None

        # Both MSGAN fakes go through G, and later D, as one batch of 2B: instance norm is per sample, so this
        # is the same computation as two passes, in one call (with norm=batch both fakes share statistics).
        n_fakes = 2 if two_fakes else 1
        xf = x.repeat(n_fakes, 1, 1, 1)
        idsf = ids.repeat(n_fakes) if ids is not None else None
        d_idsf = d_ids.repeat(n_fakes) if d_ids is not None else None
        zf = torch.cat([z1, z2]) if two_fakes else z1
        with _autocast(cfg, self.device):
            fake = self.G(xf, zf, idsf)  # [n_fakes * B, 3, H, W]
        fakes = fake.chunk(n_fakes)

        if cfg.train.update_order == "d_first":
            loss_D = self._update_D(x, y, d_ids, xf, fake, d_idsf)
            losses = self._update_G(y, z1, z2, xf, fake, fakes, idsf, d_idsf)
        else:  # "g_first": D then learns from the fakes G made before its step
            losses = self._update_G(y, z1, z2, xf, fake, fakes, idsf, d_idsf)
            loss_D = self._update_D(x, y, d_ids, xf, fake, d_idsf)
        losses["D"] = loss_D
        if self.ema is not None:
            self.ema.update(getattr(self.G, "module", self.G), self.global_step * self.ema.batch_images)
        self.global_step += 1
        return {k: v.detach() for k, v in losses.items()}

    def _update_D(self, x, y, d_ids, xf, fake, d_idsf) -> torch.Tensor:
        """One D step: the real pair once (MSGAN scores it once per fake: the same gradient up to a factor),
        the fakes detached."""
        cfg = self.config
        self.opt_D.zero_grad(set_to_none=True)
        with _autocast(cfg, self.device):
            loss_real = self.gan_loss(self.D(x, y, d_ids), True)
            loss_fake = self.gan_loss(self.D(xf, fake.detach(), d_idsf), False)  # mean over all fakes
            loss_D = loss_real + loss_fake
        _check_finite({"D": loss_D}, self.epoch, self.global_step)
        loss_D.backward()
        self.opt_D.step()
        return loss_D

    def _update_G(self, y, z1, z2, xf, fake, fakes, idsf, d_idsf) -> dict[str, torch.Tensor]:
        """One G step against D as it stands. D's weights are not trained here, so their gradients are not
        computed (pix2pix does the same; it saves about a third of D's backward). The unwrapped D is called so
        that DDP does not wait for those gradients. G's gradients are unchanged."""
        cfg, lam = self.config, self.config.loss
        n_fakes, two_fakes = len(fakes), z2 is not None
        self.opt_G.zero_grad(set_to_none=True)
        losses: dict[str, torch.Tensor] = {}
        D = getattr(self.D, "module", self.D)
        D.requires_grad_(False)
        with _autocast(cfg, self.device):
            # the GAN loss of each fake, summed over fakes (as MSGAN): n_fakes x the mean over the 2B batch
            losses["G_gan"] = n_fakes * self.gan_loss(D(xf, fake, d_idsf), True)
            loss_G = losses["G_gan"]
            if lam.lambda_l1 > 0:  # L1 reconstruction on the first fake only (MSGAN)
                losses["G_l1"] = l1_reconstruction(fakes[0].float(), y)
                loss_G = loss_G + lam.lambda_l1 * losses["G_l1"]
            if two_fakes:
                losses["G_ms"] = mode_seeking_loss(fakes[0].float(), fakes[1].float(), z1, z2)
                loss_G = loss_G + lam.lambda_ms * losses["G_ms"]
        if self.encoder is not None:
            # the encoder runs in fp32: its features are compared with fp32 cluster statistics
            feats = self.encoder(fake.float())
            if lam.lambda_kl1 > 0:
                losses["G_kl1"] = self.targets.kl1(feats, idsf)
                loss_G = loss_G + lam.lambda_kl1 * losses["G_kl1"]
            if lam.lambda_km > 0:
                losses["G_km"] = self.targets.mahalanobis(feats, idsf)
                loss_G = loss_G + lam.lambda_km * losses["G_km"]
        losses["G_total"] = loss_G
        _check_finite(losses, self.epoch, self.global_step)
        loss_G.backward()
        D.requires_grad_(True)
        self.opt_G.step()
        return losses

    # -------------------------------------------------------------------------------------------- loop
    def fit(self) -> dict[str, float]:
        cfg = self.config
        total_epochs = cfg.train.epochs + cfg.train.epochs_decay
        monitor = RunMonitor(cfg, self.run_dir, self.device) if self.ctx.is_main else None
        last: dict[str, float] = {}
        steps_done = 0
        for epoch in range(self.start_epoch, total_epochs):
            self.epoch = epoch
            self.loader.sampler.set_epoch(epoch)
            self.dataset.set_epoch(epoch)  # augmentation drawn per (seed, epoch, index), the same on any rank
            self.G.train()
            self.D.train()
            sums: dict[str, float] = {}
            n = 0
            start = time.perf_counter()
            bar = tqdm(
                self.loader,
                desc=f"epoch {epoch + 1}/{total_epochs}",
                disable=not self.ctx.is_main,
                leave=False,
                dynamic_ncols=True,
            )
            for batch in bar:
                losses = self.step(batch)
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                n += 1
                steps_done += 1
                bar.set_postfix(G=f"{float(losses['G_total']):.3f}", D=f"{float(losses['D']):.3f}")
                if cfg.train.max_steps and steps_done >= cfg.train.max_steps:
                    break
            self.sched_G.step()
            self.sched_D.step()
            metrics = self.ctx.all_reduce_mean({k: v / max(n, 1) for k, v in sums.items()})
            metrics.update(
                epoch=epoch + 1,
                step=self.global_step,
                epoch_seconds=time.perf_counter() - start,
                lr=self.opt_G.param_groups[0]["lr"],
            )
            last = metrics
            done = epoch + 1 == total_epochs or bool(cfg.train.max_steps and steps_done >= cfg.train.max_steps)
            path = None
            if monitor is not None:
                monitor.log(metrics, epoch + 1)
                if (epoch + 1) % cfg.train.sample_every == 0 or done:
                    monitor.grid(
                        self.ema.module if self.ema is not None else getattr(self.G, "module", self.G), epoch + 1
                    )
                eval_due = bool(cfg.train.eval_every) and ((epoch + 1) % cfg.train.eval_every == 0 or done)
                if (epoch + 1) % cfg.train.checkpoint_every == 0 or done or eval_due:
                    path = ckpt.save_checkpoint(
                        self.run_dir / "checkpoints" / ckpt.checkpoint_name(epoch + 1), self.state_dict(epoch + 1)
                    )
                    ckpt.prune_checkpoints(self.run_dir / "checkpoints", cfg.train.keep_checkpoints)
                if eval_due:
                    metrics.update(monitor.evaluate(path, epoch + 1, "ema" if self.ema is not None else "raw"))
                print(
                    f"epoch {epoch + 1}/{total_epochs} "
                    + " ".join(f"{k}={v:.4f}" for k, v in metrics.items() if k.startswith(("G_", "D")))
                    + f" ({metrics['epoch_seconds']:.1f} s)"
                    + (f" -> {path}" if path else ""),
                    flush=True,
                )
            self.ctx.report(metrics, path)
            if done:
                break
        if monitor is not None:
            monitor.close()
        return last


def train_func(config_dict: dict[str, Any], context: Context | None = None) -> dict[str, float]:
    """Train one model. ``config_dict`` is ``TrainConfig.to_dict()`` after :func:`prepare_run`."""
    config = TrainConfig.model_validate(config_dict)
    set_threads(config)
    context = context or LocalContext()
    trainer = Trainer(config, context)
    if config.train.amp == "auto" and context.is_main:
        print(f"train.amp=auto: {resolve_amp('auto', trainer.device)} on {trainer.device}", flush=True)
    resume = context.resume_checkpoint()
    if resume is not None:
        try:
            trainer.load_state_dict(ckpt.load_checkpoint(resume))
        finally:
            context.release_resume()
        if context.is_main:
            print(f"resumed from {resume} (epoch {trainer.start_epoch})", flush=True)
    return trainer.fit()
