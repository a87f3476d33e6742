#!/usr/bin/env bash
# Re-measure everything published in benchmarks/ and README.md from the shipped weights.
set -euo pipefail
cd "$(dirname "$0")/.."
aecodec bench --out benchmarks/results/kodak --force      # it replaces the committed results
python -m aecodec.bench.stats --out benchmarks/results/kodak
python -m aecodec.bench.speed --out benchmarks/results/speed
python -m aecodec.bench.report
python -m aecodec.bench.memory --sizes 1,2,4,8,12 --qualities 8,12
