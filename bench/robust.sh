#!/usr/bin/env bash
# bench/robust.sh -- the robust statistics: their cost in one pass against the mean alone, and
# superstack against Siril (siril-cli) on the same burst, side by side in the same run.
#
# 1. Cost: the 24 MP stack of bench/run.sh (16 frames of 6000x4000 RGB 16-bit; made by
#    `bench/run.sh --sizes 24` when missing), stacked at 2x with --memory 512M: `mean` alone, then
#    mean, median, sigma-clip and winsorized from one pass, twice in turn (the ratio of each pair and
#    of the fastest runs). Target: at most 2x the time of mean alone.
# 2. Against Siril: a 16-frame burst of 3000x2000 made by `superstack synth` (noise 2%, a textured
#    object crossing 6 of the 16 frames: a ghost to reject). The frames are already aligned: Siril
#    1.0's command-line `register` finds stars, and this scene has none, so both tools only stack
#    (superstack --align none --scale 1; Siril `stack` with -nonorm). Each statistic: time, peak
#    RSS, PSNR against the truth at the frames' resolution (truth.tif box-shrunk by 2, exactly the
#    frames' sensor model). Siril runs once per statistic, after one `convert` to its FITS sequence
#    (timed apart).
# Writes bench/robust-results.md (copied into RESULTS.md by report.py).
#
# usage: bench/robust.sh [--work DIR] [--skip-cost] [--report-only (the table again from the last run)]
set -euo pipefail

BENCH=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$BENCH/.." && pwd)
SS=${SUPERSTACK:-$REPO/build/superstack}
WORK=/tmp/superstack-bench
COST=1
RUN=1
while (($#)); do
  case $1 in
    --work) WORK=$2; shift ;;
    --skip-cost) COST=0 ;;
    --report-only) RUN=0 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "robust.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

bash "$REPO/scripts/install-missing.sh" siril time
[ -x "$SS" ] || bash "$REPO/scripts/setup.sh"
DIR=$WORK/robust
mkdir -p "$DIR"
ROWS=$DIR/rows.tsv
SI=$DIR/siril
if ((RUN)); then # a run without the cost part keeps the cost rows of the last one
  if ((COST)) || [ ! -f "$ROWS" ]; then : >"$ROWS"; else grep '^cost' "$ROWS" >"$ROWS.keep" || true; mv "$ROWS.keep" "$ROWS"; fi
fi

# shellcheck source=bench/common.sh
source "$BENCH/common.sh"

# timed NAME COMMAND...: runs it under /usr/bin/time -v, appends "name, seconds, MiB" to $ROWS.
timed() {
  local name=$1; shift
  wait_quiet
  /usr/bin/time -v -o "$DIR/time.txt" "$@" >"$DIR/last.log" 2>&1 || { cat "$DIR/last.log"; echo "robust.sh: $name failed"; exit 1; }
  python3 - "$DIR/time.txt" "$name" >>"$ROWS" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text).group(1).split(":")
seconds = sum(float(p) * 60 ** i for i, p in enumerate(reversed(wall)))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) / 1024
print(f"{sys.argv[2]}\t{seconds:.1f}\t{rss:.0f}")
PY
}

psnr() { "$SS" score "$1" "$DIR/truth1.tif" --crop 8 --json | python3 -c 'import json, sys; print("%.3f" % json.load(sys.stdin)["psnr"])'; }

run_all() {
if ((COST)); then
  S24=$WORK/stacks/24
  [ -f "$S24/.done" ] || bash "$BENCH/run.sh" --sizes 24 --no-peers
  # Two pairs, interleaved: a shared machine's speed drifts by 20-40% over minutes (measured), so each
  # pair's ratio is reported, and the ratio of the fastest runs.
  for pair in 1 2; do
    timed "cost: mean alone" "$SS" run "$S24"/frame_*.tif -o "$DIR/cost-mean" --align none --memory 512M --reduce mean -q
    timed "cost: mean, median, sigma-clip, winsorized" "$SS" run "$S24"/frame_*.tif -o "$DIR/cost-four" --align none \
      --memory 512M --reduce mean,median,sigma-clip,winsorized -q
    rm -rf "$DIR/cost-mean" "$DIR/cost-four"
  done
fi

B=$DIR/burst
if [ ! -f "$B/transforms.json" ]; then
  rm -rf "$B"
  "$SS" synth -o "$B" --frames 16 --size 3000x2000 --noise 0.02 --max-shift 0 --max-rotation 0 \
    --moving-object 0.02 --moving-frames 6 --moving-texture --seed 9 -q
fi
vips shrink "$B/truth.tif" "$DIR/truth1.tif" 2 2

timed "superstack: mean, median, sigma-clip, winsorized (one run)" "$SS" run "$B"/frame_*.tif -o "$DIR/ss" --align none \
  --scale 1 --reduce mean,median,sigma-clip,winsorized -q
for s in mean median sigma-clip winsorized; do
  timed "superstack: $s alone" "$SS" run "$B"/frame_*.tif -o "$DIR/ss-$s" --align none --scale 1 --reduce "$s" -q
done
# Exposure normalization (the default, gain) is part of the above; this row shows its share.
timed "superstack: mean alone, --normalize none" "$SS" run "$B"/frame_*.tif -o "$DIR/ss-plain" --align none --scale 1 \
  --reduce mean --normalize none -q

# Siril: one FITS sequence, then one script per statistic.
rm -rf "$SI"; mkdir -p "$SI/in"
ln -s "$B"/frame_*.tif "$SI/in/"
printf 'requires 1.0.0\nsetext fit\nconvert frame -out=%s/seq\n' "$SI" >"$SI/convert.ssf"
timed "Siril: convert to FITS" siril-cli -d "$SI/in" -s "$SI/convert.ssf"
declare -A SIRIL=([mean]="rej n" [median]="med" [sigma-clip]="rej s 3 3" [winsorized]="rej w 3 3")
for s in mean median sigma-clip winsorized; do
  printf 'requires 1.0.0\nsetext fit\nstack frame_ %s -nonorm -out=%s/%s\nload %s/%s\nsavetif %s/%s\n' \
    "${SIRIL[$s]}" "$SI" "$s" "$SI" "$s" "$SI" "$s" >"$SI/$s.ssf"
  timed "Siril: $s" siril-cli -d "$SI/seq" -s "$SI/$s.ssf"
done

}
((RUN)) && run_all

{
  echo "## Robust statistics: cost in one pass, and against Siril"
  echo
  echo "Made by \`bench/robust.sh\` on $(date -u +%Y-%m-%d) ($(nproc) cores; $("$SS" --version | head -1); $(siril-cli --version 2>&1 | head -1))."
  echo
  if grep -q '^cost' "$ROWS"; then
    echo "**Cost** (16 frames of 24 MP RGB 16-bit, 2x, --memory 512M, aligned frames):"
    echo
    echo "| statistics | s | peak RSS MiB |"
    echo "|---|---|---|"
    grep '^cost' "$ROWS" | awk -F'\t' '{sub(/^cost: /, "", $1); printf "| %s | %s | %s |\n", $1, $2, $3}'
    awk -F'\t' '/^cost: mean alone/{m[++i]=$2} /^cost: mean, median/{f[++j]=$2}
      END{lm=m[1]; lf=f[1]; pairs=""; for (k=1; k<=i; k++) {if (m[k]<lm) lm=m[k]; if (f[k]<lf) lf=f[k]; pairs=pairs sprintf("%s%.2fx", k>1?", ":"", f[k]/m[k])}
          printf "\nAll four in one pass take %.2fx the time of the mean alone, fastest run against fastest run (each pair, run one after the other: %s; target: at most 2x).\n\n", lf/lm, pairs}' "$ROWS"
  fi
  echo "**Against Siril** (16 frames of 3000x2000 RGB 16-bit, noise 2%, a textured object in 6 frames;"
  echo "stacked at the frames' resolution; PSNR against the truth box-shrunk to that resolution):"
  echo
  echo "| tool | statistic | s | peak RSS MiB | PSNR dB |"
  echo "|---|---|---|---|---|"
  while IFS=$'\t' read -r name sec rss; do
    case $name in
      "superstack: mean alone, --normalize none") echo "| superstack | mean, --normalize none | $sec | $rss | $(psnr "$DIR/ss-plain/mean.tif") |" ;;
      "superstack: mean, median"*) echo "| superstack | all four, one run | $sec | $rss | mean $(psnr "$DIR/ss/mean.tif"), median $(psnr "$DIR/ss/median.tif"), sigma-clip $(psnr "$DIR/ss/sigma-clip.tif"), winsorized $(psnr "$DIR/ss/winsorized.tif") |" ;;
      "superstack: "*) s=${name#superstack: }; s=${s% alone}; echo "| superstack | $s | $sec | $rss | $(psnr "$DIR/ss-$s/$s.tif") |" ;;
      "Siril: convert"*) echo "| Siril | convert to FITS (once) | $sec | $rss | |" ;;
      "Siril: "*) s=${name#Siril: }; echo "| Siril | $s | $sec | $rss | $(psnr "$SI/$s.tif") |" ;;
    esac
  done <"$ROWS"
  echo
} >"$BENCH/robust-results.md"
echo "robust.sh: wrote $BENCH/robust-results.md"
render_results
