#!/usr/bin/env bash
# Usage: OUT=/tmp/out scripts/gpu-demo.sh  (on a machine with an NVIDIA GPU, as root;
# it changes the GPU power limit for a few seconds and restores it).
# Runs gamesa on the lent GPU machine: dry-run first, then the real NVML writer with a
# graceful stop and with a SIGKILL followed by a restart.
set -u
G=${GAMESA:-./target/release/gamesa}
q() { nvidia-smi --query-gpu=power.limit,enforced.power.limit,temperature.gpu,power.draw --format=csv,noheader; }
echo "== check-config"; $G check-config config/default.toml > /dev/null && echo valid
echo "== dry run (6 s)"; q
GAMESA_LOG=info timeout -s INT 8 $G run 2>&1 | sed 's/\x1b\[[0-9;]*m//g' | tail -12; echo "exit=$?"; q
echo "== real NVML writer, SIGINT after 4 s"
export GAMESA__ACTUATORS__REAL='["power.limit:gpu0"]' GAMESA__ACTUATORS__STATE_FILE=$OUT/state.json
GAMESA_LOG=info $G run > $OUT/real.log 2>&1 &
pid=$!; sleep 8; echo "during:"; q; kill -INT $pid; wait $pid; echo "exit=$?"; echo "after:"; q
sed 's/\x1b\[[0-9;]*m//g' $OUT/real.log | grep -v "^$" | tail -8
ls $OUT/state.json 2>/dev/null && echo "state left" || echo "no state left"
echo "== real NVML writer, SIGKILL after 4 s, then a dry start"
GAMESA_LOG=info $G run > $OUT/kill.log 2>&1 &
pid=$!; sleep 4; echo "during:"; q; kill -KILL $pid; wait $pid; echo "exit=$?"; echo "after kill:"; q
cat $OUT/state.json; echo
unset GAMESA__ACTUATORS__REAL
GAMESA_LOG=info $G run --duration-s 1 2>&1 | sed 's/\x1b\[[0-9;]*m//g' | grep -iv "^$" | grep -i "restor\|stopped\|error" ; echo "exit=$?"
echo "after restart:"; q
ls $OUT/state.json 2>/dev/null && cat $OUT/state.json || echo "no state left"
