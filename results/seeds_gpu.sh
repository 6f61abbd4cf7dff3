#!/bin/bash
# Table 1 over seeds in one program per update rule (config.num_seeds), for a GPU session:
# S seeds of experiments/mnist.py trained side by side in one compiled program to NUM_STEPS,
# then the paper's Parzen protocol on every seed at every CHECKPOINT steps (parzen_seeds_step_N.json),
# then results/table1.py (mean +- sd over seeds, checkpoint chosen on each seed's validation estimate).
#
#   bash results/seeds_gpu.sh OUT_DIR [IDX_DIR]
#
# IDX_DIR holds the four original MNIST .gz files (read without TensorFlow, which the GPU image
# lacks). Defaults: 3 seeds, both rules, 1,300,000 steps (where the seed-0 curve flattened), a
# checkpoint and protocol every 100,000. Every run resumes if started again.
# On the CPU, as a check of the script: NUM_STEPS=200 CHECKPOINT=100 EVAL_SAMPLES=500 bash ...
set -eu
out=${1:?OUT_DIR}; idx=${2:-.data/mnist_idx}
runs=${RUNS:-/tmp/seeds}; steps=${NUM_STEPS:-1300000}; every=${CHECKPOINT:-100000}
mkdir -p "$out" "$runs"
common=(--config=experiments/mnist.py --config.data.idx_dir="$idx" --config.num_seeds=${SEEDS:-3}
  --config.train.num_steps=$steps --config.train.steps_per_call=${SPC:-500}
  --config.train.log_every=${LOG:-5000} --config.train.checkpoint_every=$every
  --config.train.keep_checkpoints=10000 --config.train.sample_every=$every --config.eval.every=0
  --config.eval.parzen.num_samples=${EVAL_SAMPLES:-10000})
for rule in ${RULES:-simultaneous alternating}; do
  workdir="$runs/$rule"
  # A seed that goes non-finite stops alone; the run then exits non-zero, naming it.
  python3 launch.py "${common[@]}" --config.train.update_rule=$rule --workdir="$workdir" \
    > "$runs/$rule.log" 2>&1 || echo "$rule: training ended with an error (see $runs/$rule.log)"
  for ((step = every; step <= steps; step += every)); do
    python3 launch.py "${common[@]}" --config.train.update_rule=$rule --workdir="$workdir" \
      --mode=eval --step=$step >> "$runs/$rule.eval.log" 2>&1
  done
  grep -h "Parzen" "$runs/$rule.eval.log" | tail -n 20
done
python3 results/table1.py --runs="$runs" --choose_on=protocol --out="$out/table1_seeds.md" \
  > "$out/table1_seeds.log" 2>&1 || true
tail -n 20 "$out/table1_seeds.log"
tar czf "$out/seeds_runs.tgz" -C "$runs" --exclude=checkpoints .
