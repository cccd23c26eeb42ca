"""`python -S launcher.py COMMAND...`: run COMMAND; print its wall seconds, its own peak RSS (MiB), exit code,
start (epoch s).

The benchmark starts every contender through this small process: Linux gives a process the peak RSS
of the one it was forked from (the memory it held until exec), so a contender forked from the
benchmark itself would report at least the benchmark's own RSS. The start is the wall clock's, which
the job's `runs.started_at` also reads, so the two give the contender's start-up time. An argument
`{launcher_pid}` is replaced by this process's id: the publishing child checks that its parent is the
collector whose id it was given.

wait4's peak is the largest of the process and every child it waited for (ours: the publishing child), so the
process's own is its high-water mark (VmHWM), read every 5 ms while it runs: a new peak in its last 5 ms
would not be seen.
"""

import os
import subprocess
import sys
import time

POLL_S = 0.005


def high_water_kib(pid: int) -> int:
    """The process's peak RSS so far; 0 once it has exited (a zombie has no memory to tell of)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return next((int(line.split()[1]) for line in status if line.startswith("VmHWM:")), 0)
    except OSError:
        return 0


launched_epoch_s, started = time.time(), time.perf_counter()
command = [arg.replace("{launcher_pid}", str(os.getpid())) for arg in sys.argv[1:]]
child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
own_kib = 0
while not (waited := os.wait4(child.pid, os.WNOHANG))[0]:
    own_kib = max(own_kib, high_water_kib(child.pid))
    time.sleep(POLL_S)
_, status, usage = waited
wall_s = time.perf_counter() - started
print(wall_s, (own_kib or usage.ru_maxrss) / 1024, os.waitstatus_to_exitcode(status), launched_epoch_s)
