#!/usr/bin/python3
"""opencv_align.py -- the OpenCV alignments Python users stack with, as a peer for bench/align.sh.

  opencv_align.py orb|orb-tuned|ecc OUT.json REFERENCE FRAME...

Aligns every FRAME to REFERENCE the way the popular OpenCV stacking scripts do, and writes the
result in superstack's transforms schema (each frame's matrix maps reference pixels to frame pixels,
pixel centres at integer coordinates, as OpenCV's keypoints and warps have them), so that
bench/align.sh scores it like superstack's and Hugin's:

- orb: ORB keypoints (OpenCV's defaults: 500 features), brute-force Hamming matching with a cross
  check, and a RANSAC homography (reprojection threshold 5 px), on the 8-bit greyscale frames.
- orb-tuned: the same given its best chance: 5000 features, the two nearest matches of each with
  Lowe's ratio test (0.75), and a RANSAC threshold of 3 px.
- ecc: findTransformECC with a homography (the enhanced correlation coefficient, iterated from the
  identity: 50 iterations or a step below 0.001, OpenCV's defaults) on the frames as float greyscale.

A frame either method cannot align (too few matches, ECC not converging) gets status "rejected" and
the reason; its error is then not scored.
"""
import json
import sys

import cv2
import numpy as np


def grey8(path):
    image = cv2.imread(path, cv2.IMREAD_GRAYSCALE)  # 16-bit frames come down to 8 bits, as the scripts read them
    if image is None:
        raise SystemExit(f"opencv_align.py: cannot read {path}")
    return image


def orb_matrices(reference, frames, tuned=False):
    orb = cv2.ORB_create(nfeatures=5000) if tuned else cv2.ORB_create()
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=not tuned)
    ref_kp, ref_des = orb.detectAndCompute(grey8(reference), None)
    for path in frames:
        kp, des = orb.detectAndCompute(grey8(path), None)
        if des is None or ref_des is None:
            yield None, "no ORB keypoints"
            continue
        if tuned:
            pairs = matcher.knnMatch(ref_des, des, k=2)
            matches = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.75 * p[1].distance]
        else:
            matches = matcher.match(ref_des, des)
        if len(matches) < 4:
            yield None, f"only {len(matches)} ORB matches"
            continue
        src = np.float32([ref_kp[m.queryIdx].pt for m in matches]).reshape(-1, 1, 2)
        dst = np.float32([kp[m.trainIdx].pt for m in matches]).reshape(-1, 1, 2)
        m, _ = cv2.findHomography(src, dst, cv2.RANSAC, 3.0 if tuned else 5.0)  # reference -> frame
        yield (m, None) if m is not None else (None, "no homography found")


def ecc_matrices(reference, frames):
    template = grey8(reference).astype(np.float32) / 255
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-3)
    for path in frames:
        warp = np.eye(3, dtype=np.float32)
        try:
            # input(W x) ~ template(x): W maps reference pixels to frame pixels.
            _, warp = cv2.findTransformECC(template, grey8(path).astype(np.float32) / 255, warp,
                                           cv2.MOTION_HOMOGRAPHY, criteria, None, 5)
            yield warp.astype(np.float64), None
        except cv2.error as e:
            yield None, f"ECC failed: {str(e).strip().splitlines()[-1]}"


def main():
    method, out, reference, frames = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    estimate = {"orb": orb_matrices, "orb-tuned": lambda r, f: orb_matrices(r, f, tuned=True), "ecc": ecc_matrices}[method]
    entries = [{"file": reference, "matrix": np.eye(3).tolist(), "status": "ok"}]
    for path, (m, why) in zip(frames, estimate(reference, frames)):
        entry = {"file": path, "matrix": (m / m[2, 2]).tolist() if m is not None else np.eye(3).tolist()}
        entry.update({"status": "ok"} if m is not None else {"status": "rejected", "reason": why})
        entries.append(entry)
    with open(out, "w") as f:
        json.dump({"version": 1, "reference": 0, "frames": entries}, f, indent=1)


if __name__ == "__main__":
    main()
