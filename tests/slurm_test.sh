#!/usr/bin/env bash
# The job scripts in jobs/ on a real Slurm: a single-node cluster started on this machine
# (munged, slurmctld and slurmd with a generated slurm.conf, everything in a temporary
# directory), each script submitted with sbatch, waited for, and its outputs and exit state
# checked; the daemons are stopped by PID on every exit, failure included.
#
#   bash tests/slurm_test.sh BILEVEL_EXE SOURCE_DIR     (ctest -L slurm)
#
# Installs slurm-wlm and munge with apt-get when they are missing (root only; otherwise the test
# is skipped with exit code 77). BILEVEL_SLURM_KEEP=1 keeps the temporary directory.
set -euo pipefail

exe="$(realpath "${1:?usage: slurm_test.sh BILEVEL_EXE SOURCE_DIR}")"
src="$(realpath "${2:?usage: slurm_test.sh BILEVEL_EXE SOURCE_DIR}")"
jobs_dir="$src/jobs"
t_start=$SECONDS

say() { echo "slurm_test [$((SECONDS - t_start))s]: $*"; }
fail() { echo "slurm_test: FAIL: $*" >&2; exit 1; }

# --- Slurm and munge ----------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null ||
   ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "slurm_test: SKIP: slurm-wlm and munge are not installed and this is not root" >&2
    exit 77
  fi
  say "installing slurm-wlm and munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null
  say "installed"
fi
if [ "$(id -u)" != 0 ]; then
  echo "slurm_test: SKIP: starting slurmd needs root" >&2
  exit 77
fi
getent passwd munge >/dev/null || fail "no user munge (the munge package makes it)"

# How fast this machine runs the quadratic on 2 ranks, to size the runs that must outlast a
# time limit (below).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_mpi_yield_when_idle=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMP_NUM_THREADS=1 PMIX_MCA_gds=hash
calib_iters=1500
calib="$(mpirun -np 2 "$exe" solve -q --outer-iters $calib_iters --eval-every $calib_iters)"
per_iter="$(awk -v t="$(sed -n 's/.*"time_s": \([^,]*\).*/\1/p' <<< "$calib")" -v n=$calib_iters 'BEGIN { print t / n }')"
long_iters="$(awk -v s="$per_iter" 'BEGIN { n = int(60 / s); if (n < 1000) n = 1000; print n }')"
calib="$("$exe" solve -q --algorithm stocbio --outer-iters $calib_iters --eval-every $calib_iters)"
seg_per_iter="$(awk -v t="$(sed -n 's/.*"time_s": \([^,]*\).*/\1/p' <<< "$calib")" -v n=$calib_iters 'BEGIN { print t / n }')"
seg_iters="$(awk -v s="$seg_per_iter" 'BEGIN { n = int(5 / s); if (n < 300) n = 300; print n }')"
say "calibration: aid-cg on 2 ranks $per_iter s per iteration, the signalled run does" \
    "$long_iters iterations; stocbio on 1 rank $seg_per_iter s, the max-time run $seg_iters"

# --- A temporary cluster --------------------------------------------------------------------
tmp="$(mktemp -d /tmp/bilevel_slurm_XXXXXX)"
chmod 755 "$tmp"  # munged (user munge) must reach its directory inside
conf="$tmp/slurm.conf"
export SLURM_CONF="$conf"

# The PIDs in a pid file, if the process is still there.
pid_of() { local p; p="$(cat "$1" 2>/dev/null || true)"; [ -n "$p" ] && kill -0 "$p" 2>/dev/null && echo "$p"; }

cleanup() {
  local status=$?
  set +e
  trap - EXIT INT TERM
  if [ -f "$conf" ] && [ -n "$(pid_of "$tmp/slurmctld.pid")" ]; then
    if (( status != 0 )); then
      echo "--- squeue"; squeue 2>&1
      echo "--- scontrol show job"; scontrol show job 2>&1 | head -200
    fi
    scancel --quiet $(squeue -h -o %A 2>/dev/null | sort -u) 2>/dev/null
  fi
  if (( status != 0 )); then
    for f in "$tmp"/*.out "$tmp"/slurmctld.log "$tmp"/slurmd.log; do
      [ -f "$f" ] || continue
      echo "--- $f (last 40 lines)"
      tail -n 40 "$f"
    done
  fi
  # The daemons, by the PIDs in their pid files.
  for name in slurmd slurmctld; do
    p="$(pid_of "$tmp/$name.pid")"
    if [ -n "$p" ]; then kill "$p"; fi
  done
  sleep 1
  for name in slurmd slurmctld; do
    p="$(pid_of "$tmp/$name.pid")"
    if [ -n "$p" ]; then kill -9 "$p"; fi
  done
  # What is left of the jobs (slurmstepd and the tasks): the processes started with this
  # cluster's SLURM_CONF in their environment, by PID.
  for d in /proc/[0-9]*; do
    p="${d#/proc/}"
    [ "$p" = $$ ] && continue
    if { tr '\0' '\n' < "$d/environ"; } 2>/dev/null | grep -qxF "SLURM_CONF=$conf"; then
      kill -9 "$p" 2>/dev/null
    fi
  done
  p="$(pid_of "$tmp/munge/munged.pid")"
  if [ -n "$p" ]; then kill "$p"; fi
  if [ "${BILEVEL_SLURM_KEEP:-0}" = 1 ]; then
    echo "slurm_test: kept $tmp"
  else
    rm -rf "$tmp"
  fi
  say "daemons stopped; exit $status"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# munged, as user munge, with its own key and socket.
mkdir "$tmp/munge"
dd if=/dev/urandom of="$tmp/munge/munge.key" bs=1024 count=1 status=none
chown -R munge:munge "$tmp/munge"
chmod 711 "$tmp/munge"
chmod 600 "$tmp/munge/munge.key"
socket="$tmp/munge/munge.socket"
runuser -u munge -- munged --socket="$socket" --key-file="$tmp/munge/munge.key" \
  --pid-file="$tmp/munge/munged.pid" --log-file="$tmp/munge/munged.log" \
  --seed-file="$tmp/munge/munged.seed" || fail "munged did not start: $(cat "$tmp/munge/munged.log" 2>/dev/null)"

# Two free ports (a connection that succeeds means a port is taken).
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
base=$(( 20000 + ($$ % 4000) * 2 ))
while ! port_free "$base" || ! port_free $((base + 1)); do base=$((base + 2)); done

node="$(hostname -s)"
# 8 CPUs on this 2-core machine (config_overrides): every job of the test runs at once.
cat > "$conf" <<EOF
ClusterName=bileveltest
SlurmctldHost=localhost
SlurmctldPort=$base
SlurmdPort=$((base + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire also sets how long a requeued job waits before it starts again (default 120 s).
AuthInfo=socket=$socket,cred_expire=5
MpiDefault=pmix
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=3600
KillWait=5
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$node NodeAddr=127.0.0.1 CPUs=8 State=UNKNOWN
PartitionName=test Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
mkdir -p "$tmp/state" "$tmp/spool"
slurmctld -i || fail "slurmctld did not start"
slurmd || fail "slurmd did not start"
for _ in $(seq 100); do
  state="$(sinfo -h -o %T 2>/dev/null || true)"
  [ "$state" = idle ] && break
  sleep 0.2
done
[ "$state" = idle ] || fail "the node is '$state', not idle"
say "cluster up: $(sinfo -h -o '%P %D nodes %c cpus %T') (slurmctld $(pid_of "$tmp/slurmctld.pid"), slurmd $(pid_of "$tmp/slurmd.pid"), munged $(pid_of "$tmp/munge/munged.pid"))"

# --- The jobs ---------------------------------------------------------------------------------
# Open MPI as root on more ranks than cores: the settings exported above; sbatch passes the
# environment on to the jobs.
export BILEVEL="$exe"
cd "$tmp"

field() { sed -n 's/.*"'"$1"'": "\{0,1\}\([^",}]*\).*/\1/p' "$2" | tail -n 1; }
job_field() { scontrol show job "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }
expect_completed() {  # JOB_ID NAME: COMPLETED with exit code 0:0
  local state code
  state="$(job_field "$1" JobState)"
  code="$(job_field "$1" ExitCode)"
  [ "$state" = COMPLETED ] && [ "$code" = 0:0 ] ||
    fail "$2 (job $1) ended $state with exit code $code"
}

# The requeue job that waits for Slurm's own signal goes first: slurmctld checks time limits
# every 30 s and sends the --signal at the first check within the warning time, so each
# segment of a 1-minute job with --signal=B:USR1@30 lasts at most 30 s. Its work is sized to
# about 60 s of this machine's compute (measured before the cluster started; the test runs
# alone, RUN_SERIAL, so the measure holds unless something outside the suite loads the machine
# while it calibrates), so it needs at least one requeue and finishes within about two minutes.
eval_every=$(( long_iters / 20 ))
long_signal=$(BILEVEL_LAUNCHER=srun RESULTS_DIR="$tmp/long-signal" \
  BILEVEL_ARGS="--algorithm aid-cg --outer-iters $long_iters --eval-every $eval_every" \
  BILEVEL_CHECKPOINT_EVERY=$(( long_iters / 10 )) \
  sbatch --parsable --ntasks=2 --time=1 --signal=B:USR1@30 "$jobs_dir/resumable.sbatch")

# The same script ending each segment with --max-time (BILEVEL_SEGMENT_TIME) instead, under
# mpirun: 2 s of solver time per segment, about 5 s of work.
long_maxtime=$(BILEVEL_LAUNCHER=mpirun RESULTS_DIR="$tmp/long-maxtime" BILEVEL_SEGMENT_TIME=2 \
  BILEVEL_ARGS="--algorithm stocbio --outer-iters $seg_iters --eval-every $(( seg_iters / 20 ))" \
  BILEVEL_CHECKPOINT_EVERY=$(( seg_iters / 10 )) \
  sbatch --parsable --ntasks=1 --time=5 "$jobs_dir/resumable.sbatch")

# One run on 1 node x 2 tasks, with srun --mpi=pmix and with mpirun.
solve_srun=$(BILEVEL_LAUNCHER=srun RESULTS_DIR="$tmp/solve-srun" \
  BILEVEL_ARGS="--algorithm aid-cg --outer-iters 200 --eval-every 20" \
  sbatch --parsable --nodes=1 --ntasks=2 "$jobs_dir/solve.sbatch")
cat > "$tmp/run.ini" <<EOF
algorithm = stocbio
outer-iters = 300
eval-every = 30
EOF
solve_mpirun=$(BILEVEL_LAUNCHER=mpirun RESULTS_DIR="$tmp/solve-mpirun" BILEVEL_ARGS="--seed 3" \
  BILEVEL_CONFIG="$tmp/run.ini" sbatch --parsable --nodes=1 --ntasks=2 "$jobs_dir/solve.sbatch")

# The default sweep: 4 algorithms x 2 seeds, array 0-7, one task each.
sweep=$(RESULTS_DIR="$tmp/sweep" sbatch --parsable "$jobs_dir/sweep.sbatch")
sweep="${sweep%%;*}"

# Strong scaling over 1, 2 and 4 ranks.
scaling=$(RESULTS_DIR="$tmp/scaling" \
  BILEVEL_ARGS="--algorithm aid-cg --samples 8000 --outer-iters 40 --eval-every 40" \
  sbatch --parsable --ntasks=4 "$jobs_dir/scaling.sbatch")

say "submitted: resumable (signal) $long_signal, resumable (max-time) $long_maxtime," \
    "solve (srun) $solve_srun, solve (mpirun) $solve_mpirun, sweep $sweep, scaling $scaling"

# Wait until the queue is empty (a requeued job goes back to PENDING, so it stays in it).
deadline=$((SECONDS + 300))
declare -A finished_at=()
while :; do
  queue="$(squeue -h -o '%i %T' 2>/dev/null || true)"
  for id in "$long_signal" "$long_maxtime" "$solve_srun" "$solve_mpirun" "$sweep" "$scaling"; do
    if [ -z "${finished_at[$id]:-}" ] && ! grep -q "^${id}[ _]" <<< "$queue"; then
      finished_at[$id]=$((SECONDS - t_start))
      say "job $id finished: $(job_field "$id" JobState), restarts $(job_field "$id" Restarts)"
    fi
  done
  [ -z "$queue" ] && break
  (( SECONDS < deadline )) || fail "jobs still queued after 300 s: $(echo "$queue" | tr '\n' ';')"
  sleep 1
done
say "every job has left the queue"

# --- Checks -----------------------------------------------------------------------------------
# solve.sbatch, both launchers: 2 MPI ranks (not 2 single-rank runs), finished, metrics written.
for pair in "srun:$solve_srun:200" "mpirun:$solve_mpirun:300"; do
  IFS=: read -r launcher id iters <<< "$pair"
  expect_completed "$id" "solve.sbatch with $launcher"
  s="$tmp/solve-$launcher/summary.json"
  [ "$(field termination "$s")" = max_iters ] || fail "solve ($launcher): $(cat "$s")"
  [ "$(field iterations "$s")" = "$iters" ] || fail "solve ($launcher): iterations in $(cat "$s")"
  [ "$(field ranks "$s")" = 2 ] || fail "solve ($launcher) ran on $(field ranks "$s") ranks"
  [ "$(wc -l < "$tmp/solve-$launcher/metrics.jsonl")" = 10 ] ||
    fail "solve ($launcher): $(wc -l < "$tmp/solve-$launcher/metrics.jsonl") metrics lines, expected 10"
  [ -s "$tmp/solve-$launcher/result.h5" ] || fail "solve ($launcher): no result.h5"
  # The job's log: the progress as plain lines, one per evaluation.
  log="$tmp/bilevel-$id.out"
  [ "$(grep -c "^iter [0-9]*/$iters " "$log")" = 10 ] || fail "solve ($launcher): progress lines in $log"
  ! grep -q $'\r' "$log" || fail "solve ($launcher): carriage returns in the log $log"
done
[ "$(field algorithm "$tmp/solve-mpirun/summary.json")" = stocbio ] ||
  fail "solve (mpirun) did not take the config file's algorithm"
say "solve.sbatch: srun --mpi=pmix and mpirun runs on 2 ranks finished"

# sweep.sbatch: 8 array tasks, one metrics file each.
tasks="$(scontrol show job "$sweep" | grep -c 'JobState=COMPLETED' || true)"
[ "$tasks" = 8 ] || fail "sweep: $tasks of 8 array tasks COMPLETED: $(scontrol show job "$sweep" | grep -o 'JobState=[A-Z_]*' | tr '\n' ' ')"
for i in $(seq 0 7); do
  [ "$(job_field "${sweep}_$i" ExitCode)" = 0:0 ] || fail "sweep task $i exit code $(job_field "${sweep}_$i" ExitCode)"
done
for algorithm in aid-cg aid-neumann itd stocbio; do
  for seed in 0 1; do
    base="$tmp/sweep/${algorithm}_seed$seed"
    [ "$(field termination "$base.json")" = max_iters ] || fail "sweep $base: $(cat "$base.json")"
    [ "$(field algorithm "$base.json")" = "$algorithm" ] || fail "sweep $base: algorithm"
    [ "$(wc -l < "$base.jsonl")" = 10 ] || fail "sweep $base.jsonl: $(wc -l < "$base.jsonl") lines"
  done
done
say "sweep.sbatch: 8 array tasks, 8 metrics files"

# The sweep's plot, where matplotlib is installed (tools/setup.sh installs it).
if /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  /usr/bin/python3 "$src/tools/plot_metrics.py" "$tmp"/sweep/*.jsonl -o "$tmp/sweep.png" \
    --title "sweep $sweep" || fail "plot_metrics.py on the sweep"
  [ "$(head -c 8 "$tmp/sweep.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
    fail "sweep.png is not a PNG"
  (( $(stat -c %s "$tmp/sweep.png") > 20000 )) || fail "sweep.png is too small"
  say "plot of the sweep: $(stat -c %s "$tmp/sweep.png") bytes"
fi

# scaling.sbatch: one table, rows for 1, 2 and 4 ranks.
expect_completed "$scaling" "scaling.sbatch"
table="$tmp/scaling/scaling.tsv"
[ "$(head -n 1 "$table" | cut -f1,2,4,5)" = $'ranks\tsolver_s\tspeedup\tefficiency' ] ||
  fail "scaling.tsv header: $(head -n 1 "$table")"
[ "$(cut -f1 "$table" | tail -n +2 | tr '\n' ' ')" = "1 2 4 " ] || fail "scaling.tsv ranks: $(cat "$table")"
awk -F'\t' 'NR > 1 && !($2 > 0 && $4 > 0 && $6 == 40) { bad = 1 } END { exit bad }' "$table" ||
  fail "scaling.tsv values: $(cat "$table")"
say "scaling.sbatch: $(tail -n +2 "$table" | cut -f1,2,4 | tr '\t\n' ' ;')"

# resumable.sbatch: requeued at least once, every segment resumed, the run finished.
check_resumed() {  # JOB_ID DIR ITERATIONS HOW STOPPED (a regex: how early segments end)
  local id="$1" dir="$2" iters="$3" how="$4" stopped="$5" restarts segments
  expect_completed "$id" "resumable.sbatch ($how)"
  restarts="$(job_field "$id" Restarts)"
  (( restarts >= 1 )) || fail "resumable ($how): Restarts=$restarts, expected a requeue"
  [ "$(field termination "$dir/summary.json")" = max_iters ] || fail "resumable ($how): $(cat "$dir/summary.json")"
  [ "$(field iterations "$dir/summary.json")" = "$iters" ] || fail "resumable ($how): iterations"
  segments="$(wc -l < "$dir/segments.log")"
  [ "$segments" = $((restarts + 1)) ] || fail "resumable ($how): $segments segments for $restarts restarts"
  tail -n 1 "$dir/segments.log" | grep -q "termination=max_iters iterations=$iters exit=0" ||
    fail "resumable ($how): last segment: $(tail -n 1 "$dir/segments.log")"
  # Every segment but the last was stopped early, and every one after the first resumed.
  if head -n -1 "$dir/segments.log" | grep -Ev "termination=($stopped) "; then
    fail "resumable ($how): a segment did not end with $stopped"
  fi
  (( $(grep -c 'resuming from' "$tmp/bilevel-long-$id.out") == restarts )) ||
    fail "resumable ($how): not every segment resumed"
  # One metrics file across the segments: iterations increasing, ending at the last.
  awk '{ match($0, /"iter": [0-9]+/); it = substr($0, RSTART + 8, RLENGTH - 8) + 0;
         if (it <= last) bad = 1; last = it } END { exit bad || last != '"$iters"' }' \
    "$dir/metrics.jsonl" || fail "resumable ($how): metrics.jsonl does not run on to $iters"
  say "resumable.sbatch ($how): $segments segments, restarts $restarts, $(cut -d' ' -f2,3 "$dir/segments.log" | tr '\n' ';')"
}
check_resumed "$long_maxtime" "$tmp/long-maxtime" "$seg_iters" "max-time" max_time
# (none: the signal came while the run was still starting; the script requeues it all the same.)
check_resumed "$long_signal" "$tmp/long-signal" "$long_iters" "signal" 'signal|none'

say "PASS: every job script ran on Slurm as expected"
