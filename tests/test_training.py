"""Training-side model surgery: growing a trained model by more stages."""
import numpy as np
import torch

import aecodec
from aecodec.codec import Codec
from aecodec.model.vqvae import ModelConfig, VQVAE


def _photo_folder(tmp_path, seed: int):
    from PIL import Image
    data = tmp_path / "photos"
    data.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(data / f"{i}.png")
    return data


def _tiny_run_config(data, transform: str, **overrides):
    """A run of a few steps on 32² crops of a tiny model: what the loop does, fast."""
    from aecodec.train.config import TrainConfig
    return TrainConfig.from_dict({"model": {"transform": transform, "hidden": 16, "stages": 2},
                                  "data_dirs": [str(data)], "val_every_nth": 4, "steps": 4,
                                  "batch_size": 2, "crop": 32, "pretrain_steps": 2,
                                  "checkpoint_every": 100, "validate_every": 100, **overrides})


def _model(stages: int) -> VQVAE:
    torch.manual_seed(0)
    return VQVAE(ModelConfig(hidden=16, stages=stages))


def test_growing_keeps_trained_stages_and_transforms():
    small = _model(3)
    with torch.no_grad():
        small.quantizer.codebooks.normal_()
        small.decoder.blocks.gains.uniform_(0.5, 1.5)
    big = _model(5)
    assert big.load_with_fewer_stages(small.state_dict()) == 3
    assert torch.equal(big.quantizer.codebooks[:3], small.quantizer.codebooks)
    assert torch.equal(big.encoder.analysis.weight, small.encoder.analysis.weight)
    g_small, g_big = small.decoder.blocks.gains, big.decoder.blocks.gains
    assert torch.equal(g_big[:3], g_small[:3])
    assert torch.equal(g_big[5], g_small[3])                       # the unquantized level
    assert torch.allclose(g_big[3], g_small[2] + (g_small[3] - g_small[2]) / 3)


def test_new_stages_learn_the_residual_the_old_ones_leave():
    model = _model(4)
    x = torch.rand(4, 3, 64, 64)
    model.eval()
    y = model.encoder(x)
    model.quantizer.init_codebooks(y, start=0)
    before = model.quantizer.codebooks[:2].clone()
    model.quantizer.init_codebooks(y, start=2)
    assert torch.equal(model.quantizer.codebooks[:2], before)
    q = model.quantizer
    q.search_scale = 1e-6                         # plain nearest-codeword search
    err = [(q.dequantize(q.quantize(y, n)) - y).pow(2).mean() for n in (2, 4)]
    assert err[1] < 0.9 * err[0]


def test_fewer_stages_only():
    try:
        _model(2).load_with_fewer_stages(_model(3).state_dict())
    except ValueError as exc:
        assert "3 stages" in str(exc)
    else:
        raise AssertionError("loading more stages than the model has must fail")


def test_public_qualities_match_the_shipped_model():
    assert aecodec.QUALITIES == Codec(device="cpu").qualities
    assert aecodec.DEFAULT_QUALITY in aecodec.QUALITIES


def _ddp_rank(rank: int, world: int, port: int, config_path: str, run_dir: str, out_dir: str):
    import os
    from pathlib import Path
    import torch.distributed as dist
    from aecodec.train.config import TrainConfig
    from aecodec.train.loop import Trainer
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    trainer = Trainer(TrainConfig.load(config_path), Path(run_dir))
    trainer.train(max_steps=3)
    torch.save(trainer.model.state_dict(), Path(out_dir) / f"rank{rank}.pt")
    dist.destroy_process_group()


def test_data_parallel_ranks_stay_identical(tmp_path):
    """Two gloo ranks on the CPU: after data-dependent initialisation and a few steps,
    every parameter and codebook must be the same on both (else DDP silently drifts)."""
    import json
    import socket
    import numpy as np
    import torch.multiprocessing as mp
    from PIL import Image
    data = tmp_path / "photos"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        base = np.linspace(0, 255, 64)[None, :, None] * rng.uniform(0.3, 1, 3)
        Image.fromarray((base + rng.normal(0, 20, (64, 64, 3))).clip(0, 255).astype(np.uint8)).save(
            data / f"{i}.png")
    config = {"model": {"hidden": 16, "stages": 3}, "data_dirs": [str(data)], "val_every_nth": 6,
              "steps": 3, "batch_size": 2, "crop": 32, "checkpoint_every": 100, "validate_every": 100}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_rank, args=(2, port, str(tmp_path / "config.json"), str(tmp_path / "run"), str(tmp_path)),
             nprocs=2, join=True)
    a, b = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different


def test_learning_rate_ramps_after_a_restart_and_follows_the_clock_when_budgeted():
    from types import SimpleNamespace
    from aecodec.train.config import TrainConfig
    from aecodec.train.loop import Trainer
    config = TrainConfig(lr=1.0, warmup_steps=4, steps=1000, decay_steps=500, minutes=10.0,
                         lr_final_fraction=0.0)
    t = SimpleNamespace(config=config, warmup_end=14, elapsed=0.0)    # restarted at step 10
    assert [Trainer.lr_at(t, s) for s in (10, 11, 12, 13, 14)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    t.elapsed = 4 * 60                  # before the decay share (last half) of the 10 minutes
    assert Trainer.lr_at(t, 900) == 1.0  # steps do not matter in a time-budgeted run
    t.elapsed = 7.5 * 60                # half-way through the decay
    assert abs(Trainer.lr_at(t, 20) - 0.5) < 1e-9
    t.elapsed = 10 * 60
    assert abs(Trainer.lr_at(t, 20)) < 1e-9


def test_v2_transforms_train_and_resume_from_the_committed_snapshot(tmp_path):
    """A run of each v2 transform, then a fresh machine (no checkpoint.pt) continues
    from resume.pt at the same step."""
    from aecodec.train.loop import Trainer, write_resume
    data = _photo_folder(tmp_path, seed=1)
    for transform in ("lite", "deep", "grown"):
        run = tmp_path / transform
        config = _tiny_run_config(data, transform)
        trainer = Trainer(config, run)
        trainer.train(max_steps=3)
        assert trainer.codebooks_ready and trainer.step == 3
        write_resume(run)
        (run / "checkpoint.pt").unlink()
        again = Trainer(config, run)
        assert again.step == 3 and again.codebooks_ready
        for key, value in trainer.model.state_dict().items():
            assert torch.equal(value, again.model.state_dict()[key]), key
        again.train()
        assert again.step == 4
        record = again.validate()
        assert {"unquantized", "q1", "q2"} <= set(record)
        assert record["unquantized"]["psnr"] > 0


def test_bf16_only_where_the_cpu_has_it(tmp_path):
    """An AVX2-only CPU emulates bf16 at 6-9x the cost of fp32 (training log, Part 7)."""
    from aecodec.train.loop import cpu_has_native_bf16
    avx2 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n"
    amx = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
    (tmp_path / "avx2").write_text(avx2)
    (tmp_path / "amx").write_text(amx)
    assert not cpu_has_native_bf16(str(tmp_path / "avx2"))
    assert cpu_has_native_bf16(str(tmp_path / "amx"))
    assert not cpu_has_native_bf16(str(tmp_path / "missing"))


def test_phase_bias_follows_the_latent_grid_and_the_level():
    from aecodec.model.transforms import PhaseBias
    phase = PhaseBias(levels=2, period=4)
    with torch.no_grad():
        phase.phase_bias[1, :, 0, 3] = 1.0
    x = torch.zeros(1, 3, 8, 12)
    assert torch.equal(phase(x, 0), x)
    out = phase(x, 1)
    expected = torch.zeros(8, 12)
    expected[0::4, 3::4] = 1.0
    for c in range(3):
        assert torch.equal(out[0, c], expected)


def test_a_checkpoint_from_before_the_phase_bias_resumes_unchanged(tmp_path):
    """Runs started before the phase bias existed continue: the bias starts at zero, so
    the model computes what it did, and Adam restarts with a warm-up."""
    from aecodec.train.loop import Trainer
    data = _photo_folder(tmp_path, seed=2)
    config = _tiny_run_config(data, "lite", steps=10, warmup_steps=5)
    run = tmp_path / "run"
    trainer = Trainer(config, run)
    trainer.train(max_steps=3)
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    del state["model"]["decoder.phase.phase_bias"]
    torch.save(state, run / "checkpoint.pt")
    again = Trainer(config, run)
    assert again.step == 3 and again.warmup_end == 3 + 5
    assert not again.model.decoder.phase.phase_bias.any()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        trainer.model.decoder.phase.phase_bias.zero_()      # what the old model had
        assert torch.equal(again.model.eval()(x, None)["x_hat"], trainer.model.eval()(x, None)["x_hat"])


def test_export_from_the_committed_snapshot_alone(tmp_path):
    """A fresh clone has resume.pt but no checkpoint.pt: export still works, and ships
    the weights the run had."""
    from aecodec.train.export import export
    from aecodec.train.loop import Trainer, write_resume
    from aecodec.weights import load_weights
    data = _photo_folder(tmp_path, seed=3)
    config = _tiny_run_config(data, "lite")
    run = tmp_path / "run"
    trainer = Trainer(config, run)
    trainer.train()
    write_resume(run)
    (run / "checkpoint.pt").unlink()
    export(run, tmp_path / "weights", max_images=2)
    shipped = load_weights(tmp_path / "weights")
    key = "decoder.synthesis.0.weight"
    assert torch.equal(shipped.state_dict[key], trainer.model.state_dict()[key].half().float())
    assert shipped.card["training"]["steps"] == 4


def test_the_phase_bias_fit_leaves_no_mean_error_per_position(tmp_path):
    """After the export-time fit, the error averaged per position in the latent cell is
    zero at every level on the photos it was fitted on (it was not before)."""
    from PIL import Image
    from aecodec.train.export import fit_phase_bias
    rng = np.random.default_rng(4)
    files = []
    for i in range(2):
        files.append(tmp_path / f"{i}.png")
        Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(files[-1])  # 40: not whole cells
    torch.manual_seed(0)
    model = VQVAE(ModelConfig(transform="lite", hidden=16, groups=8, group_dim=4, stages=2, codes=16)).eval()

    def mean_error_per_position(level: int) -> torch.Tensor:
        total = 0
        for f in files:
            x = torch.from_numpy(np.asarray(Image.open(f))[:32, :48].copy()).permute(2, 0, 1)[None].float() / 255
            y = model.encoder(x)
            latent = y if level == 2 else model.quantizer.dequantize(model.quantizer.quantize(y, level + 1).long())
            total = total + (x - model.decoder(latent, level)).view(3, 2, 16, 3, 16).mean((1, 3))
        return total / len(files)

    with torch.no_grad():
        before = [mean_error_per_position(level).abs().max() for level in range(3)]
        change = fit_phase_bias(model, files)
        after = [mean_error_per_position(level).abs().max() for level in range(3)]
    assert change.shape == (3,) and (change > 0).all()
    assert all(b > 1e-3 for b in before)
    assert all(a < 1e-5 for a in after), after


def test_lowpass_error_weighs_only_what_survives_downsampling():
    from aecodec.train.loop import lowpass_error
    checkerboard = torch.ones(1, 3, 32, 32)
    checkerboard[..., ::2, 1::2] = -1
    checkerboard[..., 1::2, ::2] = -1
    assert float(lowpass_error(checkerboard)) == 0.0          # finest detail: invisible to it
    flat = torch.full((1, 3, 32, 32), 0.5)
    assert abs(float(lowpass_error(flat)) - 4 * 0.25) < 1e-6  # a shift: counted at every scale
    noise = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    white_share = float(lowpass_error(noise) / noise.pow(2).mean())
    assert abs(white_share - (1 / 4 + 1 / 16 + 1 / 64 + 1 / 256)) < 0.02


def test_lowpass_weight_changes_what_training_learns(tmp_path):
    from aecodec.train.loop import Trainer
    data = _photo_folder(tmp_path, seed=2)
    models = []
    for run, weight in enumerate((0.0, 5.0)):
        trainer = Trainer(_tiny_run_config(data, "lite", lowpass_weight=weight), tmp_path / f"run{run}")
        trainer.train(max_steps=3)
        models.append(trainer.model.state_dict())
    changed = [k for k in models[0] if not torch.equal(models[0][k], models[1][k])]
    assert any(k.startswith("decoder.") for k in changed)


def test_the_training_command_logs_one_validation_per_step_and_leaves_resume_pt(tmp_path):
    """The loop validates every ``validate_every`` steps and the command once more at
    the end; when the two fall on the same step, the log keeps one record."""
    import json
    from click.testing import CliRunner
    from aecodec.train.cli import main
    data = _photo_folder(tmp_path, seed=3)
    config = _tiny_run_config(data, "lite", validate_every=4).to_dict()
    (tmp_path / "run.json").write_text(json.dumps(config))
    result = CliRunner().invoke(main, [str(tmp_path / "run.json"), str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "val"] == [4]
    assert (tmp_path / "run" / "resume.pt").exists()
