#!/usr/bin/env bash
# The demo: set up, make a synthetic 16-frame burst of the built-in resolution chart with handheld-like
# motion, align and stack it at 2x, stack it again by drizzle and with the true transforms, and score
# every result (and a single-frame upscale) against the chart.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bin=build/superstack
demo=demo-output
rm -rf "$demo"
mkdir -p "$demo"

echo "demo: synthesising a 16-frame burst (640x480, noise 2%, shifts to 30 px, rotations to 3 degrees, zoom 2%)"
"$bin" synth -o "$demo/burst" --frames 16 --size 640x480 --scale 2 --noise 0.02 --seed 1 \
  --max-shift 30 --max-rotation 3 --max-scale 0.02 -q

echo "demo: aligning and stacking it at 2x (mean and median, lanczos3)"
"$bin" run "$demo/burst"/frame_*.tif -o "$demo/stack" --memory 512M -v

echo "demo: alignment error against the true transforms (RMS over the frame, input pixels):"
python3 - "$demo/burst/transforms.json" "$demo/stack/transforms.json" <<'PY'
import json, math, sys
truth = {f["file"].split("/")[-1]: f["matrix"] for f in json.load(open(sys.argv[1]))["frames"]}
def apply(m, x, y):
    w = m[2][0] * x + m[2][1] * y + m[2][2]
    return ((m[0][0] * x + m[0][1] * y + m[0][2]) / w, (m[1][0] * x + m[1][1] * y + m[1][2]) / w)
worst = 0
for f in json.load(open(sys.argv[2]))["frames"]:
    t = truth[f["file"].split("/")[-1]]
    s = [sum((a - b) ** 2 for a, b in zip(apply(f["matrix"], x, y), apply(t, x, y)))
         for x in [639 * i / 15 for i in range(16)] for y in [479 * j / 15 for j in range(16)]]
    worst = max(worst, math.sqrt(sum(s) / len(s)))
print(f"  worst frame {worst:.4f} px")
PY

echo "demo: stacking it again with drizzle (each frame's own pixels dropped onto the 2x grid)"
"$bin" run "$demo/burst"/frame_*.tif -o "$demo/drizzle" --transforms "$demo/stack/transforms.json" --merge drizzle -q

echo "demo: stacking it with the true transforms (the oracle), and a single-frame upscale of the reference"
"$bin" run "$demo/burst"/frame_*.tif -o "$demo/oracle" --transforms "$demo/burst/transforms.json" -q
"$bin" run "$demo/burst/frame_000.tif" -o "$demo/single" --reduce median -q

echo
echo "PSNR / SSIM against the chart (higher is better):"
"$bin" score "$demo/single/median.tif" "$demo/burst/truth.tif" --crop 16 | sed 's/^/  single frame        /'
"$bin" score "$demo/stack/mean.tif" "$demo/burst/truth.tif" --crop 16 | sed 's/^/  aligned mean        /'
"$bin" score "$demo/stack/median.tif" "$demo/burst/truth.tif" --crop 16 | sed 's/^/  aligned median      /'
"$bin" score "$demo/oracle/median.tif" "$demo/burst/truth.tif" --crop 16 | sed 's/^/  oracle median       /'
"$bin" score "$demo/drizzle/mean.tif" "$demo/burst/truth.tif" --crop 16 | sed 's/^/  aligned drizzle     /'
echo
echo "demo: results are in $(pwd)/$demo/stack (mean.tif, median.tif, transforms.json); the burst is in $(pwd)/$demo/burst"
