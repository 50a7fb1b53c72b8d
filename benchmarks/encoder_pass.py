"""The feature losses' cost: the frozen encoder's forward + backward to its input, as built (batch norms
folded, channels_last) against the same network unfolded in NCHW. Variants alternate; prints medians and
the ratio. The encoder sees 224 px whatever the image size, so --size changes only the resize.

    .venv/bin/python benchmarks/encoder_pass.py --threads 1 --batch 2 --size 128 --reps 8
"""

from __future__ import annotations

import argparse
import statistics
import time

import timm
import torch

from clustergan.encoders import build_encoder
from clustergan.encoders import efficientnet as effnet


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=2, help="images per pass (2 = the two fakes of a batch-1 step)")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--reps", type=int, default=8)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    enc = build_encoder("efficientnet_lite0")
    sd, _ = effnet.lite0_state_dict()
    plain = timm.create_model(effnet.LITE0_TIMM_NAME, pretrained=False, num_classes=0).eval()
    plain.load_state_dict({k: v for k, v in sd.items() if not k.startswith("classifier.")})
    plain.requires_grad_(False)
    images = torch.rand(args.batch, 3, args.size, args.size) * 2 - 1
    nets = {"unfolded NCHW": plain, "as built": enc.net}

    def one(net) -> float:
        x = images.clone().requires_grad_(True)
        start = time.perf_counter()
        net(enc.preprocess(x)).abs().mean().backward()
        return time.perf_counter() - start

    for net in nets.values():
        one(net), one(net)  # warm-up
    times = {name: [] for name in nets}
    for _ in range(args.reps):
        for name, net in nets.items():
            times[name].append(one(net))
    base = statistics.median(times["unfolded NCHW"])
    print(f"encoder fwd+bwd, {args.batch} x {args.size} px -> 224, {args.threads} thread(s), {args.reps} reps")
    for name, ts in times.items():
        print(f"{name:14s} median {statistics.median(ts):.4f} s  ratio {statistics.median(ts) / base:.3f}")


if __name__ == "__main__":
    main()
