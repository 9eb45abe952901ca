# bench/common.sh -- sourced by the benchmark scripts (BENCH set to this folder).
# wait_quiet: waits up to 60 s for the 1-minute load average to fall below 0.7 before a timed
# command, so runs do not time each other.
wait_quiet() {
  for _ in $(seq 12); do
    awk '{exit !($1 < 0.7)}' /proc/loadavg && return 0
    sleep 5
  done
}

# render_results: RESULTS.md again (report.py takes in align-results.md and robust-results.md) when
# the stacking results of bench/run.sh exist.
render_results() {
  local tsv=/tmp/superstack-bench/results.tsv
  [ -f "$tsv" ] || return 0
  python3 "$BENCH/report.py" render "$tsv" /tmp/superstack-bench/machine.txt /tmp/superstack-bench/commands.sh \
    "$BENCH/RESULTS.md" "$BENCH/notes.md"
}
