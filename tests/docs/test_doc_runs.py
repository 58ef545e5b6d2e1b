# ruff: noqa: E501  (the documented commands are the keys, as written)
"""Every documented `geodino ...` command and Python snippet either runs here for real, offline, on generated data
(RUN) or is listed as CONFIG-ONLY / NOT-RUN with the reason (multi-GPU, downloads, hours-long runs).

The lists below are maintained by hand: a command or snippet added to README.md or docs/*.md that is in neither
list fails `test_every_documented_command_is_classified` (or the snippet twin) until it is classified. The
inputs are generated once per module (tests/docs/workspace.py: 320 px scenes, chips, feature rasters, vector
files and two tiny backbones trained and exported through geodino itself). Rewrites applied to every command:
`/data/...` -> `data/...` (the generated folder) and `SPEC` -> `exports/s2_vits16.pth` (the tiny S2 export).
Every CONFIG-ONLY command is still parsed and its config loaded by test_doc_commands.py.

Warnings: a run entry's `warns` lists the warnings its command (or snippet) gives as a user's run of it would, each a
regex searched in `Category: text`; the test asserts each is given and that no other is (a new warning is a defect
to fix, or a line to add here with the reason). DeprecationWarnings are left to pyproject.toml's filters.
"""

from __future__ import annotations

import re
import shlex
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from geodino.cpus import usable_cpus
from tests.docs.commands import FENCE, doc_files, documented_commands
from tests.docs.workspace import TINY_PRETRAIN, build_workspace, chdir, fresh_process, geodino


@dataclass(frozen=True)
class Run:
    """Run the command as written, plus `extra` arguments appended (why: `why`), after the commands in `after`."""

    extra: tuple[str, ...] = ()
    why: str = ""
    after: tuple[str, ...] = ()
    replace: tuple[tuple[str, str], ...] = ()  # (documented word, generated stand-in), said in `why`
    fresh: tuple[str, ...] = ()  # outputs another documented command wrote first (each refuses to overwrite)
    warns: tuple[str, ...] = ()  # the warnings it gives (a user's run, or the stand-ins said in `why`): docstring


@dataclass(frozen=True)
class ConfigOnly:
    """Parsed and config-loaded only (test_doc_commands.py), not run; `why` says why."""

    why: str


TINY = tuple(TINY_PRETRAIN)
# TINY's 32 px crops cut from the recipes' 224-480 px tiles: the scale warning is about the shrink, not the documented
# command (tests/data/test_coarse_tiles.py checks its numbers)
SHRUNK = (r"UserWarning: data source \w+: tiles of \d+ px are cut into global crops of .* resized to 32 px",)
# what a user of these documented commands sees (the file has no such part / band: said so that a typo is not silent)
NO_MASK_TOKEN = (r"UserWarning: timm's DINOv3 Eva stores no mask token: this backbone's non-zero mask_token",)
NO_BAND = r"UserWarning: 1 band \({}\) matches no band of checkpoint .*: it gets the mean kernel"
# torch's advice when a DataLoader has more worker processes than this machine's CPUs (geodino allows up to
# READERS_PER_CPU readers per CPU: they mostly wait on disks); the docs' `--workers 4` says it on fewer than 4 CPUs
FOUR_READERS = (r"UserWarning: This DataLoader will create 4 worker processes",) if usable_cpus() < 4 else ()
# a 2-step distillation's EMA at the recipes' momentum (0.99x -> 1) would export the students' init: 1 - 10/steps
MOMENTUM_2 = "schedules.momentum={start: 0.0, peak: 0.0, end: 1.0}"
MOMENTUM_WHY = "EMA momentum 0 -> 1 (the short-run value the run's warning advises)"
TINY_WHY = "a 2-block vit_tiny, small heads, crops and batch, 2 CPU steps, schedules shrunk to fit (workspace.py)"
MULTI_GPU = "needs several GPUs / nodes (DDP or FSDP2); the same config runs on one CPU in its 1-device twin"
DOWNLOAD = "downloads a public benchmark (EuroSAT, BigEarthNet, LoveDA, NEON, VHR-10); tests/eval covers each task"

CURATE = (
    "the generated archive has 4 (S2) or 8 (chips) tiles and the 2-step backbone embeds them alike: dedup can leave "
    "1; argparse keeps the last --size / --clusters given"
)
OW = ("--overwrite",)
WS_WROTE = "the workspace already wrote this output (tests/docs/workspace.py) for the commands that read it"
DOC_WROTE = "an earlier documented command (the same product with other options) already wrote this output"
ARCHIVE_RGB = "the generated archive/ is RGB (the docs' arch:vit_small runs on it take 3 bands): the RGB export"
STAC = "STAC input (documented catalogs are remote or absent): tests/embed/test_scenes.py runs ItemCollections and pystac catalogs offline"
RGB = (("scene.tif", "rgb_scene.tif"),)  # the SAT-493M model is an RGB one: an RGB scene.tif
G = "geodino "
STAC_BANDS = (
    "a STAC catalog with one band per asset (Earth Search / Planetary Computer style, remote); the stacking runs "
    "offline on generated per-band COGs in tests/embed/test_stac_bands.py"
)

COMMANDS: dict[str, Run | ConfigOnly] = {
    # --- README.md
    G + "data index /data/s2_scenes/": Run(),
    G + "data stats /data/s2_scenes/ --sensor sentinel2_l2a --out my_s2.yaml": Run(OW, WS_WROTE),
    G + "data preview --config configs/pretrain/s2_vits16.yaml --out preview.png 'data.sources=[{type: raster, paths: [/data/s2_scenes/], sensor: my_s2.yaml}]'": Run(fresh=("preview.png",)),
    G + "pretrain --config configs/pretrain/s2_vits16.yaml 'data.sources=[{type: raster, paths: [/data/s2_scenes/], sensor: my_s2.yaml}]' output_dir=runs/s2": Run(TINY, TINY_WHY, warns=SHRUNK),
    G + "pretrain -c configs/pretrain/sat_vits16.yaml trainer.devices=4 trainer.strategy=ddp": ConfigOnly(MULTI_GPU),
    G + "pretrain -c configs/pretrain/vitl16.yaml trainer.devices=8 trainer.strategy=fsdp2": ConfigOnly(MULTI_GPU),
    G + "pretrain -c configs/pretrain/vitl16.yaml trainer.strategy=fsdp2 trainer.activation_checkpointing=selective": ConfigOnly(
        "a ViT-L run for a GPU; the key runs in tests/train/test_activation_checkpointing.py and under 2-process "
        "FSDP2 in tests/train/test_distributed.py"
    ),
    G + "pretrain -c configs/pretrain/vits16_pretrain.yaml": Run(TINY, TINY_WHY, warns=SHRUNK),
    G + "pretrain -c configs/pretrain/vits16_gram.yaml": Run(TINY, TINY_WHY, ("pretrain -c configs/pretrain/vits16_pretrain.yaml",), warns=SHRUNK),
    G + "pretrain -c configs/pretrain/vits16_highres.yaml": Run((*TINY, "ssl.koleo.group_size=2", "crops.crop_sets=[{global_size: 32, local_size: 16, gram_size: 48, probability: 1.0}]"), TINY_WHY + "; KoLeo groups of 2 (the recipe's 16 need a global batch of 16); one tiny crop set (its 320 px crops take 40 s)", ("pretrain -c configs/pretrain/vits16_gram.yaml",), warns=SHRUNK),
    G + "export runs/s2/checkpoints/last.ckpt exports/s2_vits16.pth": Run(OW, WS_WROTE),
    G + "pretrain -c configs/pretrain/small_vit_tiny.yaml 'data.sources=[{type: images, paths: [/data/my_chips/], sensor: imagenet}]' trainer.max_steps=700": Run(TINY, TINY_WHY),
    G + "pretrain -c configs/pretrain/small_vit_tiny.yaml ssl.student.in_chans=6 trainer.max_steps=700 'data.sources=[{type: raster, paths: [my_scene.tif], sensor: my.yaml, tile_size: 64}]'": Run(
        (*TINY, "output_dir=runs/raster_first"),
        TINY_WHY + "; the workspace's 12-band scene and its data stats YAML stand in for the 6-band scene (own run folder)",
        ("data stats /data/s2_scenes/ --sensor sentinel2_l2a --out my_s2.yaml",),
        replace=(
            ("ssl.student.in_chans=6", "ssl.student.in_chans=12"),
            (
                "data.sources=[{type: raster, paths: [my_scene.tif], sensor: my.yaml, tile_size: 64}]",
                "data.sources=[{type: raster, paths: [scene.tif], sensor: my_s2.yaml, tile_size: 64}]",
            ),
        ),
    ),
    G + "export runs/source/checkpoints/last.ckpt exports/source.pth": Run(OW, WS_WROTE),
    G + "pretrain -c configs/pretrain/small_vit_tiny.yaml init_from=exports/source.pth head_warmup_steps=0.1 'data.sources=[{type: images, paths: [/data/my_chips/], sensor: imagenet}]' output_dir=runs/continued": Run(TINY, TINY_WHY),
    G + "pretrain --config configs/pretrain/vitl16.yaml trainer.devices=8 trainer.num_nodes=4 trainer.strategy=fsdp2 output_dir=runs/vitl16": ConfigOnly(MULTI_GPU),
    G + "info dinov3_vitl16_pretrain_sat493m-eadcf0ff.pth": Run(),
    G + "probe --config configs/eval/eurosat_knn_linear.yaml --backbone dinov3_vitl16_pretrain_sat493m-eadcf0ff.pth backbone_sensor=sat493m --out probe/eurosat": ConfigOnly(DOWNLOAD),
    G + "probe --config configs/eval/all.yaml --backbone exports/s2_vits16.pth --out probe/all": ConfigOnly(DOWNLOAD),
    G + "probe -c configs/eval/all.yaml -b exports/s2_vits16.pth --compare baseline:colour --compare 'arch:vit_small?seed=0&layerscale_init=1.0' --out probe/all_vs": ConfigOnly(DOWNLOAD),
    G + "embed scene.tif --backbone exports/s2_vits16.pth --out features.tif --tile 512 --overlap 128": Run(OW, WS_WROTE),
    G + "embed scene.vrt --backbone SPEC --out features.zarr --workers 2 --resume": Run(),
    G + "embed pca features.tif --out pca.tif --png pca.png": Run(),
    G + "embed cluster features.tif --out clusters.tif --k 8": Run(),
    G + "embed similar features.tif --out sim.tif --point 502560,4497440": Run(),
    G + "embed similar features.tif --out sim.tif --point=15.03,40.63 --point-crs EPSG:4326": Run(OW, DOC_WROTE),
    G + "embed zonal features.tif fields.gpkg --out fields_embeddings.parquet": Run(),
    G + "embed classify features.tif labels.gpkg --column landcover --out landcover.tif": Run(OW, WS_WROTE),
    G + "embed classify other_features.tif --model landcover.model.safetensors --out other_landcover.tif": Run(),
    G + "embed change before.tif after.tif --out change.tif --threshold otsu": Run(),
    G + "viz attention scene.tif --backbone SPEC --sensor sentinel2_l2a --out att/ --point 256 256": Run(),
    G + "data curate /data/s2/ --type raster --sensor sentinel2_l2a -b SPEC --size 100000 --clusters 2000 200 20 -o cur/": Run(("--size", "1", "--clusters", "1"), CURATE),
    G + "pretrain --config configs/pretrain/s2_vits16.yaml 'data.sources=[{type: raster, paths: [cur/curated.parquet], sensor: sentinel2_l2a}]'": Run(TINY, TINY_WHY, ("data curate /data/s2/ --type raster --sensor sentinel2_l2a -b SPEC --size 100000 --clusters 2000 200 20 -o cur/",), warns=SHRUNK),
    G + "embed archive/ --backbone SPEC --out feats/": Run(replace=(("SPEC", "exports/source.pth"),), why=ARCHIVE_RGB),
    G + "embed archive/ --backbone SPEC --out feats/ --resume": Run(replace=(("SPEC", "exports/source.pth"),), why=ARCHIVE_RGB, after=("embed archive/ --backbone SPEC --out feats/",)),
    G + "embed items.json --asset image --asset-bands red,green,nir --backbone SPEC --out feats/": ConfigOnly(STAC),
    G + "embed archive/ -b SPEC --out feats/ --resume --world-size '$SLURM_ARRAY_TASK_COUNT' --rank '$SLURM_ARRAY_TASK_ID'": ConfigOnly("a SLURM array ($SLURM_* set by the scheduler); tests/embed/test_scenes.py runs 2 ranks"),
    # --- docs/backbone.md
    G + "info": Run(),
    G + "info dinov3_vitl16_pretrain_sat493m-eadcf0ff.pth --image-size 512": Run(),
    G + "convert dinov3_vitl16_pretrain_sat493m-eadcf0ff.pth vitl_sat_hf --to hf": Run(),
    G + "convert vitl_sat_hf vitl_sat_timm.safetensors --to timm": Run(after=("convert dinov3_vitl16_pretrain_sat493m-eadcf0ff.pth vitl_sat_hf --to hf",), warns=NO_MASK_TOKEN),
    G + "convert dinov3_vitl16_pretrain_sat493m-eadcf0ff.pth vitl_s2.safetensors --bands B02 B03 B04 B08 --sensor sentinel2_l2a --fill mean": Run(warns=(NO_BAND.format("B08"),)),
    # --- docs/data.md
    G + "data index /data/s2/ --out footprints.geojson": Run(),
    G + "data stats /data/s2/ --out configs/sensors/my_s2.yaml --scale 0.0001 --samples 512": Run(OW, WS_WROTE),
    G + "data preview 'sources=[{type: raster, paths: [/data/s2/], sensor: configs/sensors/my_s2.yaml}]' -o preview.png": Run(
        fresh=("preview.png",),
        # as data.md; that YAML (no --sensor) names the Sentinel-2 band names' RGB bands, B04 B03 B02: no warning
        after=("data stats /data/s2/ --out configs/sensors/my_s2.yaml --scale 0.0001 --samples 512",),
    ),
    G + "data sensors": Run(),
    G + "data stack /data/s2_safe/ --bands B02 B03 B04 B08 B11 B12 --out /data/s2_vrt/": Run(),
    # --- docs/dense_probes.md
    G + "probe --config my_dense.yaml --backbone dinov3_vitl16_pretrain_sat493m.pth --out results/": ConfigOnly("NEON, tree-crown and land-cover data (downloads) and three 30-epoch dense trainings; tests/eval runs each task on tiny data"),
    G + "probe --config my_dense.yaml --backbone 'arch:vit_small?seed=0' --out results_random/": ConfigOnly("as above: real dense datasets, 30-epoch trainings"),
    # --- docs/distillation.md
    G + "distill --config configs/distill/official_vitl16_sat_to_small.yaml": ConfigOnly(
        "the official 4-student recipe on 296 GPUs under srun; tests/train/test_distill_srun.py checks the srun "
        "variables and tests/train/test_distill_subgroups.py the subgroups"
    ),
    G + "distill --config configs/distill/vitl_to_vits.yaml": ConfigOnly("trains a random ViT-L teacher's heads and distils it for 30 steps on generated tiles: ~45 min on 2 shared cores; the same loop runs in the teacher.spec=... command below"),
    G + "distill --config configs/distill/vitl_to_vits.yaml teacher.spec=weights/dinov3_vitl16_pretrain_sat493m-eadcf0ff.pth 'data.sources=[{type: raster, paths: [/data/naip/], sensor: naip, tile_size: 300}]' 'crops={global_size: 224, local_size: 96, n_local: 8}' teacher.head_warmup_steps=1000 train.global_batch_size=64 train.max_steps=20000 train.device=cuda train.precision=bf16-mixed": ConfigOnly("a GPU (cuda, bf16) and 20 000 steps with the released ViT-L weights"),
    G + "distill --config configs/distill/vitl_to_vits.yaml teacher.spec=runs/sat_vitl/export/teacher.pth": Run(
        ("data.sources=[{type: raster, paths: [data/scenes/], tile_size: 64}]", "teacher.head_warmup_steps=1",
         "students=[{name: vits, arch: vit_tiny, overrides: {depth: 2}}]", "dino.head_n_prototypes=64",
         "dino.head_hidden_dim=32", "dino.head_bottleneck_dim=16", "ibot.head_n_prototypes=64",
         "ibot.head_hidden_dim=32", "ibot.head_bottleneck_dim=16", "crops.global_size=32", "crops.local_size=16",
         "train.max_steps=2", "train.global_batch_size=2", "train.checkpoint_every_n_steps=2",
         "schedules.reference_iters=1000000", MOMENTUM_2),
        "the config's data are ../shared/data scenes (not in the repository): generated RGB scenes instead; a tiny "
        "student and heads, 2 steps (the teacher is the tiny RGB export); " + MOMENTUM_WHY,
    ),
    G + "distill -c small_vit_tiny_half teacher.spec=runs/small_vit_tiny/export/teacher.pth 'data.sources=[{type: images, paths: [/data/my_chips/], sensor: imagenet}]'": Run(
        ("train.max_steps=2", "train.global_batch_size=2", "train.checkpoint_every_n_steps=2",
         "crops.global_size=32", "crops.local_size=16", MOMENTUM_2,
         "students=[{name: vit_tiny_half, arch: vit_tiny, overrides: {embed_dim: 96, num_heads: 3, depth: 2, n_storage_tokens: 0}}]"),
        "the docs workspace's small_vit_tiny run (runs/source, 2 steps, with its heads) is the teacher; a 2-block "
        "student, 2 steps; " + MOMENTUM_WHY,
        replace=(("teacher.spec=runs/small_vit_tiny/export/teacher.pth", "teacher.spec=runs/source/export/teacher.pth"),),
    ),
    # --- docs/embed.md
    G + "embed scene.tif --backbone dinov3_vits16_sat.pth --out scene_emb.tif": Run(OW, WS_WROTE),
    G + "embed mosaic.vrt --backbone 'arch:vit_small?seed=0' --out mosaic_emb.zarr --dtype float16": Run(),
    G + "embed pca scene_emb.tif --out scene_pca.tif --png scene_pca.png": Run(),
    G + "embed cluster scene_emb.tif --out scene_classes.tif --k 12 --png scene_classes.png": Run(),
    G + "embed similar scene_emb.tif --out sim.tif --point 502560,4497440": Run(OW, DOC_WROTE),
    G + "embed similar scene_emb.tif --out sim.tif --point=15.03,40.63 --point-crs EPSG:4326": Run(OW, DOC_WROTE),
    G + "embed similar scene_emb.tif --out sim.tif --polygon examples.gpkg": Run(OW, DOC_WROTE),
    G + "embed zonal scene_emb.tif fields.gpkg --out fields_emb.parquet": Run(),
    G + "embed classify scene_emb.tif labels.gpkg --column landcover --out landcover.tif": Run(OW, WS_WROTE),
    G + "embed change before_emb.tif after_emb.tif --out change.tif --threshold otsu": Run(OW, DOC_WROTE),
    G + "embed classify scene_emb.tif labels.gpkg --column landcover --out lc.tif --method knn --neighbors 5": Run(),
    G + "embed classify scene_emb.tif labels.gpkg --column landcover --out lc.tif --test checks.gpkg": Run(OW, DOC_WROTE),
    G + "embed classify other_emb.tif --model landcover.model.safetensors --out other_landcover.tif": Run(OW, DOC_WROTE),
    G + "embed change before_emb.tif after_emb.tif --out change.tif": Run(OW, DOC_WROTE),
    G + "embed change before_emb.tif after_emb.tif --out change.tif --threshold 0.3 --mask m.tif": Run(OW, DOC_WROTE),
    G + "embed change before_emb.tif after_emb.tif --out change.tif --resample": Run(OW, DOC_WROTE),
    G + "embed archive/ --backbone dinov3_vits16_sat.pth --out feats/": Run(OW, "README's archive run already wrote feats/; " + ARCHIVE_RGB, replace=(("dinov3_vits16_sat.pth", "exports/source.pth"),)),
    G + "embed 'archive/2024-*/*.tif' --backbone arch:vit_small --out feats/": Run(OW, "an earlier archive run already wrote feats/"),
    G + "embed scenes.txt --backbone arch:vit_small --out feats/landsat.vrt": Run(OW, "an earlier archive run already wrote the scenes of feats/"),
    G + "embed archive/ --backbone arch:vit_small --out feats/ --resume": Run(),
    G + "embed items.json --asset visual --backbone arch:vit_small --out feats/": ConfigOnly(STAC),
    G + "embed s2_items.json --asset red,green,blue,nir --backbone SPEC --out feats/": ConfigOnly(STAC_BANDS),
    G + "embed s2_items.json --asset red,green,blue,nir --backbone S2_CKPT --out feats/": ConfigOnly(STAC_BANDS),
    G + "embed catalog.json --asset image --asset-bands red,green,nir --backbone S2_CKPT --out feats/": ConfigOnly(STAC),
    G + "embed https://example.org/stac/items.json --asset image --asset-bands 4,3,2 -b arch:vit_small --out feats/": ConfigOnly("a remote STAC URL (network); remote hrefs -> GDAL paths are tested in tests/embed/test_scenes.py"),
    # --- docs/inspect_and_curate.md
    G + "viz attention scene.tif --backbone dinov3_vitl16_pretrain_sat493m.pth --out att/": Run(OW, "the SAT-493M stand-in is RGB: an RGB scene.tif; README's viz attention run already wrote att/", replace=RGB),
    G + "viz attention chip.jpg -b exports/teacher.pth -o att/ --layer 5 --heads 0 2 --mass 0.6 --point 32 32": Run(OW, DOC_WROTE),
    G + "viz attention s2.tif -b s2_vits16.pth --sensor sentinel2_l2a -o att/ --window 0 0 1024 1024": Run(("--window", "0", "0", "512", "512", *OW), "the generated s2.tif has 512 px: the window is cut to it; " + DOC_WROTE),
    G + "viz attention s2.tif -b SPEC --sensor sentinel2_l2a -o att/ --point 500100 4499900 --point-crs": Run(OW, DOC_WROTE),
    G + "data curate /data/chips/ -b exports/teacher.pth --size 100000 -o curated/": Run(("--size", "1", "--clusters", "1"), CURATE, fresh=("curated",)),
    G + "data curate /data/s2/ --type raster --sensor sentinel2_l2a --tile-size 256 -b s2_vits16.pth --size 200000 --clusters 20000 2000 200 --dedup 0.95 --workers 4 -o curated/": Run(("--size", "1", "--clusters", "1"), CURATE, fresh=("curated",), warns=FOUR_READERS),
    G + "data curate --config configs/pretrain/small_vit_tiny.yaml -b exports/teacher.pth --size 1000 -o curated/": Run(("--size", "1", "--clusters", "1"), CURATE, fresh=("curated",)),
    G + "pretrain --config curated/config.yaml": Run(TINY, TINY_WHY, ("data curate --config configs/pretrain/small_vit_tiny.yaml -b exports/teacher.pth --size 1000 -o curated/",)),
    # --- docs/integrations.md
    G + "convert exports/backbone.pth timm_backbone --to timm": Run(warns=NO_MASK_TOKEN),
    G + "convert exports/backbone.pth hf_backbone --to hf": Run(),
    # --- docs/pretraining.md
    G + "demo --out demo_out": ConfigOnly("minutes on a CPU; tests/test_demo.py runs the same pipeline with --size tiny"),
    G + "pretrain -c configs/pretrain/demo.yaml ssl.student.in_chans=4 'data.sources=[{type: raster, paths: [demo_out/data/scene], sensor: demo_out/data/sensor.yaml, tile_size: 64}]'": Run(TINY, TINY_WHY),
    G + "pretrain -c configs/pretrain/demo.yaml trainer.max_steps=20 output_dir=runs/smoke 'data.sources=[{type: raster, paths: [/data/scenes/], sensor: maxar, tile_size: 64}]'": Run(TINY, TINY_WHY),
    G + "pretrain -c configs/pretrain/demo.yaml 'trainer.loggers=[csv, wandb]' 'trainer.logger_options={wandb: {project: geo}}'": ConfigOnly("needs wandb (geodino[tracking]) and an account; the missing-package error is tested in tests/train/test_loggers.py"),
    G + "pretrain -c configs/pretrain/demo.yaml 'trainer.loggers=[csv, mlflow]'": ConfigOnly("needs mlflow (geodino[tracking]); the missing-package error is tested in tests/train/test_loggers.py"),
    G + "pretrain -c configs/pretrain/sat_vits16.yaml trainer.devices=1 trainer.strategy=auto batch_size=128": Run(TINY, TINY_WHY, warns=SHRUNK),
    G + "pretrain -c configs/pretrain/sat_vits16.yaml trainer.devices=4 trainer.strategy=ddp": ConfigOnly(MULTI_GPU),
    G + "pretrain -c configs/pretrain/vitl16.yaml trainer.devices=8 trainer.num_nodes=1": ConfigOnly(MULTI_GPU),
    G + "pretrain --config configs/pretrain/vitl16.yaml trainer.devices=8 trainer.num_nodes=4 output_dir=runs/vitl16": ConfigOnly(MULTI_GPU),
    G + "pretrain -c configs/pretrain/sat_vits16.yaml init_from=weights/dinov3_vits16_pretrain_lvd1689m-08c60483.pth head_warmup_steps=1000 ssl.schedules.lr.peak=1e-4 ssl.schedules.teacher_temp.start=0.07": ConfigOnly("the released ViT-S/16 LVD-1689M weights (a download) and a 1000-step head warm-up; init_from an export runs in README's `init_from=exports/source.pth` command"),
    G + "export runs/NAME/checkpoints/last.ckpt exports/name.pth": Run(),
    G + "export runs/NAME/checkpoints/last.ckpt exports/name_student.pth --which student": Run(),
    G + "probe -c configs/eval/eurosat_knn_linear.yaml -b runs/small_vit_tiny/export/teacher.pth --compare baseline:colour tasks.eurosat_knn_linear.data.name=image_folder tasks.eurosat_knn_linear.data.root=/data/my_chips/ 'tasks.eurosat_knn_linear.data.bands=[]' tasks.eurosat_knn_linear.features.image_size=0": ConfigOnly("reads the export of a README first run and the user's own chips; the same class-folder keys run on generated data as runs/mine"),
    # --- docs/probing.md
    G + "probe --config configs/eval/eurosat_knn_linear.yaml --backbone checkpoints/dinov3_vits16_pretrain_lvd1689m.pth --out runs/eurosat_vits": ConfigOnly(DOWNLOAD),
    G + "probe -c configs/eval/eurosat_knn_linear.yaml -b baseline:colour --out runs/eurosat_colour": ConfigOnly(DOWNLOAD),
    G + "probe -c configs/eval/eurosat_knn_linear.yaml -b exports/s2_vits16.pth --compare baseline:colour --seeds 0,1,2 --out runs/eurosat_seeds": ConfigOnly(DOWNLOAD),
    G + "probe -c configs/eval/eurosat_knn_linear.yaml -b exports/s2_vits16.pth --compare baseline:colour --compare 'arch:vit_small?seed=0&layerscale_init=1.0' --out runs/eurosat_vs": ConfigOnly(DOWNLOAD),
    G + "probe -c configs/eval/all.yaml -b 'baseline:colour?patch_size=16' tasks.canopy_neon_dpt.head=linear tasks.canopy_neon_dpt.layers=last 'only=[eurosat_knn_linear,loveda_linear,canopy_neon_dpt,vhr10_fasterrcnn]' tasks.eurosat_knn_linear.backbone_sensor=sentinel2_l2a 'tasks.eurosat_knn_linear.backbone_bands=[red,green,blue]' --out runs/all_colour": ConfigOnly(DOWNLOAD),
    G + "probe -c configs/eval/eurosat_knn_linear.yaml -b arch:vit_small --out runs/mine tasks.eurosat_knn_linear.data.name=image_folder tasks.eurosat_knn_linear.data.root=/data/my_scenes 'tasks.eurosat_knn_linear.data.bands=[]'": Run(
        warns=(r"UserWarning: kNN: k=10, 20, 100, 200 are more than the 4 training images of image_folder",),
        why="the stand-in class folder has 4 training images, fewer than the recipe's k values (tests/eval checks the message)",
    ),
    G + "probe -c configs/eval/all.yaml -b SPEC --out runs/all": ConfigOnly(DOWNLOAD),
    G + "probe -c configs/eval/all.yaml -b SPEC --out runs/two 'only=[eurosat_knn_linear,vhr10_fasterrcnn]'": ConfigOnly(DOWNLOAD),
    G + "probe -c configs/eval/eurosat_knn_linear.yaml -b 'arch:vit_small?seed=0' --out runs/sample_random tasks.eurosat_knn_linear.data.name=image_folder tasks.eurosat_knn_linear.data.root=../shared/data/eurosat_sample 'tasks.eurosat_knn_linear.data.bands=[]' tasks.eurosat_knn_linear.logreg.enabled=true": ConfigOnly("reads ../shared/data/eurosat_sample (not in the repository); the same class-folder command runs on generated data as runs/mine"),
    G + "pretrain -c small_vit_tiny ssl.student.arch=from_init head_warmup_steps=0.1 init_from=weights/dinov3_vitl16_pretrain_sat493m-eadcf0ff.pth 'data.sources=[{type: images, paths: [chips/]}]'": ConfigOnly(
        "continues from the released ViT-L SAT-493M weights (a download); tests/train/test_pretrain_cli.py runs "
        "ssl.student.arch=from_init from a plain state_dict and from an export with heads"
    ),
    G + "embed images chips/ --backbone exports/s2_vits16.pth --out chips.parquet --pool cls+mean": Run(replace=(("chips/", "data/chips/"), ("exports/s2_vits16.pth", "exports/source.pth")), why="the generated chips are RGB: the RGB export"),
    # --- docs/embed.md: embed images
    G + "embed images /data/chips/ --backbone dinov3_vits16_sat.pth --out chips_emb.parquet": Run(replace=(("dinov3_vits16_sat.pth", "exports/source.pth"),), why="the generated chips are RGB: the RGB export"),
    G + "embed images /data/chips/ --backbone dinov3_vits16_sat.pth --out chips_224.parquet --pool cls+mean --image-size 224 --l2 true": Run(replace=(("dinov3_vits16_sat.pth", "exports/source.pth"),), why="the generated chips are RGB: the RGB export"),
}  # fmt: skip


# ---------------------------------------------------------------- Python snippets
@dataclass(frozen=True)
class Snippet:
    """Run a ```python block (`prelude` defines the names the doc leaves to the reader) or say why not (`skip`)."""

    prelude: str = ""
    after: tuple[str, ...] = ()
    skip: str = ""
    replace: tuple[tuple[str, str], ...] = ()
    fresh: tuple[str, ...] = ()  # outputs removed first (the API refuses to overwrite them)
    warns: tuple[str, ...] = ()  # as Run.warns


SNIPPETS: dict[tuple[str, int], Snippet] = {
    ("README.md", 0): Snippet(
        replace=(*RGB, ("chip.tif", "rgb_scene.tif")), fresh=("features.tif", "pca.tif", "pca.png")
    ),
    ("README.md", 1): Snippet(
        skip="700 steps of the short-run recipe (an hour on a CPU), then 1000 distillation steps; "
        "tests/train/test_api.py runs geodino.pretrain on tiny rasters and geodino.distill from its export"
    ),
    ("backbone.md", 0): Snippet(skip="loads the released ViT-S/16 weights (a download) and builds ViT-7B on meta"),
    ("data.md", 1): Snippet(  # the reader's 6-band GeoTIFF, made here, then the cube the doc writes from it
        prelude=(
            "import numpy as np, rasterio\nfrom rasterio.transform import from_origin\n"
            "with rasterio.open('L7_ETMs.tif', 'w', driver='GTiff', width=64, height=64, count=6, dtype='uint8', "
            "crs='EPSG:32633', transform=from_origin(500000, 4000000, 30, 30)) as d:\n"
            "    d.write(np.random.default_rng(0).integers(0, 255, (6, 64, 64), dtype=np.uint8))\n"
        ),
        fresh=("l7.zarr",),
    ),
    ("data.md", 0): Snippet(skip="a fragment inside a training loop (rank, world_size, resume_step from the trainer)"),
    ("dense_probes.md", 0): Snippet(skip="NEON / tree-crown / land-cover files (downloads)"),
    ("distillation.md", 0): Snippet(
        skip="the released ViT-L (a download), then ../shared/data scenes; tests/train/test_api.py runs "
        "geodino.distill end to end and the same loop runs as a documented command"
    ),
    ("embed.md", 0): Snippet(
        replace=RGB, fresh=("scene_emb.tif", "scene_pca.tif", "scene_pca.png", "fields_emb.parquet", "fields_emb.png")
    ),
    ("embed.md", 1): Snippet(after=("embed archive/ --backbone arch:vit_small --out feats/ --resume",)),
    ("embed.md", 2): Snippet(
        replace=(("/data/chips/", "data/chips/"), ("dinov3_vits16_sat.pth", "exports/source.pth")),
        fresh=("chips_py.parquet",),
    ),
    ("inspect_and_curate.md", 0): Snippet(fresh=("att",)),
    ("integrations.md", 0): Snippet("import torch\ndn = torch.full((1, 4, 64, 64), 1200.0)  # a DN batch\n"),
    ("integrations.md", 1): Snippet(after=("convert exports/backbone.pth timm_backbone --to timm",)),
    ("integrations.md", 2): Snippet(after=("convert exports/backbone.pth timm_backbone --to timm",)),
    ("integrations.md", 3): Snippet(  # swir16: the doc's 5th band, which the 4-band export lacks
        "import torch\nimages = torch.zeros(1, 5, 64, 64)\n", warns=(NO_BAND.format("swir16"),)
    ),
    ("integrations.md", 4): Snippet(after=("convert exports/backbone.pth hf_backbone --to hf",)),
    ("pretraining.md", 0): Snippet(
        skip="700-2000 steps of the short-run and S2 recipes (an hour or more on a CPU); tests/train/test_api.py runs "
        "geodino.pretrain on tiny rasters, with and without init_from, and checks the config it builds"
    ),
    ("pretraining.md", 1): Snippet(
        skip="1000 steps of the ViT-S/16 recipe on data/sat_archive (hours on a CPU); its config line loads in "
        "tests/train/test_pretrain_cli.py (the schedules shrink to the 1000 steps)"
    ),
    ("pretraining.md", 2): Snippet(),  # reads the STAC item of the workspace's own export
    ("probing.md", 0): Snippet(skip="downloads EuroSAT"),
    ("probing.md", 1): Snippet(
        skip="reads /data/my_scenes, the reader's own folder (the timm spec loads random weights)"
    ),
    ("recipe.md", 0): Snippet(skip="a fragment of a training loop (my_recipe.yaml, loader are the reader's)"),
}


def documented_snippets() -> dict[tuple[str, int], str]:
    out = {}
    for path in doc_files():
        blocks = [m.group(0) for m in FENCE.finditer(path.read_text())]
        code = [re.sub(r"^```python\n|```$", "", b) for b in blocks if b.startswith("```python\n")]
        for i, text in enumerate(code):
            out[(path.name, i)] = text
    return out


SNIPPET_TEXT = documented_snippets()
UNIQUE = list(dict.fromkeys(c for _, c in documented_commands()))


def test_every_documented_command_is_classified() -> None:
    missing = [c for c in UNIQUE if c not in COMMANDS]
    stale = [c for c in COMMANDS if c not in UNIQUE]
    assert not missing, "classify these documented commands as Run or ConfigOnly in COMMANDS:\n" + "\n".join(missing)
    assert not stale, "these COMMANDS entries are no longer in the docs:\n" + "\n".join(stale)
    runs = sum(isinstance(v, Run) for v in COMMANDS.values())
    assert runs >= 60, f"only {runs} documented commands run"


def test_every_python_snippet_is_classified() -> None:
    assert set(SNIPPET_TEXT) == set(SNIPPETS), {
        "unclassified": sorted(set(SNIPPET_TEXT) - set(SNIPPETS)),
        "stale": sorted(set(SNIPPETS) - set(SNIPPET_TEXT)),
    }


@dataclass
class Workspace:
    root: object
    done: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workspace:
    root = tmp_path_factory.mktemp("docs_run")
    build_workspace(root)
    return Workspace(root)


def rewrite(command: str, replace=()) -> list[str]:
    """The argv a documented command runs with here: /data/... -> data/..., SPEC -> the tiny S2 export."""
    words = [re.sub(r"(?<![\w/])/data/", "data/", w) for w in shlex.split(command)[1:]]
    words = [dict(replace).get(w, w) for w in words]
    return ["exports/s2_vits16.pth" if w == "SPEC" else w for w in words]


def remove(paths) -> None:
    for p in map(Path, paths):
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def check_warnings(what: str, seen: list[warnings.WarningMessage], expected: tuple[str, ...]) -> None:
    """Each `expected` warning was given and no other (DeprecationWarnings are passed on to pyproject's filters)."""
    texts = []
    for w in seen:
        if issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning)):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        else:
            texts.append(f"{w.category.__name__}: {w.message}")
    texts = list(dict.fromkeys(texts))
    missing = [p for p in expected if not any(re.search(p, t) for t in texts)]
    other = [t for t in texts if not any(re.search(p, t) for p in expected)]
    listed = "fix the cause, or add it to the entry's `warns` with the reason"
    assert not other, f"{what} gave warnings its entry's `warns` does not list ({listed}):\n" + "\n".join(other)
    assert not missing, f"{what} no longer gives these warnings of its `warns` (drop them):\n" + "\n".join(missing)


def run_command(ws: Workspace, command: str) -> str:
    """Run one documented command (and first the commands it needs) in the workspace; return its output."""
    if command in ws.done:
        return ws.done[command]
    entry = COMMANDS[command]
    assert isinstance(entry, Run), f"{command} is not a Run entry"
    for pre in entry.after:
        run_command(ws, G + pre)
    argv = rewrite(command, entry.replace)
    with chdir(ws.root), warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        remove(entry.fresh)
        rc, out, _ = geodino(*argv, *entry.extra)
    assert rc == 0, f"`{command}` exited {rc}:\n{out[-3000:]}"
    check_warnings(f"`{command}`", seen, entry.warns)
    ws.done[command] = out
    return out


RUNS = [c for c in UNIQUE if isinstance(COMMANDS.get(c), Run)]


@pytest.mark.parametrize("command", RUNS, ids=[c[8:60] for c in RUNS])
def test_documented_command_runs(command: str, ws: Workspace, monkeypatch) -> None:
    run_command(ws, command)


RUN_SNIPPETS = [k for k, v in SNIPPETS.items() if not v.skip and k in SNIPPET_TEXT]


@pytest.mark.parametrize("key", RUN_SNIPPETS, ids=[f"{f}:{i}" for f, i in RUN_SNIPPETS])
def test_documented_snippet_runs(key, ws: Workspace) -> None:
    entry = SNIPPETS[key]
    for pre in entry.after:
        run_command(ws, G + pre)
    text = SNIPPET_TEXT[key]
    for old, new in entry.replace:
        text = text.replace(f'"{old}"', f'"{new}"')
    with chdir(ws.root), warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        remove(entry.fresh)
        fresh_process()
        exec(compile(entry.prelude + text, f"{key[0]}[python {key[1]}]", "exec"), {})
    check_warnings(f"{key[0]}'s python block {key[1]}", seen, entry.warns)
