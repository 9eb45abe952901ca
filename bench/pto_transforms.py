#!/usr/bin/env python3
"""pto_transforms -- Hugin's alignment (a .pto from align_image_stack) as superstack transforms.

align_image_stack models each frame as the reference camera turned by yaw, pitch and roll, with its
own field of view (-m). For a rectilinear lens that maps the reference's pixels to the frame's by the
homography H = K_i R K_ref^-1, with K = [[f, 0, cx], [0, f, cy], [0, 0, 1]], f = (w/2) / tan(v/2)
and R = Rz(-roll) Rx(-pitch) Ry(-yaw) in camera axes (x right, y down, z forward): panotools applies
yaw first, then pitch and roll. Signs: a positive yaw moves the content left, a positive pitch
moves it down, a positive roll turns it anticlockwise on screen (checked on a synthetic burst with
known transforms: the wrong sign of any one gives errors of tens of pixels, the right ones a few
tenths; see bench/README.md).

usage: pto_transforms.py PROJECT.pto OUT.json   (writes the transforms file schema, version 1)
"""
import json
import math
import re
import sys


def rot_x(t):
    c, s = math.cos(t), math.sin(t)
    return [[1, 0, 0], [0, c, -s], [0, s, c]]


def rot_y(t):
    c, s = math.cos(t), math.sin(t)
    return [[c, 0, s], [0, 1, 0], [-s, 0, c]]


def rot_z(t):
    c, s = math.cos(t), math.sin(t)
    return [[c, -s, 0], [s, c, 0], [0, 0, 1]]


def mul(a, b):
    return [[sum(a[i][k] * b[k][j] for k in range(3)) for j in range(3)] for i in range(3)]


def intrinsics(w, h, hfov):
    f = (w / 2) / math.tan(math.radians(hfov) / 2)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    k = [[f, 0, cx], [0, f, cy], [0, 0, 1]]
    k_inv = [[1 / f, 0, -cx / f], [0, 1 / f, -cy / f], [0, 0, 1]]
    return k, k_inv


def images(pto):
    out = []
    for line in open(pto):
        if not line.startswith("i "):
            continue
        fields = {}
        for token in re.findall(r'(\w+?)=?(-?[\d.eE+-]+|"[^"]*")', line[2:]):
            fields.setdefault(token[0], token[1])
        out.append({"w": int(fields["w"]), "h": int(fields["h"]), "v": float(fields["v"]),
                    "y": float(fields["y"]), "p": float(fields["p"]), "r": float(fields["r"]),
                    "n": fields["n"].strip('"')})
    return out


def main():
    pto, out = sys.argv[1], sys.argv[2]
    imgs = images(pto)
    ref = imgs[0]
    _, kr_inv = intrinsics(ref["w"], ref["h"], ref["v"])
    # Relative to the first image (align_image_stack anchors it, but do not rely on that).
    r_ref = mul(rot_z(-math.radians(ref["r"])), mul(rot_x(-math.radians(ref["p"])), rot_y(-math.radians(ref["y"]))))
    r_ref_t = [[r_ref[j][i] for j in range(3)] for i in range(3)]
    frames = []
    for im in imgs:
        ki, _ = intrinsics(im["w"], im["h"], im["v"])
        r = mul(rot_z(-math.radians(im["r"])), mul(rot_x(-math.radians(im["p"])), rot_y(-math.radians(im["y"]))))
        h = mul(ki, mul(mul(r, r_ref_t), kr_inv))
        h = [[v / h[2][2] for v in row] for row in h]
        frames.append({"file": im["n"], "matrix": h})
    json.dump({"version": 1, "reference": 0, "frames": frames}, open(out, "w"), indent=1)


if __name__ == "__main__":
    main()
