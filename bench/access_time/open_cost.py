"""Per-open cost of the access-time open check, measured inside one session (no launch cost).

    cd DIR_WITH_d*/f*_FILES && python3 open_cost.py                     # bare
    landgate run --policy P -- /usr/bin/python3 .../open_cost.py       # under the open check

Opens (read 4 KiB, close) every d*/f* file once read-only, then once O_WRONLY|O_APPEND,
and prints microseconds per open.  With a read deny reaching a readable grant (P with
`**/.env` denied) every open goes to the supervisor; without one, only the write opens.
"""

import glob
import os
import time

files = sorted(glob.glob("d*/f*"))
if not files:
    raise SystemExit("no d*/f* files here")
t = time.perf_counter()
for f in files:
    fd = os.open(f, os.O_RDONLY)
    os.read(fd, 4096)
    os.close(fd)
a = time.perf_counter() - t
t = time.perf_counter()
for f in files:
    fd = os.open(f, os.O_WRONLY | os.O_APPEND)
    os.close(fd)
b = time.perf_counter() - t
print(
    f"read-open {a / len(files) * 1e6:.1f} us  write-open {b / len(files) * 1e6:.1f} us  "
    f"n={len(files)}"
)
