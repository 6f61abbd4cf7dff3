#!/bin/bash
# Table 1 on one GPU: experiments/mnist.py for 3 seeds x 2 update rules (plus a bfloat16 run),
# all trained side by side for a fixed wall time, each stopped with SIGTERM (it checkpoints and
# exits), then results/table1.py: checkpoint chosen by the validation estimate, scored on test.
#
#   bash results/table1_gpu.sh OUT_DIR TRAIN_SECONDS [IDX_DIR]
#
# IDX_DIR holds the four original MNIST .gz files (read without TensorFlow); the training set is
# then pylearn2's own first 50,000 images. Runs go to $RUNS (default /tmp/table1); OUT_DIR gets
# the table, the logs and a tarball of every run's metrics, configs, Parzen JSON and samples.
set -u
out=${1:?OUT_DIR}; train_s=${2:?TRAIN_SECONDS}; idx=${3:-.data/mnist_idx}
runs=${RUNS:-/tmp/table1}
mkdir -p "$out" "$runs"
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # Several processes share the GPU.
export JAX_DEFAULT_MATMUL_PRECISION=${JAX_DEFAULT_MATMUL_PRECISION:-highest}  # True float32.
common=(--config=experiments/mnist.py --config.data.idx_dir="$idx"
  --config.train.num_steps=${NUM_STEPS:-10000000} --config.train.steps_per_call=${SPC:-500}
  --config.train.log_every=${LOG:-5000} --config.train.checkpoint_every=${EVERY:-25000}
  --config.train.keep_checkpoints=10000 --config.train.sample_every=100000
  --config.eval.every=${EVERY:-25000})
pids=()
start() {  # start NAME FLAGS...
  local name=$1; shift
  python3 launch.py "${common[@]}" --workdir="$runs/$name" "$@" > "$runs/$name.log" 2>&1 &
  pids+=($!)
}
for seed in ${SEEDS:-0 1 2}; do
  start sim_s$seed --config.seed=$seed --config.train.update_rule=simultaneous
  start alt_s$seed --config.seed=$seed --config.train.update_rule=alternating
done
[ -n "${BF16-1}" ] && start sim_s0_bf16 --config.seed=0 --config.model.compute_dtype=bfloat16
echo "$(date -u +%T) started ${#pids[@]} runs for ${train_s}s"
sleep "$train_s"
kill -TERM "${pids[@]}" 2>/dev/null
wait
echo "$(date -u +%T) training stopped"
for f in "$runs"/*.log; do echo "== $f"; grep -E "step [0-9]+/" "$f" | tail -1; grep -iE "error|Traceback" "$f" | head -3; done
python3 results/table1.py --runs="$runs" --evaluate --out="$out/table1.md" > "$out/table1.log" 2>&1
tail -20 "$out/table1.log"
echo "$(date -u +%T) evaluated"
tar -czf "$out/table1_runs.tar.gz" -C "$runs" --exclude=checkpoints --exclude=tensorboard .
ls -la "$out"
