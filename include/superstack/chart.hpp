// chart -- the built-in resolution test chart that `synth` photographs.
//
// Siemens stars, zone plates, line-pair groups in both orientations, frequency wedges, a slanted
// edge, fine text at several sizes, colour patches and smooth gradients, laid out on a grid of
// square cells that scales with the chart. Fine detail is tied to `pixel` (chart pixels per truth
// pixel), so every chart reaches the truth grid's Nyquist limit, whatever its size.
// Memory: a lazy libvips expression; only the text lines are rendered up front (a few lines of
// small text whose size depends on `pixel`, not on the chart size).
#pragma once

#include <vips/vips8>

namespace superstack {

// A width x height sRGB chart, 3 bands float in [0, 1], computed on demand. `pixel` is the size of
// one truth pixel in chart pixels (the supersampling factor when the chart is rendered above the
// truth resolution): stars, zone plates and wedges stop at the truth Nyquist limit, line pairs
// reach 2.2 truth pixels per pair, the smallest text is 5 truth pixels high. Hard edges are
// anti-aliased over one chart pixel. Throws Error(usage) below 32x32 or for pixel < 1.
vips::VImage render_chart(int width, int height, double pixel = 1);

} // namespace superstack
