#!/usr/bin/env bash
# Training on a lent GPU machine whose commands last at most 10 minutes (see
# docs/TRAINING_LOG.md). The run lives in its own process session, so it outlives
# each command while the machine stays warm; every phase hands back a model-only
# checkpoint, so nothing is lost if the machine goes away.
#
#   start CONFIG   GPU speed + cross-device files (shipped weights), then start training
#   wait           report progress for ~9 minutes
#   collect        wait for the run to finish
#   train CONFIG   one short run in the foreground (from the weights in weights/)
#   continue CONFIG RUN_DIR
#                  resume a committed run (its resume.pt, e.g. runs/v2_lite128) in the
#                  background, e.g. with aecodec/train/configs/v2_lite128_gpu.json
# Needs: .whl/ (constriction) and .data/ (python -m aecodec.train.pack) carried along.
set -u
phase=$1
run=/tmp/aec-run
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl >/dev/null 2>&1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
t0=$(date +%s)

hand_back() {
  python3 - "$run" "$OUT" <<'PY'
import sys, torch
run, out = sys.argv[1], sys.argv[2]
try:
    s = torch.load(f"{run}/checkpoint.pt", weights_only=False, map_location="cpu")
except FileNotFoundError:
    sys.exit("no checkpoint yet")
s.pop("optimizer", None)
torch.save(s, f"{out}/checkpoint.pt")
print("checkpoint at step", s["step"], "elapsed", round(s.get("elapsed", 0)))
PY
  cp $run/log.jsonl /tmp/aec-train.log "$OUT"/ 2>/dev/null
}

case $phase in
start)
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -m aecodec.bench.speed --device cuda --codecs aecodec --threads 16 \
      --image .data/kodak/kodim23.png --sizes 0.39,4,12 --out "$OUT"
  python3 -m aecodec.bench.crossdevice write /tmp/cd .data/kodak/*.png --device cuda
  tar cf "$OUT/crossdevice.tar" -C /tmp cd
  setsid nohup python3 -m aecodec.train "$2" $run --init-from weights \
      > /tmp/aec-train.log 2>&1 < /dev/null &
  limit=540 ;;
train)
  python3 -m aecodec.train "$2" $run --init-from weights > /tmp/aec-train.log 2>&1
  limit=0 ;;
continue)
  mkdir -p $run && cp "$3/resume.pt" "$3/log.jsonl" $run/
  setsid nohup python3 -m aecodec.train "$2" $run > /tmp/aec-train.log 2>&1 < /dev/null &
  limit=540 ;;
wait) limit=560 ;;
collect) limit=580 ;;
esac

while [ $(( $(date +%s) - t0 )) -lt $limit ]; do
  sleep 20
  tail -n 1 /tmp/aec-train.log
  if ! pgrep -f "python3 -m aecodec[.]train" >/dev/null; then echo "training process ended"; break; fi
done
tail -n 5 /tmp/aec-train.log
hand_back
