"""DOMAINS imports an environment's module only when that environment's domain is asked for."""

from __future__ import annotations

import json
import subprocess
import sys

_LOOKUP = """
import json, sys
from stepgym.agents.domains import DOMAINS, domain_for
listed = {"ids": list(DOMAINS), "len": len(DOMAINS), "in": "stepgym/ThreeBody-v0" in DOMAINS}
domain_for("stepgym/CrossEntropy-v0")
after_ce = {m: m in sys.modules for m in ("stepgym.envs.three_body", "rebound",
            "stepgym.integrators.rebound_backend", "stepgym.envs.cross_entropy")}
domain_for("stepgym/ThreeBody-v0")
print(json.dumps({"listed": listed, "after_ce": after_ce,
                  "after_tb": "stepgym.envs.three_body" in sys.modules}))
"""


def test_looking_up_cross_entropy_imports_no_rebound_based_module() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _LOOKUP], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"stepgym/CrossEntropy-v0", "stepgym/ThreeBody-v0"} <= set(seen["listed"]["ids"])
    assert seen["listed"]["len"] >= 2 and seen["listed"]["in"]
    assert seen["after_ce"] == {
        "stepgym.envs.three_body": False,
        "rebound": False,
        "stepgym.integrators.rebound_backend": False,
        "stepgym.envs.cross_entropy": True,
    }
    assert seen["after_tb"]  # the scan can see an import: ThreeBody's lookup does import it


def test_declarations_say_whether_they_name_a_domain_without_importing() -> None:
    from stepgym.envs.spec import declares_domain, read_declaration

    declared = read_declaration("stepgym.envs.three_body")
    assert declared is not None and declared.has_domain
    assert declares_domain("stepgym/ThreeBody-v0") and declares_domain("stepgym/CrossEntropy-v0")
    assert not declares_domain("stepgym/NoSuchEnv-v0") and not declares_domain(3)
