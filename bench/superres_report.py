#!/usr/bin/env python3
"""superres_report.py -- the bookkeeping half of bench/superres.sh (standard library only).

  superres_report.py row ROWS CASE MODE SHARPEN TIMEFILE RC LOAD_BEFORE LOAD_AFTER SCORE_JSON NOTE
      appends one row: PSNR and SSIM from `superstack score --json` (luminance), wall time, CPU
      time (user + sys) and peak RSS from a `/usr/bin/time -v` report.
  superres_report.py render ROWS MACHINE_FILE INTRO_MD OUT_MD
      writes the results markdown: machine, the intro, one table per case (the last row of each
      case, mode and sharpen), the gains over the baseline and the single frame.
"""
import csv
import json
import os
import re
import sys

from report import parse_time

FIELDS = ["case", "mode", "sharpen", "psnr", "ssim", "wall_s", "cpu_s", "rss_mb", "load_before",
          "load_after", "status", "note"]
BASELINE = "interpolate + median"
SINGLE = "single frame, lanczos3"


def cpu_seconds(path):
    """User + system seconds from a `time -v` report."""
    total = 0.0
    with open(path, errors="replace") as f:
        for line in f:
            m = re.match(r"\s*(User|System) time \(seconds\): ([\d.]+)", line)
            if m:
                total += float(m.group(2))
    return total


def cmd_row(a):
    rows, case, mode, sharpen, timefile, rc, lb, la, score, note = a
    wall, rss, _, signal, _ = parse_time(timefile) if os.path.exists(timefile) else (None,) * 5
    row = dict(case=case, mode=mode, sharpen=sharpen, load_before=lb, load_after=la, note=note)
    row["status"] = "ok" if int(rc) == 0 else (f"killed by signal {signal}" if signal else f"exit {rc}")
    if wall is not None:
        row.update(wall_s=f"{wall:.1f}", cpu_s=f"{cpu_seconds(timefile):.1f}", rss_mb=f"{rss:.0f}")
    if row["status"] == "ok" and score:
        s = json.loads(score)
        row.update(psnr=f"{s['psnr']:.3f}", ssim=f"{s['ssim']:.4f}")
    new = not os.path.exists(rows)
    with open(rows, "a", newline="") as f:
        w = csv.DictWriter(f, FIELDS, delimiter="\t")
        if new:
            w.writeheader()
        w.writerow(row)
    print(f"superres: {case:12s} {mode:34s} {sharpen:5s} {row['status']:6s} PSNR {row.get('psnr', '-'):>7s} "
          f"SSIM {row.get('ssim', '-'):>6s}  wall {row.get('wall_s', '-'):>7s} s  CPU {row.get('cpu_s', '-'):>7s} s  "
          f"RSS {row.get('rss_mb', '-'):>5s} MiB  (load {lb} -> {la})", flush=True)


def render(a):
    rows_file, machine, intro, out = a
    with open(rows_file, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    last = {}
    for r in rows:  # a re-run replaces an older figure
        last[(r["case"], r["mode"], r["sharpen"])] = r
    md = ["## Superresolution: interpolate, drizzle and kernel against the truth, and Siril's drizzle", ""]
    md.append("Made by `bench/superres.sh` (see bench/README.md). Machine:")
    md.append("")
    with open(machine) as f:
        md += ["- " + l.rstrip("\n") for l in f if l.strip()]
    md.append("")
    with open(intro) as f:
        md.append(f.read().rstrip("\n"))
    md.append("")
    cases = []
    for (case, _, _) in last:
        if case not in cases:
            cases.append(case)
    for case in cases:
        crows = [r for k, r in last.items() if k[0] == case]
        md.append(f"### {case}")
        md.append("")
        md.append("| case | mode | sharpen | PSNR dB | SSIM | wall s | CPU s | peak RSS MiB | load before -> after | notes |")
        md.append("|---|---|---|---:|---:|---:|---:|---:|---|---|")
        for r in crows:
            status = "" if r["status"] == "ok" else f"**{r['status']}** "
            md.append(f"| {r['case']} | {r['mode']} | {r['sharpen']} | {r['psnr'] or '-'} | {r['ssim'] or '-'} | "
                      f"{r['wall_s'] or '-'} | {r['cpu_s'] or '-'} | {r['rss_mb'] or '-'} | "
                      f"{r['load_before']} -> {r['load_after']} | {status}{r['note']} |")
        md.append("")
        ref = {name: r for r in crows for name in [r["mode"]] if r["sharpen"] == "none" and r["psnr"]}
        base = ref.get(BASELINE)
        single = ref.get(SINGLE)
        if base or single:
            gains = []
            for r in crows:
                if not r["psnr"] or r["mode"] in (BASELINE, SINGLE) and r["sharpen"] == "none":
                    continue
                g = []
                if base:
                    g.append(f"{float(r['psnr']) - float(base['psnr']):+.2f} dB over {BASELINE}")
                if single:
                    g.append(f"{float(r['psnr']) - float(single['psnr']):+.2f} dB over the single frame")
                gains.append(f"- {r['mode']}, sharpen {r['sharpen']}: " + ", ".join(g))
            if gains:
                md.append("Gains in PSNR:")
                md.append("")
                md += gains
                md.append("")
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(md) + "\n")
    os.replace(tmp, out)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    {"row": cmd_row, "render": render}[cmd](args)


if __name__ == "__main__":
    main()
