#!/usr/bin/python3
"""starfield.py -- a synthetic star field at truth resolution, for bench/superres.sh.

  starfield.py WIDTH HEIGHT OUT.ppm [SEED]

Writes a 16-bit binary PPM (P6, RGB): a dark sky (5% of full scale) with about one star per
2000 truth pixels, each a 2-D Gaussian of sigma 0.9 to 2.2 truth pixels (0.45 to 1.1 frame pixels
at scale 2: stars sharper than the frames' sampling, as in undersampled astrophotography, where
drizzle is meant to help), peak brightness from a power law (many faint stars, few bright ones,
up to 90% of full scale), and a slight colour per star. Siril's `register` finds stars, so the
comparison burst with Siril is made from this scene (bench/README.md).
"""
import sys

import numpy as np


def main():
    w, h, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    rng = np.random.default_rng(int(sys.argv[4]) if len(sys.argv) > 4 else 1)
    img = np.full((h, w, 3), 0.05, dtype=np.float32)
    n = w * h // 2000
    xs = rng.uniform(8, w - 8, n)
    ys = rng.uniform(8, h - 8, n)
    sigmas = rng.uniform(0.9, 2.2, n)
    peaks = np.minimum(0.9, 0.05 * rng.pareto(1.5, n) + 0.04)
    tints = rng.uniform(0.8, 1.0, (n, 3))
    r = 7  # 3 sigma of the widest star, rounded up
    offs = np.arange(-r, r + 1)
    for x, y, s, p, t in zip(xs, ys, sigmas, peaks, tints):
        ix, iy = int(round(x)), int(round(y))
        gx = np.exp(-0.5 * ((ix + offs - x) / s) ** 2)
        gy = np.exp(-0.5 * ((iy + offs - y) / s) ** 2)
        star = (p * np.outer(gy, gx))[:, :, None] * t[None, None, :]
        img[iy - r:iy + r + 1, ix - r:ix + r + 1] += star
    data = np.round(np.clip(img, 0, 1) * 65535).astype(">u2")
    with open(out, "wb") as f:
        f.write(f"P6\n{w} {h}\n65535\n".encode())
        f.write(data.tobytes())


if __name__ == "__main__":
    main()
