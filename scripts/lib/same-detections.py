#!/usr/bin/env python3
"""Whether two runs' JSON lines hold the same detections, frame by frame, by the bar the int8
rewrite is held to (edgecam/costlens/int8_check.py): each detection of one run matched by one of
the other's with the same label and a box of IoU >= 0.9 (>= 99% of them), and as many detections
on >= 99% of the frames; the largest score difference of matched pairs is printed. Used by
scripts/check-arm64 (arm64 under emulation against this machine: OpenCV's decoder and resize
and XNNPACK's kernels differ between the two, so scores differ by a few uint8 steps).

    same-detections.py A.jsonl B.jsonl NAME [A2.jsonl B2.jsonl NAME2 ...]

Prints one line per pair; exits 1 when any pair differs."""

import json
import sys


def iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 1.0


def frames(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["detections"] for line in f]


def pairs(fa, fb):
    """Greedy pairs (best IoU first) of same-label detections with IoU >= 0.9."""
    cand = sorted(((iou(a["box"], b["box"]), i, j) for i, a in enumerate(fa) for j, b in enumerate(fb)
                   if a["label"] == b["label"]), reverse=True)
    used_a, used_b, out = set(), set(), []
    for v, i, j in cand:
        if v >= 0.9 and i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            out.append((fa[i], fb[j]))
    return out


def compare(a_path, b_path, name):
    a, b = frames(a_path), frames(b_path)
    if len(a) != len(b):
        return f"{name}: {len(a)} frames against {len(b)}", False
    total = matched = same_count = 0
    worst = 0.0
    for fa, fb in zip(a, b):
        got = pairs(fa, fb)
        total += max(len(fa), len(fb))
        matched += len(got)
        same_count += len(fa) == len(fb)
        worst = max([worst] + [abs(x["score"] - y["score"]) for x, y in got])
    ok = matched >= 0.99 * total and same_count >= 0.99 * len(a)
    return (f"{name}: {len(a)} frames; {matched} of {total} detections matched (same label, IoU >= 0.9), "
            f"as many on {same_count} frames; largest score difference {worst:.4f}: "
            f"{'the same' if ok else 'DIFFERENT'}"), ok


def main(argv):
    if len(argv) < 3 or len(argv) % 3:
        raise SystemExit(__doc__)
    good = True
    for i in range(0, len(argv), 3):
        line, ok = compare(*argv[i:i + 3])
        print(line)
        good &= ok
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
