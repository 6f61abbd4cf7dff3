#!/bin/bash
# Parzen, AIS and sample quality side by side for MNIST generators along a run (results/README.md,
# "Three estimates of one G"): G at several checkpoints, G averaged over checkpoints, the EMA of G,
# collapsed and healthy Algorithm-1 Gs of a run of three seeds, and the data references.
#
#   bash results/metrics_mnist.sh RUN SEEDS_RUN
#
# RUN: a finished `experiments/mnist.py:quick` run trained with --config.train.g_ema_decay=0.999
# and --config.train.keep_checkpoints=100 (checkpoints every 5,000 steps);
# SEEDS_RUN: a run of `--config.num_seeds=3 --config.train.update_rule=alternating` with a
# checkpoint at step 10,000. METHODS (default "parzen ais sample_quality") picks the protocols;
# AIS uses the CPU setting below (AIS_* to change it). Every command writes its JSON into the run,
# then results/metrics_table.py prints the table.
set -eu
run=${1:?RUN}; seeds_run=${2:?SEEDS_RUN}
methods=${METHODS:-parzen ais sample_quality}
ais=(--config.eval.ais.num_test=${AIS_TEST:-40} --config.eval.ais.num_chains=${AIS_CHAINS:-8}
  --config.eval.ais.num_temps=${AIS_TEMPS:-250} --config.eval.ais.leapfrog_steps=10
  --config.eval.ais.valid_size=10 "--config.eval.ais.obs_stds=(0.1, 0.2, 0.3)"
  --config.eval.ais.bdmc_examples=10 --config.eval.ais.batch_size=10)
eval_one() {  # eval_one METHOD WORKDIR [FLAGS...]
  local method=$1 workdir=$2; shift 2
  local extra=()
  [ "$method" = ais ] && extra=("${ais[@]}")
  python3 launch.py --config=experiments/mnist.py --workdir="$workdir" --mode=eval \
    --config.eval.method="$method" "${extra[@]}" "$@"
}
for method in $methods; do
  for step in 10000 20000 30000; do
    eval_one "$method" "$run" --step=$step
  done
  eval_one "$method" "$run" --step=30000 --config.eval.parzen.g_ema=True
  eval_one "$method" "$run" --step=30000 --config.eval.parzen.g_average=10000
  eval_one "$method" "$seeds_run" --step=10000 --config.num_seeds=3 \
    --config.train.update_rule=alternating
done
# The references: training images as samples (the memoriser), validation images (the floor).
for method in $methods; do
  case $method in
    parzen) eval_one parzen "$run" --config.eval.parzen.data_as_samples=True ;;
    sample_quality)
      eval_one sample_quality "$run" --config.eval.sample_quality.data_as_samples=train
      eval_one sample_quality "$run" --config.eval.sample_quality.data_as_samples=valid ;;
  esac
done
