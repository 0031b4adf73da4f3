#!/usr/bin/env python3
"""Whether two runs' JSON lines hold the same detections, frame by frame: the same labels, scores
within one uint8 quantization step (1/256), boxes with IoU >= 0.98. Used by scripts/check-arm64
(arm64 under emulation against this machine).

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
        return [sorted(json.loads(line)["detections"], key=lambda d: (d["label"], d["box"])) for line in f]


def compare(a_path, b_path, name):
    a, b = frames(a_path), frames(b_path)
    if len(a) != len(b):
        return f"{name}: {len(a)} frames against {len(b)}", False
    n = worst = 0
    low = 1.0
    for i, (fa, fb) in enumerate(zip(a, b)):
        if [d["label"] for d in fa] != [d["label"] for d in fb]:
            return f"{name}: frame {i}: {[d['label'] for d in fa]} against {[d['label'] for d in fb]}", False
        for da, db in zip(fa, fb):
            n += 1
            worst = max(worst, abs(da["score"] - db["score"]))
            low = min(low, iou(da["box"], db["box"]))
    ok = worst <= 1 / 256 + 1e-6 and low >= 0.98
    return (f"{name}: {len(a)} frames, {n} detections, the same labels; largest score difference "
            f"{worst:.4f}, lowest box IoU {low:.4f}: {'the same' if ok else 'DIFFERENT'}"), ok


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
