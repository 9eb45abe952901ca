#!/usr/bin/env bash
# bench/run.sh -- times superstack against the vips CLI and ImageMagick on synthetic bursts.
#
# Makes 16-frame stacks of about 6, 24 and 100 MP (16-bit RGB TIFF) and an 8-frame 250 MP
# 16-bit grey stack (1 GP outputs at scale 2) with the vips CLI, in a work folder outside the
# repo; times each tool with /usr/bin/time -v (wall clock, peak RSS); writes bench/RESULTS.md.
# See bench/README.md.
#
# usage: bench/run.sh [--sizes 6,24,24jpeg,100,gp] [--quick] [--work DIR] [--no-peers]
#                     [--skip ss2g,ssmean,vips,im] [--im-timeout SECONDS] [--results FILE]
#                     [--fresh] [--clean]
set -euo pipefail

BENCH=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$BENCH/.." && pwd)
SS=${SUPERSTACK:-$REPO/build/superstack}
WORK=/tmp/superstack-bench
SIZES=6,24,24jpeg,100,gp
PEERS=1
IM_TIMEOUT=1800                      # seconds per ImageMagick case
CAP_BYTES=$((20 * 1024 ** 3))        # address-space cap for the peers (prlimit --as)
RESULTS=$BENCH/RESULTS.md
FRESH=0
CLEAN=0
SKIP=
LOAD_MAX=0.7
LOAD_WAIT=60

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }
while (($#)); do
  case $1 in
    --sizes) SIZES=$2; shift ;;
    --quick) SIZES=6,24 ;;
    --work) WORK=$2; shift ;;
    --no-peers) PEERS=0 ;;
    --skip) SKIP=$2; shift ;;     # runs to leave out: ss2g, ssmean, vips, im (comma-separated)
    --im-timeout) IM_TIMEOUT=$2; shift ;;
    --results) RESULTS=$2; shift ;;
    --fresh) FRESH=1 ;;           # forget earlier rows in $WORK/results.tsv
    --clean) CLEAN=1 ;;           # delete the generated stacks when done
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
want() { [[ ",$SIZES," == *",$1,"* ]]; }
skip() { [[ ",$SKIP," == *",$1,"* ]]; }

# --- 1. what we need ------------------------------------------------------------------------
bash "$REPO/scripts/install-missing.sh" imagemagick libvips-tools time
# shellcheck source=bench/common.sh
source "$BENCH/common.sh"
[ -x "$SS" ] || bash "$REPO/scripts/setup.sh"
IM=/usr/bin/convert                  # the real ImageMagick 6, not a stand-in earlier in PATH

mkdir -p "$WORK/logs" "$WORK/out" "$WORK/im/tmp"
TSV=$WORK/results.tsv
CMDS=$WORK/commands.sh
MACHINE=$WORK/machine.txt
if ((FRESH)) || [ ! -f "$TSV" ]; then rm -f "$TSV"; : >"$CMDS"; fi

# ImageMagick's Debian policy caps memory at 256 MiB and area at 128 MP; a policy file found
# through MAGICK_CONFIGURE_PATH takes precedence, so IM may use RAM (the 20 GiB cap is enforced
# separately with prlimit --as). Disk spill goes to $WORK/im/tmp.
cat >"$WORK/im/policy.xml" <<'EOF'
<policymap>
  <policy domain="resource" name="memory" value="20GiB"/>
  <policy domain="resource" name="map" value="20GiB"/>
  <policy domain="resource" name="area" value="64GP"/>
  <policy domain="resource" name="disk" value="16GiB"/>
  <policy domain="resource" name="width" value="256KP"/>
  <policy domain="resource" name="height" value="256KP"/>
</policymap>
EOF

{
  machine_facts "$WORK"
  echo "ImageMagick: $($IM -version | sed -n '1s/^Version: //p')"
} >"$MACHINE"

render() { python3 "$BENCH/report.py" render "$TSV" "$MACHINE" "$CMDS" "$RESULTS" "$BENCH/notes.md"; }
log_cmd() { printf '%s\n' "$1" | sed "s#$WORK#\$W#g; s#$SS#\$SS#g" >>"$CMDS"; }

load1() { cut -d' ' -f1 /proc/loadavg; }
wait_load() {
  local t=0
  while awk -v l="$(load1)" -v m="$LOAD_MAX" 'BEGIN{exit !(l >= m)}' && ((t < LOAD_WAIT)); do
    sleep 5; t=$((t + 5))
  done
}

# timed CASE TOOL OUT_MP FRAMES NOTE COMMAND -- runs COMMAND (a bash string) under time -v
timed() {
  local case=$1 tool=$2 mp=$3 n=$4 note=$5 cmd=$6
  local slug; slug=$(printf '%s' "$tool" | tr -c 'A-Za-z0-9' '_')
  local tf=$WORK/logs/$case.$slug.time lf=$WORK/logs/$case.$slug.log
  echo "# case $case: $tool" >>"$CMDS"; log_cmd "$cmd"
  sync
  wait_load
  local lb la rc; lb=$(cut -d' ' -f1-3 /proc/loadavg)
  set +e
  /usr/bin/time -v -o "$tf" bash -c "$cmd" >"$lf" 2>&1
  rc=$?
  set -e
  la=$(cut -d' ' -f1-3 /proc/loadavg)
  if ((rc != 0)); then
    local why; why=$(grep -v '^\s*$' "$lf" | grep -iv 'warning' | tail -2 | tr '\n\t|' '   ' | cut -c1-200)
    if ((rc == 124)); then note="${note:+$note; }did not finish: timeout after ${IM_TIMEOUT}s"
    elif grep -qiE 'memory allocation failed|cache resources exhausted|out of memory|cannot allocate|std::bad_alloc' "$lf"; then
      note="${note:+$note; }did not finish: out of memory under the $((CAP_BYTES / 1024 ** 3)) GiB address-space cap ($why)"
    else note="${note:+$note; }exit $rc: $why"; fi
  fi
  python3 "$BENCH/report.py" record "$TSV" "$case" "$tool" "$mp" "$n" "$tf" "$rc" "$lb" "$la" "$note" "$cmd"
}

# --- 2. test stacks ---------------------------------------------------------------------------
# make_stack NAME W H BANDS N: a blurred gaussnoise texture (cast to ushort), then N frames, each
# an affine of it: subpixel shifts on a quarter-pixel grid, a 0.1 degree rotation on frames 3, 9, 14.
make_stack() {
  local name=$1 w=$2 h=$3 bands=$4 n=$5
  local d=$WORK/stacks/$name
  [ -f "$d/.done" ] && return 0
  rm -rf "$d"; mkdir -p "$d"
  echo "bench: making $name: $n frames of ${w}x${h}x$bands 16-bit TIFF"
  local m=64 bw=$((w + 128)) bh=$((h + 128))
  {
    echo "# stack $name"
    echo "vips gaussnoise \$W/stacks/$name/noise.v $((bw * bands)) $bh --mean 0 --sigma 1"
    ((bands > 1)) && echo "vips bandfold \$W/stacks/$name/noise.v \$W/stacks/$name/fold.v --factor $bands"
    echo "vips gaussblur \$W/stacks/$name/fold.v \$W/stacks/$name/blur.v 1.5"
    echo "vips linear \$W/stacks/$name/blur.v \$W/stacks/$name/lin.v 40000 32768"
    echo "vips cast \$W/stacks/$name/lin.v \$W/stacks/$name/base.v ushort"
    echo "# frame i: vips affine base.v frame_i.tif[compression=none] \"a b c d\" --interpolate bicubic --oarea \"0 0 $w $h\" --odx X --ody Y"
  } >>"$CMDS"
  vips gaussnoise "$d/noise.v" $((bw * bands)) $bh --mean 0 --sigma 1
  if ((bands > 1)); then vips bandfold "$d/noise.v" "$d/fold.v" --factor "$bands"; rm "$d/noise.v"
  else mv "$d/noise.v" "$d/fold.v"; fi
  vips gaussblur "$d/fold.v" "$d/blur.v" 1.5; rm "$d/fold.v"
  vips linear "$d/blur.v" "$d/lin.v" 40000 32768; rm "$d/blur.v"   # blurred unit noise has sigma ~0.19
  vips cast "$d/lin.v" "$d/base.v" ushort; rm "$d/lin.v"
  local i
  for ((i = 0; i < n; i++)); do
    local p; p=$(awk -v i="$i" -v w="$w" -v h="$h" -v bw="$bw" -v bh="$bh" 'BEGIN{
      sx = (i % 4) * 0.25 + 0.1; sy = int(i / 4) * 0.25 + 0.05
      deg = (i == 3) ? 0.1 : (i == 9) ? -0.1 : (i == 14) ? 0.07 : 0
      t = deg * 3.14159265358979 / 180; a = cos(t); b = -sin(t); c = sin(t); dd = cos(t)
      cx = bw / 2; cy = bh / 2
      printf "%.12f %.12f %.12f %.12f|%.6f|%.6f", a, b, c, dd, w / 2 + sx - (a * cx + b * cy), h / 2 + sy - (c * cx + dd * cy) }')
    local mat=${p%%|*} rest=${p#*|}
    local odx=${rest%%|*} ody=${rest#*|}
    echo "#   frame $i: \"$mat\" --odx $odx --ody $ody" >>"$CMDS"
    vips affine "$d/base.v" "$d/frame_$(printf %02d "$i").tif[compression=none]" "$mat" \
      --interpolate bicubic --oarea "0 0 $w $h" --odx "$odx" --ody "$ody"
  done
  rm "$d/base.v"
  touch "$d/.done"
}

make_jpeg() {  # the 24 MP stack as 8-bit JPEG Q90 (most significant byte of each sample)
  local d=$WORK/stacks/24jpeg
  [ -f "$d/.done" ] && return 0
  rm -rf "$d"; mkdir -p "$d"
  echo "# stack 24jpeg: for each frame: vips msb \$W/stacks/24/frame_NN.tif \$W/stacks/24jpeg/frame_NN.jpg[Q=90]" >>"$CMDS"
  local f
  for f in "$WORK"/stacks/24/frame_*.tif; do
    vips msb "$f" "$d/$(basename "${f%.tif}").jpg[Q=90]"
  done
  touch "$d/.done"
}

free_gb() { df --output=avail -B1G "$WORK" | tail -1 | tr -d ' '; }

# --- 3. one case --------------------------------------------------------------------------------
# run_case CASE W H BANDS N EXT
run_case() {
  local case=$1 w=$2 h=$3 bands=$4 n=$5 ext=$6
  local frames=("$WORK"/stacks/"$case"/frame_*."$ext")
  local ow=$((w * 2)) oh=$((h * 2))
  local mp; mp=$(awk -v w=$ow -v h=$oh 'BEGIN{printf "%.3f", w * h / 1e6}')
  local out=$WORK/out/$case
  rm -rf "$out"; mkdir -p "$out"
  local flist; flist=$(printf '%s ' "${frames[@]}")

  timed "$case" "superstack --memory 512M" "$mp" "$n" "mean+median" \
    "$SS run $flist-o $out/ss512 --align none --memory 512M --reduce mean,median -q"
  [ "$case" = 6 ] || rm -rf "$out/ss512"   # kept only for the agreement check
  render
  if [ "$case" = 24 ] && ! skip ss2g; then
    timed "$case" "superstack --memory 2G" "$mp" "$n" "mean+median" \
      "$SS run $flist-o $out/ss2g --align none --memory 2G --reduce mean,median -q"
    rm -rf "$out/ss2g"
  fi
  if [ "$case" = 24 ] && ! skip ssmean; then
    timed "$case" "superstack --memory 512M, mean only" "$mp" "$n" "mean only" \
      "$SS run $flist-o $out/ssmean --align none --memory 512M --reduce mean -q"
    rm -rf "$out/ssmean"
    render
  fi
  [ "$case" = 24jpeg ] && { rm -rf "$out"; render; return 0; }
  ((PEERS)) || { rm -rf "$out"; return 0; }

  # vips CLI chain: resize each frame, bandrank for the (upper-middle) median, sum + linear for
  # the mean; needs the upscaled frames on disk (.v, bands x 2 bytes each).
  local upx_gb; upx_gb=$(awk -v mp="$mp" -v b="$bands" -v n="$n" 'BEGIN{printf "%d", mp * 1e6 * b * 2 * n / 2^30 + 1}')
  local mid=$((n / 2)) vd=$out/vips
  if skip vips; then :
  elif ((upx_gb + 8 > $(free_gb))); then
    python3 "$BENCH/report.py" note "$TSV" "$case" "vips CLI chain" skipped \
      "skipped: the upscaled frames need ${upx_gb} GiB on disk, $(free_gb) GiB free" ""
  else
    local ups="" i
    for ((i = 0; i < n; i++)); do ups+="$vd/up_$i.v "; done
    local c="set -e; mkdir -p $vd; "
    for ((i = 0; i < n; i++)); do c+="vips resize ${frames[$i]} $vd/up_$i.v 2 --kernel lanczos3; "; done
    c+="vips bandrank \"${ups% }\" $vd/median.tif --index $mid; "
    c+="vips sum \"${ups% }\" $vd/sum.v; vips linear $vd/sum.v $vd/meanf.v $(awk -v n="$n" 'BEGIN{print 1 / n}') 0; "
    c+="vips round $vd/meanf.v $vd/meanr.v rint; vips cast $vd/meanr.v $vd/mean.tif ushort"
    timed "$case" "vips CLI chain" "$mp" "$n" \
      "resize lanczos3 to .v, bandrank --index $mid (upper-middle, not an exact even-N median), sum/linear/round/cast; ${upx_gb} GiB of .v temporaries" "$c"
    rm -f "$vd"/*.v
  fi
  render

  # ImageMagick: one convert for both outputs (the resize is done once, the mean from a clone).
  # Pixel cache: 8 bytes per pixel (Q16 RGBA) for each resized frame, all held at once.
  local im_gb; im_gb=$(awk -v mp="$mp" -v n="$n" 'BEGIN{printf "%.1f", mp * 1e6 * 8 * (n + 1) / 2^30}')
  if skip im; then :
  elif awk -v a="$im_gb" -v c="$((CAP_BYTES / 1024 ** 3))" 'BEGIN{exit !(a > c)}'; then
    python3 "$BENCH/report.py" note "$TSV" "$case" "ImageMagick convert" skipped \
      "skipped: estimated ${im_gb} GiB of pixel cache (8 B/pixel x (frames + 1) at output size) > 20 GiB cap" ""
  else
    mkdir -p "$out/im"
    timed "$case" "ImageMagick convert" "$mp" "$n" \
      "-filter Lanczos -resize 200%, -evaluate-sequence mean and median in one convert; est. ${im_gb} GiB pixel cache; 20 GiB address-space cap" \
      "MAGICK_CONFIGURE_PATH=$WORK/im MAGICK_TMPDIR=$WORK/im/tmp timeout $IM_TIMEOUT prlimit --as=$CAP_BYTES $IM $flist-filter Lanczos -resize 200% \\( -clone 0--1 -evaluate-sequence mean -depth 16 -write $out/im/mean.tif +delete \\) -evaluate-sequence median -depth 16 $out/im/median.tif"
    rm -f "$WORK"/im/tmp/*
  fi
  render
}

# --- 4. agreement ----------------------------------------------------------------------------
# diff_stats CASE LABEL A B: max and mean |A - B|, whole image and without a 16-pixel border
diff_stats() {
  local case=$1 label=$2 a=$3 b=$4
  local t=$WORK/out/$case/diff
  mkdir -p "$t"
  vips subtract "$a" "$b" "$t/d.v"; vips abs "$t/d.v" "$t/a.v"
  local W H; W=$(vipsheader -f width "$t/a.v"); H=$(vipsheader -f height "$t/a.v")
  vips extract_area "$t/a.v" "$t/i.v" 16 16 $((W - 32)) $((H - 32))
  local s
  s="whole image: max $(vips max "$t/a.v"), mean $(vips avg "$t/a.v" | awk '{printf "%.3f", $1}'); "
  s+="without a 16-px border: max $(vips max "$t/i.v"), mean $(vips avg "$t/i.v" | awk '{printf "%.3f", $1}')"
  python3 "$BENCH/report.py" check "$TSV" "$case" "$label" "$s"
  echo "bench: $case $label: $s"
  echo "# check ($case) $label: vips subtract A B d.v; vips abs d.v a.v; vips max a.v; vips avg a.v (and on a 16-px inset)" >>"$CMDS"
  rm -rf "$t"
}

# --- 5. the cases -----------------------------------------------------------------------------
echo "bench: work folder $WORK, cases $SIZES"
if want 6; then
  make_stack 6 3000 2000 3 16
  run_case 6 3000 2000 3 16 tif
  o=$WORK/out/6
  if [ -f "$o/vips/median.tif" ] && [ -f "$o/ss512/median.tif" ]; then
    diff_stats 6 "superstack median vs vips bandrank upper-middle" "$o/ss512/median.tif" "$o/vips/median.tif"
    diff_stats 6 "superstack mean vs vips mean" "$o/ss512/mean.tif" "$o/vips/mean.tif"
  fi
  if [ -f "$o/im/median.tif" ] && [ -f "$o/ss512/median.tif" ]; then
    diff_stats 6 "superstack median vs ImageMagick median" "$o/ss512/median.tif" "$o/im/median.tif"
    diff_stats 6 "superstack mean vs ImageMagick mean" "$o/ss512/mean.tif" "$o/im/mean.tif"
  fi
  render
  rm -rf "$o"
fi
if want 24 || want 24jpeg; then make_stack 24 6000 4000 3 16; fi
if want 24; then run_case 24 6000 4000 3 16 tif; rm -rf "$WORK/out/24"; fi
if want 24jpeg; then make_jpeg; run_case 24jpeg 6000 4000 3 16 jpg; fi
if want 100; then make_stack 100 12240 8160 3 16; run_case 100 12240 8160 3 16 tif; rm -rf "$WORK/out/100"; fi
if want gp; then make_stack gp 15812 15812 1 8; run_case gp 15812 15812 1 8 tif; rm -rf "$WORK/out/gp"; fi
render
echo "bench: wrote $RESULTS"
if ((CLEAN)); then rm -rf "$WORK/stacks" "$WORK/out" "$WORK/im/tmp"; echo "bench: deleted the stacks in $WORK"; fi
