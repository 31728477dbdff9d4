#!/usr/bin/env python3
"""Load and lag sampling for bench/pitr.sh (only the mariadb client, no
driver): `lag` writes steady transactions on the billing tables at RATE a
second for SECS seconds, then a burst of BURST, while sampling every 0.1 s
the server's binary-log position and the follower's durable position
(its spool's state.json); the lag at a sample is how long ago the server
had written what the follower holds (0 when the follower holds all).
`changes` writes N transactions as fast as one connection can.
Prints tab-separated figures; asserts nothing."""

import argparse
import json
import statistics
import subprocess
import threading
import time


def client(port, db):
    return subprocess.Popen(
        ["mariadb", "--protocol=tcp", "-h127.0.0.1", f"-P{port}", "-uroot", "-N", db],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )


def statement(n):
    # A payment, the client's balance and a service's expiry: what the
    # panel writes most (every statement commits by itself).
    acc = n % 5000 + 1
    return (
        f"UPDATE account SET balance = balance + 1 WHERE id = {acc};\n"
        f"UPDATE item SET expiredate = expiredate + INTERVAL 1 DAY WHERE account = {acc} LIMIT 1;\n"
    )


def position(port):
    # SHOW BINARY LOG STATUS on MySQL 8.2 and later, SHOW MASTER STATUS
    # before and on MariaDB.
    for sql in ("SHOW BINARY LOG STATUS", "SHOW MASTER STATUS"):
        out = subprocess.run(
            ["mariadb", "--protocol=tcp", "-h127.0.0.1", f"-P{port}", "-uroot", "-N", "-e", sql],
            capture_output=True,
            text=True,
        ).stdout.split()
        if len(out) >= 2:
            return (out[0], int(out[1]))
    return None


def key(pos):
    file, p = pos
    return (int(file.rsplit(".", 1)[1]), p)


def follower(state):
    try:
        with open(state) as f:
            n = json.load(f)["next"]
        return (n["file"], n["pos"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def lag(args):
    samples = []
    done = threading.Event()

    def sample():
        while not done.is_set():
            t = time.time()
            s, f = position(args.port), follower(args.state)
            if s and f:
                samples.append((t, s, f))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    c = client(args.port, args.db)
    start = time.time()
    n = 0
    while time.time() - start < args.secs:
        n += 1
        c.stdin.write(statement(n))
        c.stdin.flush()
        due = start + n / args.rate
        delay = due - time.time()
        if delay > 0:
            time.sleep(delay)
    steady = n
    for _ in range(args.burst):
        n += 1
        c.stdin.write(statement(n))
    c.stdin.flush()
    c.stdin.close()
    c.wait()
    time.sleep(3)
    done.set()
    sampler.join()
    # Lag at each sample: now minus the first time the server was at or
    # past what the follower holds.
    lags = []
    for i, (t, _, f) in enumerate(samples):
        reached = next((t0 for (t0, s, _) in samples[: i + 1] if key(s) >= key(f)), None)
        lags.append(0.0 if reached is None or key(samples[i][1]) <= key(f) else t - reached)
    lags.sort()
    p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))] if lags else 0
    print(f"transactions\t{steady * 2} steady at {args.rate * 2}/s, then {args.burst * 2} at once")
    print(f"samples\t{len(lags)}")
    print(f"lag_median_s\t{statistics.median(lags) if lags else 0:.2f}")
    print(f"lag_p99_s\t{p99:.2f}")
    print(f"lag_max_s\t{max(lags) if lags else 0:.2f}")


def changes(args):
    c = client(args.port, args.db)
    for n in range(1, args.n + 1):
        c.stdin.write(statement(n * 7))
    c.stdin.close()
    c.wait()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["lag", "changes"])
    p.add_argument("--port", required=True)
    p.add_argument("--db", default="bench")
    p.add_argument("--rate", type=int, default=100)
    p.add_argument("--secs", type=int, default=60)
    p.add_argument("--burst", type=int, default=2500)
    p.add_argument("--state")
    p.add_argument("--n", type=int, default=10000)
    args = p.parse_args()
    {"lag": lag, "changes": changes}[args.what](args)


if __name__ == "__main__":
    main()
