# bench/common.sh -- sourced by the benchmark scripts (BENCH set to this folder).
# wait_quiet [SECONDS]: waits up to SECONDS (default 60) for the 1-minute load average to fall below
# 0.7 before a timed command, so runs do not time each other.
wait_quiet() {
  for _ in $(seq $(((${1:-60} + 4) / 5))); do
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

# machine_facts WORK: the machine lines at the top of the results (CPU, RAM, kernel, libvips, the
# superstack build and commit, date, work folder); the caller sets SS (the binary) and REPO.
machine_facts() {
  echo "CPU: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores visible)"
  echo "RAM: $(free -g | awk '/^Mem:/{print $2}') GiB ($(awk '/MemTotal/{printf "%.1f", $2/1048576}' /proc/meminfo) GiB MemTotal), no swap: $(awk '/SwapTotal/{print ($2==0)?"yes":"no"}' /proc/meminfo)"
  echo "Kernel: $(uname -r); Debian $(cat /etc/debian_version)"
  echo "libvips: $(vips --version)"
  echo "superstack: $("$SS" --version) at git commit $(git -C "$REPO" rev-parse --short HEAD)$(git -C "$REPO" diff --quiet HEAD -- src include meson.build 2>/dev/null || echo ' (with uncommitted changes in src/include)')"
  echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "Work folder: $1 on $(df -h --output=source,fstype "$1" | tail -1 | tr -s ' ')"
}
