"""Run one command under a Supervisor in this process and print the command's pid.

Used by the fail-closed test, which SIGKILLs this process mid-session.
    python sup_host.py BINS_DIR PORT -- CMD ARG...
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
# tests/: its conftest.py importable as `conftest`, as pytest has it
sys.path.insert(1, str(Path(__file__).resolve().parents[2]))

import ipaddress

from tests.supervise.conftest import Launch, dest, make_policy

bins, port = Path(sys.argv[1]), int(sys.argv[2])
argv = sys.argv[sys.argv.index("--") + 1 :]
pol = make_policy(
    [("true", "allow")],
    [(dest("p", "ip", network=ipaddress.ip_network("127.0.0.1"), port=port), "allow")],
)
lau = Launch(bins, argv, pol)
print(lau.proc.pid, flush=True)
while True:
    time.sleep(1)
