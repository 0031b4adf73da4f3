"""A seeded fuzz of config.yaml and the command line, bounded to about a minute: no
traceback, no hang, no exit 0 on a value that cannot be right (see fuzz_edgecam.py; a
larger run: `python tests/fuzz_edgecam.py --models DIR --media DIR --cases 3000`)."""

import os

from fuzz_edgecam import fuzz


def test_fuzz_config_and_cli(models_dir, media):
    seed = int(os.environ.get("EDGECAM_FUZZ_SEED", "11"))
    cases = int(os.environ.get("EDGECAM_FUZZ_CASES", "400"))
    counts, failures = fuzz(models_dir, media, cases, seed, jobs=2, budget_s=75)
    print("fuzz:", dict(counts))
    assert not failures, "\n".join(f"{o} (exit {c}) on {what}:\n{err}" for o, c, what, err in failures[:5])
    assert counts["clean"] > 0 and counts["accepted"] > 0
