#!/usr/bin/env bash
# bench/superres.sh -- superresolution: PSNR/SSIM against the truth, time, CPU and peak RSS of
# `superstack run --merge interpolate|drizzle|kernel`, each with `--sharpen none` and `auto`, and of
# a single frame upscaled by lanczos3, on bursts with known truth; and Siril's drizzle side by side.
#
# Per size (6: 16 frames of 3000x2000, 24: 16 frames of 6000x4000; scale 2, noise 1%):
# 1. "photo": `superstack synth --source` of a scene made from a real photograph at the truth's
#    resolution (the GoPro frame of ../shared/data/bursts, box-shrunk 4x, stretched, mirror-tiled:
#    bench/README.md), run with the true transforms (`--transforms burst/transforms.json`).
# 2. "stars": the same burst model made from a synthetic star field (bench/starfield.py), because
#    Siril 1.0's command-line `register` aligns on stars; Siril (`register -drizzle`, `stack`) and
#    superstack (its own alignment, drizzle and kernel) both align it themselves.
# Every run: /usr/bin/time -v (wall, user+sys CPU, peak RSS), `superstack score --crop 16` (PSNR and
# SSIM on luminance), the 1-minute load before and after. Writes bench/superres-results.md (copied
# into RESULTS.md by report.py) and the 256x256 crops of bench/gallery/.
#
# usage: bench/superres.sh [--sizes 6,24] [--siril-sizes 6,24] [--cases photo,stars]
#                          [--merges interpolate,drizzle,kernel] [--sharpens none,auto] [--memory 2G]
#                          [--work DIR] [--load-wait SECONDS] [--gallery-size 6] [--report-only]
set -euo pipefail

BENCH=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$BENCH/.." && pwd)
SS=${SUPERSTACK:-$REPO/build/superstack}
SHARED=${SUPERSTACK_SHARED:-$REPO/../shared/data}
PHOTO=$SHARED/bursts/underwater_gopro_12mp_4f/G0020185.JPG
WORK=/tmp/superstack-bench/superres
SIZES=6,24
SIRIL_SIZES=6,24
CASES=photo,stars
MERGES=interpolate,drizzle,kernel
SHARPENS=none,auto
MEMORY=2G
LOAD_WAIT=60
GALLERY_SIZE=6
GX=160 GY=64 # the gallery's 256x256 crop, truth pixels (the most detailed 256x256 of the tile; the same scene at every size)
RUN=1
while (($#)); do
  case $1 in
    --sizes) SIZES=$2; shift ;;
    --siril-sizes) SIRIL_SIZES=$2; shift ;;
    --cases) CASES=$2; shift ;;
    --merges) MERGES=$2; shift ;;
    --sharpens) SHARPENS=$2; shift ;;
    --memory) MEMORY=$2; shift ;;
    --work) WORK=$2; shift ;;
    --load-wait) LOAD_WAIT=$2; shift ;;
    --gallery-size) GALLERY_SIZE=$2; shift ;;
    --report-only) RUN=0 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "superres.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
want() { [[ ",$2," == *",$1,"* ]]; }

if [ ! -f "$PHOTO" ]; then
  echo "superres.sh: skipped: $PHOTO is missing (the scene is made from that real photograph; put"
  echo "  shared/data beside the repo, or set SUPERSTACK_SHARED to its data folder)"
  exit 0
fi
bash "$REPO/scripts/install-missing.sh" siril time libvips-tools python3-numpy
[ -x "$SS" ] || bash "$REPO/scripts/setup.sh"
# shellcheck source=bench/common.sh
source "$BENCH/common.sh"
mkdir -p "$WORK" "$BENCH/gallery"
ROWS=$WORK/rows.tsv
LOGS=$WORK/logs
mkdir -p "$LOGS"

size_of() { case $1 in 6) echo "3000 2000 6" ;; 24) echo "6000 4000 7" ;; *) echo "superres.sh: unknown size $1" >&2; exit 2 ;; esac; }

# make_source W H OUT: the photo box-shrunk 4x (4000x3000 -> 1000x750: JPEG blocks and softness
# averaged away, one source pixel per truth pixel), stretched linearly from its 0.5th to its 99th
# percentile to 16 bits, mirrored into a seamless 2000x1500 block, tiled and cropped to W x H.
make_source() {
  local w=$1 h=$2 out=$3 t lo hi; t=$(mktemp -d "$WORK/src.XXXXXX")
  vips shrink "$PHOTO" "$t/s8.v" 4 4
  lo=$(vips percent "$t/s8.v" 0.5); hi=$(vips percent "$t/s8.v" 99)
  vips cast "$PHOTO" "$t/f.v" float
  vips shrink "$t/f.v" "$t/s.v" 4 4
  vips linear -- "$t/s.v" "$t/l.v" "$(python3 -c "print(65535 / ($hi - $lo))")" "$(python3 -c "print(-$lo * 65535 / ($hi - $lo))")"
  vips flip "$t/l.v" "$t/lh.v" horizontal
  vips join "$t/l.v" "$t/lh.v" "$t/row.v" horizontal
  vips flip "$t/row.v" "$t/rowv.v" vertical
  vips join "$t/row.v" "$t/rowv.v" "$t/block.v" vertical
  vips replicate "$t/block.v" "$t/rep.v" $(((w + 1999) / 2000)) $(((h + 1499) / 1500))
  vips crop "$t/rep.v" "$t/c.v" 0 0 "$w" "$h"
  vips cast "$t/c.v" "$t/source.tif" ushort
  mv "$t/source.tif" "$out"
  rm -rf "$t"
}

make_starfield() {
  local w=$1 h=$2 out=$3
  /usr/bin/python3 "$BENCH/starfield.py" "$w" "$h" "$out.ppm" 3
  vips copy "$out.ppm" "$out.part.tif"
  rm "$out.ppm"; mv "$out.part.tif" "$out"
}

# burst DIR SOURCE SEED: 16 frames at scale 2, noise 1%, made once (kept for re-runs)
burst() {
  [ -f "$1/transforms.json" ] && return 0
  rm -rf "$1.part"
  echo "superres.sh: making $1"
  "$SS" synth -o "$1.part" --source "$2" --scale 2 --noise 0.01 --frames 16 --seed "$3" -q
  mv "$1.part" "$1"
}

# measure CASE MODE SHARPEN RESULT TRUTH NOTE COMMAND...: time -v the command, score RESULT, add a row
measure() {
  local case=$1 mode=$2 sharpen=$3 result=$4 truth=$5 note=$6; shift 6
  local slug; slug=$(printf '%s-%s-%s' "$case" "$mode" "$sharpen" | tr -c 'A-Za-z0-9-' '_')
  printf '# %s: %s, sharpen %s\n%s\n' "$case" "$mode" "$sharpen" "$*" >>"$WORK/commands.sh"
  sync
  wait_quiet "$LOAD_WAIT"
  local lb la rc=0 score=; lb=$(cut -d' ' -f1 /proc/loadavg)
  /usr/bin/time -v -o "$LOGS/$slug.time" "$@" >"$LOGS/$slug.log" 2>&1 || rc=$?
  la=$(cut -d' ' -f1 /proc/loadavg)
  if ((rc == 0)); then
    [ -z "$result" ] || score=$("$SS" score "$result" "$truth" --crop 16 --json)
  else
    note="${note:+$note; }$(grep -v '^\s*$' "$LOGS/$slug.log" | tail -1 | tr '\t|' '  ' | cut -c1-200)"
  fi
  python3 "$BENCH/superres_report.py" row "$ROWS" "$case" "$mode" "$sharpen" "$LOGS/$slug.time" "$rc" "$lb" "$la" "$score" "$note"
  LAST_RC=$rc
}

# gallery NAME IMAGE: the 256x256 crop at (GX, GY), 8-bit sRGB PNG, in bench/gallery/
gallery() {
  vips crop "$2" "$WORK/crop.v" "$GX" "$GY" 256 256
  vips colourspace "$WORK/crop.v" "$BENCH/gallery/$1.png" srgb
  rm -f "$WORK/crop.v"
}

# photo_case SIZE: the photograph-made burst, every mode with the true transforms
photo_case() {
  local size=$1 w h seed; read -r w h seed <<<"$(size_of "$size")"
  local d=$WORK/$size case="$size MP photo"
  mkdir -p "$d"
  [ -f "$d/source.tif" ] || make_source $((2 * w)) $((2 * h)) "$d/source.tif"
  burst "$d/burst" "$d/source.tif" "$seed"
  local B=$d/burst T=$d/burst/truth.tif
  local shot=0; [ "$size" = "$GALLERY_SIZE" ] && shot=1
  ((shot)) && gallery "truth" "$T"
  measure "$case" "single frame, lanczos3" none "$d/single/mean.tif" "$T" "the reference alone, --align none --kernel lanczos3 (libvips reduce)" \
    "$SS" run "$B/frame_000.tif" -o "$d/single" --align none --kernel lanczos3 --reduce mean --memory "$MEMORY" -q
  ((shot && LAST_RC == 0)) && gallery "single-lanczos3" "$d/single/mean.tif"
  rm -rf "$d/single"
  local merge sharpen stat out
  for merge in ${MERGES//,/ }; do
    for sharpen in ${SHARPENS//,/ }; do
      stat=mean; [ "$merge" = interpolate ] && stat=median
      out=$d/$merge-$sharpen
      local mode="$merge + $stat"
      measure "$case" "$mode" "$sharpen" "$out/$stat.tif" "$T" "" \
        "$SS" run "$B"/frame_*.tif -o "$out" --transforms "$B/transforms.json" --merge "$merge" --reduce "$stat" \
        --sharpen "$sharpen" --memory "$MEMORY" -q
      ((shot && LAST_RC == 0)) && gallery "$merge-sharpen-$sharpen" "$out/$stat.tif"
      rm -rf "$out"
    done
  done
}

# stars_case SIZE: the star-field burst; superstack and Siril each align it themselves
stars_case() {
  local size=$1 w h seed; read -r w h seed <<<"$(size_of "$size")"
  local d=$WORK/$size-stars case="$size MP stars"
  mkdir -p "$d"
  [ -f "$d/source.tif" ] || make_starfield $((2 * w)) $((2 * h)) "$d/source.tif"
  burst "$d/burst" "$d/source.tif" "$seed"
  local B=$d/burst T=$d/burst/truth.tif
  measure "$case" "single frame, lanczos3" none "$d/single/mean.tif" "$T" "" \
    "$SS" run "$B/frame_000.tif" -o "$d/single" --align none --kernel lanczos3 --reduce mean --memory "$MEMORY" -q
  measure "$case" "superstack drizzle + mean, own alignment" none "$d/ss-drizzle/mean.tif" "$T" "similarity alignment" \
    "$SS" run "$B"/frame_*.tif -o "$d/ss-drizzle" --align similarity --merge drizzle --reduce mean --memory "$MEMORY" -q
  rm -rf "$d/single" "$d/ss-drizzle"
  # Siril: the TIFFs to a 16-bit FITS sequence (timed apart), then star registration with its
  # drizzle (each registered frame up-scaled 2x) and a plain mean (no rejection, no normalisation).
  local si=$d/siril
  rm -rf "$si"; mkdir -p "$si/in"
  ln -s "$B"/frame_*.tif "$si/in/"
  printf 'requires 1.0.0\nsetext fit\nset16bits\nconvert frame -out=%s/seq\n' "$si" >"$si/convert.ssf"
  printf 'requires 1.0.0\nsetext fit\nset16bits\nregister frame_ -drizzle -transf=similarity\nstack r_frame_ rej n -nonorm -out=%s/drizzle\nload %s/drizzle\nsavetif %s/drizzle\n' \
    "$si" "$si" "$si" >"$si/drizzle.ssf"
  measure "$case" "Siril: convert to FITS" none "" "" "once, before registration" siril-cli -d "$si/in" -s "$si/convert.ssf"
  measure "$case" "Siril: register -drizzle, stack mean" none "$si/drizzle.tif" "$T" "star registration (similarity), 2x up-scale, mean" \
    siril-cli -d "$si/seq" -s "$si/drizzle.ssf"
  rm -rf "$si/seq"
  # Siril's 2x grid puts output pixel X at input coordinate X/2, the truth's (and superstack's) at
  # (X + 0.5)/2 - 0.5: half an output pixel apart (measured by phase correlation: 0.5 px). The same
  # output is scored again moved by that half pixel (bicubic), with the same run's time.
  vips affine "$si/drizzle.tif" "$si/drizzle-centred.tif" "1 0 0 1" --odx 0.5 --ody 0.5 --interpolate bicubic \
    --oarea "0 0 $((2 * w)) $((2 * h))"
  python3 "$BENCH/superres_report.py" row "$ROWS" "$case" "Siril: the same, moved 0.5 px to the truth's grid" none \
    "$LOGS/$(printf '%s-%s-%s' "$case" "Siril: register -drizzle, stack mean" none | tr -c 'A-Za-z0-9-' '_').time" 0 "" "" \
    "$("$SS" score "$si/drizzle-centred.tif" "$T" --crop 16 --json)" "scored again after vips affine --odx 0.5 --ody 0.5 (bicubic)"
  measure "$case" "superstack kernel + mean, own alignment" auto "$d/ss-kernel/mean.tif" "$T" "similarity alignment" \
    "$SS" run "$B"/frame_*.tif -o "$d/ss-kernel" --align similarity --merge kernel --reduce mean --sharpen auto --memory "$MEMORY" -q
  rm -rf "$d/ss-kernel"
}

if ((RUN)); then
  [ -f "$WORK/commands.sh" ] || : >"$WORK/commands.sh"
  machine_facts "$WORK" >"$WORK/machine.txt"
  echo "Siril: $(siril-cli --version 2>&1 | head -1); superstack runs: --memory $MEMORY, $(nproc) threads; load wait up to ${LOAD_WAIT}s" >>"$WORK/machine.txt"
  for size in ${SIZES//,/ }; do
    want photo "$CASES" && photo_case "$size"
    want stars "$CASES" && want "$size" "$SIRIL_SIZES" && stars_case "$size"
    python3 "$BENCH/superres_report.py" render "$ROWS" "$WORK/machine.txt" "$BENCH/superres-intro.md" "$BENCH/superres-results.md"
  done
fi
python3 "$BENCH/superres_report.py" render "$ROWS" "$WORK/machine.txt" "$BENCH/superres-intro.md" "$BENCH/superres-results.md"
echo "superres.sh: wrote $BENCH/superres-results.md"
render_results
