"""Time load_raw_data + process_raw_data (cold import, first and repeated calls)."""
import time
t0 = time.perf_counter()
from mam_pynn.anatomy import load_raw_data, process_raw_data
t1 = time.perf_counter()
raw = load_raw_data(); t2 = time.perf_counter()
proc = process_raw_data(raw); t3 = time.perf_counter()
print(f"import {t1-t0:.3f} s; first load_raw_data {t2-t1:.3f} s; first process_raw_data {t3-t2:.3f} s; "
      f"first total incl. import {t3-t0:.3f} s")
n = 20
t = time.perf_counter()
for _ in range(n): load_raw_data()
t_load = (time.perf_counter() - t) / n
t = time.perf_counter()
for _ in range(n): process_raw_data(raw)
t_proc = (time.perf_counter() - t) / n
print(f"repeated (mean of {n}): load_raw_data {t_load*1e3:.1f} ms, process_raw_data {t_proc*1e3:.1f} ms")
