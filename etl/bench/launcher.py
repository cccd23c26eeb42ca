"""`python -S launcher.py COMMAND...`: run COMMAND and print its wall seconds, peak RSS (MiB) and exit code.

The benchmark starts every contender through this small process: Linux gives a process the peak RSS
of the one it was forked from (the memory it held until exec), so a contender forked from the
benchmark itself would report at least the benchmark's own RSS.
"""

import os
import subprocess
import sys
import time

started = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
print(time.perf_counter() - started, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status))
