"""Write the README's results section from benchmarks/results/kodak (never by hand)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

START, END = "<!-- results:start -->", "<!-- results:end -->"


def results_section(results_dir: Path) -> str:
    aec = json.loads((results_dir / "aecodec.json").read_text())["results"]
    jpeg = json.loads((results_dir / "jpeg.json").read_text())["results"]
    order = np.argsort(jpeg["bpp"])
    jb = np.array(jpeg["bpp"])[order]
    jp = np.array(jpeg["psnr-rgb"])[order]
    jm = np.array(jpeg["ms-ssim-rgb"])[order]
    lines = ["| quality | bpp | PSNR (dB) | MS-SSIM | JPEG PSNR at that bpp | JPEG MS-SSIM at that bpp | "
             "encode / decode (s) |", "|---|---|---|---|---|---|---|"]
    for q, b, p, m, te, td in zip(aec["quality"], aec["bpp"], aec["psnr-rgb"], aec["ms-ssim-rgb"],
                                  aec["encoding_time"], aec["decoding_time"]):
        inside = jb[0] <= b <= jb[-1]
        jpsnr = f"{np.interp(b, jb, jp):.2f}" if inside else "(outside JPEG's range)"
        jms = f"{np.interp(b, jb, jm):.4f}" if inside else ""
        lines.append(f"| {q} | {b:.3f} | {p:.2f} | {m:.4f} | {jpsnr} | {jms} | {te:.2f} / {td:.2f} |")
    table = (results_dir / "bdrate.md").read_text().split("\n\nPublished")[0].strip()
    return "\n".join(lines) + "\n\nBD-rate against Pillow JPEG (negative = fewer bits at equal quality):\n\n" + table + "\n"


def update_readme(readme: Path, results_dir: Path) -> None:
    text = readme.read_text()
    section = f"{START}\n{results_section(results_dir)}{END}"
    new, n = re.subn(re.escape(START) + ".*?" + re.escape(END), lambda _: section, text, flags=re.S)
    if n != 1:
        raise ValueError(f"{readme} has no {START} ... {END} block")
    readme.write_text(new)


def _bd_against_jpeg(results_dir: Path) -> dict:
    from .run import bd
    aec = json.loads((results_dir / "aecodec.json").read_text())
    jpeg = json.loads((results_dir / "jpeg.json").read_text())
    return {"psnr": round(bd(jpeg, aec, "psnr-rgb"), 4), "ms-ssim": round(bd(jpeg, aec, "ms-ssim-rgb"), 4)}


def update_model_card(card_path: Path, results_dir: Path, validation_dir: Path | None = None) -> None:
    """Copy the measured Kodak numbers (and the held-out photos' BD-rates, when that
    folder exists) into the model card (the hash covers only the safetensors file, so
    the card can carry results measured after export)."""
    card = json.loads(card_path.read_text())
    r = json.loads((results_dir / "aecodec.json").read_text())["results"]
    card["results"] = {
        "kodak": {k: [round(v, 4) for v in r[k]] for k in ("bpp", "psnr-rgb", "ms-ssim-rgb")},
        "kodak_qualities": r["quality"],
        "bd_rate_vs_pillow_jpeg": _bd_against_jpeg(results_dir),
        "measured_by": "aecodec bench (benchmarks/README.md)",
    }
    if validation_dir is not None and (validation_dir / "aecodec.json").exists():
        card["results"]["validation_bd_rate_vs_pillow_jpeg"] = _bd_against_jpeg(validation_dir)
    stages = results_dir / "stages.json"
    if stages.exists():
        card["results"]["stages"] = json.loads(stages.read_text())
    card_path.write_text(json.dumps(card, indent=2) + "\n")


def main(argv=None) -> None:
    import argparse
    argparse.ArgumentParser(description="Rewrite README.md's results section and weights/model.json's "
                            "results from benchmarks/results (run from the repository root).").parse_args(argv)
    update_readme(Path("README.md"), Path("benchmarks/results/kodak"))
    update_model_card(Path("weights/model.json"), Path("benchmarks/results/kodak"),
                      Path("benchmarks/results/validation"))


if __name__ == "__main__":
    main()
