"""`python -S launcher.py COMMAND...`: run COMMAND; print its wall seconds, peak RSS (MiB), exit code, start
(epoch s).

The benchmark starts every contender through this small process: Linux gives a process the peak RSS
of the one it was forked from (the memory it held until exec), so a contender forked from the
benchmark itself would report at least the benchmark's own RSS. The start is the wall clock's, which
the job's `runs.started_at` also reads, so the two give the contender's start-up time. An argument
`{launcher_pid}` is replaced by this process's id: the publishing child checks that its parent is the
collector whose id it was given.
"""

import os
import subprocess
import sys
import time

launched_epoch_s, started = time.time(), time.perf_counter()
command = [arg.replace("{launcher_pid}", str(os.getpid())) for arg in sys.argv[1:]]
child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
print(
    time.perf_counter() - started, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), launched_epoch_s
)
