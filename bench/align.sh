#!/usr/bin/env bash
# bench/align.sh -- alignment: superstack align against Hugin's align_image_stack and the OpenCV
# alignments of the popular Python stacking scripts (bench/opencv_align.py: ORB + RANSAC as they
# run it, ORB given its best chance, and ECC), on synthetic bursts with known transforms, side by
# side in the same run.
#
# Per case (frame size x motion): 5 frames made by `superstack synth` (noise 1%); each tool aligns
# them to the first; precision is the RMS over a 16x16 grid of the distance between the estimated
# and the true mapping (input pixels), per frame; time per frame is wall time / 4; peak RSS from
# /usr/bin/time -v. Hugin's transforms come from its .pto (bench/pto_transforms.py).
# Motions: `rotation` (the camera turns about its axis by up to 3 degrees: Hugin's own model),
# `similarity` (shift 40 px, rotation 3 degrees, zoom 2%: a flat scene moved; Hugin's rotation
# model cannot follow a pure shift exactly, so it keeps a model error) and `bend` (the same, and
# every frame but the first bends by a smooth field of up to 1.5 px: `synth --local-motion`, what a
# single matrix cannot follow). superstack runs twice: the matrix alone, and with `--local-grid 32`
# (a displacement field per frame); the error then compares the whole maps, fields included.
# Writes bench/align-results.md (copied into RESULTS.md by report.py).
#
# usage: bench/align.sh [--sizes 6,24] [--work DIR]
set -euo pipefail

BENCH=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$BENCH/.." && pwd)
SS=${SUPERSTACK:-$REPO/build/superstack}
WORK=/tmp/superstack-bench/align
SIZES=6,24
while (($#)); do
  case $1 in
    --sizes) SIZES=$2; shift ;;
    --work) WORK=$2; shift ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "align.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

bash "$REPO/scripts/install-missing.sh" hugin-tools time python3-opencv
[ -x "$SS" ] || bash "$REPO/scripts/setup.sh"
mkdir -p "$WORK"
OUT=$BENCH/align-results.md
ROWS=$WORK/rows.tsv
: >"$ROWS"

# shellcheck source=bench/common.sh
source "$BENCH/common.sh"

# warm: every tool reads the frames from the page cache (otherwise the first to run pays for the
# disk), on a quiet machine.
warm() { cat "${frames[@]}" >/dev/null; wait_quiet; }

size_of() { case $1 in 6) echo 3000x2000 ;; 24) echo 6000x4000 ;; *) echo "$1" ;; esac; }

for size in ${SIZES//,/ }; do
  wh=$(size_of "$size")
  for motion in rotation similarity bend; do
    dir=$WORK/$size-$motion
    if [ ! -f "$dir/transforms.json" ]; then
      rm -rf "$dir"
      case $motion in
        rotation) flags="--max-shift 0 --max-rotation 3" ;;
        similarity) flags="--max-shift 40 --max-rotation 3 --max-scale 0.02" ;;
        bend) flags="--max-shift 40 --max-rotation 3 --max-scale 0.02 --local-motion 1.5" ;;
      esac
      # shellcheck disable=SC2086
      "$SS" synth -o "$dir" --frames 5 --size "$wh" --noise 0.01 --seed 5 $flags -q
    fi
    frames=("$dir"/frame_00{0,1,2,3,4}.tif)
    warm
    /usr/bin/time -v -o "$dir/ss.time" "$SS" align "${frames[@]}" -o "$dir/ss.json" -q
    warm
    /usr/bin/time -v -o "$dir/ss-local.time" "$SS" align "${frames[@]}" -o "$dir/ss-local.json" --local-grid 32 -q
    warm
    (cd "$dir" && /usr/bin/time -v -o hugin.time align_image_stack -m -f 50 -p hugin.pto \
      frame_000.tif frame_001.tif frame_002.tif frame_003.tif frame_004.tif >hugin.log 2>&1)
    python3 "$BENCH/pto_transforms.py" "$dir/hugin.pto" "$dir/hugin.json"
    for method in orb orb-tuned ecc; do
      warm
      /usr/bin/time -v -o "$dir/$method.time" /usr/bin/python3 "$BENCH/opencv_align.py" "$method" "$dir/$method.json" "${frames[@]}"
    done
    for tool in ss ss-local hugin orb orb-tuned ecc; do
      python3 - "$dir/transforms.json" "$dir/$tool.json" "$dir/$tool.time" "$wh" "$size" "$motion" "$tool" >>"$ROWS" <<'PY'
import json, math, re, sys
truth_file, est_file, time_file, wh, size, motion, tool = sys.argv[1:]
w, h = map(int, wh.split("x"))
def bilinear(d, x, y):
    # transform.hpp's DisplacementField::at: clamped grid coordinates, bilinear between nodes.
    u = min(max((x - d["left"]) / d["spacing"], 0), d["columns"] - 1)
    v = min(max((y - d["top"]) / d["spacing"], 0), d["rows"] - 1)
    i, j = min(int(u), max(0, d["columns"] - 2)), min(int(v), max(0, d["rows"] - 2))
    fu, fv = u - i, v - j
    i1, j1 = min(i + 1, d["columns"] - 1), min(j + 1, d["rows"] - 1)
    def at(values):
        n = d["columns"]
        top = values[j * n + i] * (1 - fu) + values[j * n + i1] * fu
        bottom = values[j1 * n + i] * (1 - fu) + values[j1 * n + i1] * fu
        return top * (1 - fv) + bottom * fv
    return at(d["dx"]), at(d["dy"])
def apply(f, x, y):
    # Reference p -> frame matrix(p + d(p)), d the frame's displacement field when it has one.
    m = f["matrix"]
    if "displacement" in f:
        dx, dy = bilinear(f["displacement"], x, y)
        x, y = x + dx, y + dy
    d = m[2][0] * x + m[2][1] * y + m[2][2]
    return ((m[0][0] * x + m[0][1] * y + m[0][2]) / d, (m[1][0] * x + m[1][1] * y + m[1][2]) / d)
truth = {f["file"].split("/")[-1]: f for f in json.load(open(truth_file))["frames"]}
errors, failed = [], 0
for f in json.load(open(est_file))["frames"]:
    name = f["file"].split("/")[-1]
    if name == "frame_000.tif":
        continue
    if f.get("status", "ok") != "ok":
        failed += 1  # a frame the tool says it could not align: counted, not scored
        continue
    t = truth[name]
    s = [sum((a - b) ** 2 for a, b in zip(apply(f, x, y), apply(t, x, y)))
         for x in [(w - 1) * i / 15 for i in range(16)] for y in [(h - 1) * j / 15 for j in range(16)]]
    errors.append(math.sqrt(sum(s) / len(s)))
text = open(time_file).read()
wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text).group(1).split(":")
seconds = sum(float(p) * 60 ** i for i, p in enumerate(reversed(wall)))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) / 1024
name = {"ss": "superstack align", "ss-local": "superstack align --local-grid 32", "hugin": "Hugin align_image_stack -m",
        "orb": "OpenCV ORB + RANSAC (the scripts')", "orb-tuned": "OpenCV ORB + RANSAC, tuned",
        "ecc": "OpenCV ECC homography"}[tool]
worst = f"{max(errors):.4f}" if errors else "-"
mean = f"{sum(errors) / len(errors):.4f}" if errors else "-"
print(f"{size} MP\t{motion}\t{name}\t{worst}\t{mean}\t{failed}\t{seconds / 4:.2f}\t{rss:.0f}")
PY
    done
  done
done

{
  echo "## Alignment: superstack align vs Hugin align_image_stack and OpenCV (ORB, ECC)"
  echo
  echo "Made by \`bench/align.sh\` on $(date -u +%Y-%m-%d) ($(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $("$SS" --version); $(align_image_stack 2>&1 | grep -m1 -o 'Version [^ ]*' || echo 'align_image_stack'))."
  echo "5 frames per case (noise 1%), aligned to the first. Error: RMS over a 16x16 grid of the distance"
  echo "between the estimated and true mappings, input pixels (worst and mean of the 4 frames). Time per"
  echo "frame: wall / 4, decoding included, the frames read from the page cache by every tool. Hugin: \`align_image_stack -m -f 50 -p\`, transforms read from"
  echo "its .pto by \`bench/pto_transforms.py\`. \`bend\`: the similarity motion and smooth bends of up to"
  echo "1.5 px (\`synth --local-motion 1.5\`); the error compares whole maps, displacement fields included."
  echo "OpenCV $(/usr/bin/python3 -c 'import cv2; print(cv2.__version__)') (\`bench/opencv_align.py\`, on 8-bit greyscale as the scripts read frames): ORB + RANSAC as"
  echo "the popular stacking scripts run it (500 features, cross-checked matches, RANSAC 5 px), ORB tuned"
  echo "(5000 features, Lowe's ratio test 0.75, RANSAC 3 px), and \`findTransformECC\` with a homography"
  echo "from the identity (50 iterations, eps 0.001). Time includes Python's start and OpenCV's import."
  echo "\"failed\": frames the tool itself gave up on (not scored); every other frame is scored as given."
  echo
  echo "| frames | motion | tool | worst error px | mean error px | failed | s per frame | peak RSS MiB |"
  echo "|---|---|---|---|---|---|---|---|"
  awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8}' "$ROWS"
  echo
} >"$OUT"
echo "align.sh: wrote $OUT"
render_results
