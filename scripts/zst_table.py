"""Shared by the table scripts: write rows as a zstd-compressed CSV (the `zstd` command-line
tool, level 19), atomically (a temporary file renamed over the target)."""

import csv
import io
import subprocess


def write_zst(rows, header, out):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    data = subprocess.run(["zstd", "-19", "-c"], input=buf.getvalue().encode(), check=True,
                          capture_output=True).stdout
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(out)
    print(f"{out}: {len(rows)} rows, {len(data)} bytes")
