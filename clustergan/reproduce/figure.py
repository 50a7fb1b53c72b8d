"""A figure like the paper's Figure 2: the same test inputs through pix2pix, MSGAN and clustergan, the
last once per cluster index (the control the method adds)."""

from __future__ import annotations

from pathlib import Path

import torch

INPUTS = (0, 13, 47, 88)  # fixed test inputs (indices into the sorted test split), spread over the set
MSGAN_SAMPLES = 3
# clustergan rows drawn once per cluster index, and their column titles' prefix
CLUSTER_COLUMNS = {"clustergan": "ours ", "clustergan_ms0.1": "ours MS0.1 "}


def _images(model, sources: torch.Tensor, cluster: int | None, seed: int) -> torch.Tensor:
    ids = torch.full((sources.shape[0],), cluster, dtype=torch.long) if cluster is not None else None
    return model.generate(sources, ids, torch.Generator().manual_seed(seed))


def write_figure(study_dir: Path, rows: dict, path: Path) -> Path | None:
    """Seed-0 models of pix2pix, MSGAN and clustergan (and clustergan at lambda_MS 0.1; the rows present) -> a
    PNG grid at ``path``.

    When the seed-0 runs' results came from the ledger (no checkpoints on this machine), the figure
    already at ``path`` (drawn by the machine that trained them) is kept and returned."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from clustergan.data import load_sources
    from clustergan.train.sampling import load_generator

    models = {}
    for key in ("pix2pix", "msgan", *CLUSTER_COLUMNS):
        run = study_dir / key / "seed0"
        if key in rows and 0 in rows[key]["seeds"]:
            if not (run / "checkpoints").is_dir():
                return path if path.is_file() else None
            models[key] = load_generator(run)
    if not models:
        return None
    cfg = next(iter(models.values())).config
    sources, _ = load_sources(cfg.data.root, "test", cfg.data.direction, cfg.data.size)
    picks = [i for i in INPUTS if i < len(sources)]
    if len(picks) < min(len(INPUTS), len(sources)):  # a small test split: spread the picks over it
        n = min(len(INPUTS), len(sources))
        picks = sorted({round(j * (len(sources) - 1) / max(n - 1, 1)) for j in range(n)})
    sources = sources[picks]
    columns: list[tuple[str, torch.Tensor]] = [("input", sources)]
    if "pix2pix" in models:
        columns.append(("pix2pix", _images(models["pix2pix"], sources, None, 0)))
    if "msgan" in models:
        columns += [(f"MSGAN z{j + 1}", _images(models["msgan"], sources, None, j)) for j in range(MSGAN_SAMPLES)]
    for key, prefix in CLUSTER_COLUMNS.items():
        if key in models:
            model = models[key]
            columns += [(f"{prefix}i={c}", _images(model, sources, c, 0)) for c in range(model.k)]
    n_rows, n_cols = len(picks), len(columns)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.1 * n_cols, 1.2 * n_rows + 0.3), squeeze=False)
    for c, (title, images) in enumerate(columns):
        for r in range(n_rows):
            ax = axes[r][c]
            ax.imshow(((images[r].clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=7)
    fig.tight_layout(pad=0.2)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    from PIL import Image

    with Image.open(path) as im:  # a 256-colour palette keeps the committed figure under 1 MB
        paletted = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    paletted.save(path, optimize=True)
    plt.close(fig)
    return path
