#!/usr/bin/env python3
"""netcat over ICE against a plain UDP socket pair, side by side in one run.

`floe connect` pipes lines: each stdin line goes out as one datagram, and each datagram
received is written to stdout as a line. The baseline is the same job done by two socat
processes on a plain UDP socket pair (`socat -u -b LEN STDIN UDP-SENDTO` and `socat -u
UDP-RECV STDOUT`): with fixed-length lines and socat's block size set to the line
length, socat also sends one datagram per line.

Each round starts the receiver, then the sender (floe: once both are connected, which
is not measured), writes LINES lines of LEN bytes (newline included) to the sender's
stdin as fast as the pipe takes them, and reads the receiver's stdout. Measured:

- lines/s: lines received over the time from the first to the last line received;
- CPU per line: user + system time of the sender and receiver processes (from wait4,
  so every thread, the whole life of each process, connection set-up included), over
  the lines received;
- loss: lines sent that never arrived (UDP, no flow control: a receiver that falls
  behind loses datagrams in its socket buffer).

Rounds alternate which of the two goes first; medians are printed. Nothing leaves
127.0.0.1. Usage (repo root):

    cargo build --release -p floe-cli
    python3 benches/connect_vs_socat.py [--floe target/release/floe] [--rounds 5] \
        [--lines 200000] [--len 100]
"""

import argparse
import os
import select
import signal
import socket
import statistics
import subprocess
import tempfile
import time


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu_of(pid):
    """Waits for `pid` and returns its user + system seconds."""
    _, _, usage = os.wait4(pid, 0)
    return usage.ru_utime + usage.ru_stime


def payload(lines, length):
    body = b"x" * (length - 1)
    return b"".join(b"%08d" % i + body[8:] + b"\n" for i in range(lines))


def count_lines(stream, expected, idle):
    """Reads `stream` until `expected` lines or `idle` seconds without data: (lines,
    first, last) with the times of the first and last bytes."""
    fd = stream.fileno()
    n = 0
    first = last = None
    while n < expected:
        ready, _, _ = select.select([fd], [], [], idle)
        if not ready:
            break
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        now = time.perf_counter()
        if first is None:
            first = now
        last = now
        n += chunk.count(b"\n")
    return n, first, last


def feed(proc, data):
    """Writes `data` to the process's stdin, then closes it."""
    view = memoryview(data)
    fd = proc.stdin.fileno()
    while view:
        written = os.write(fd, view[: 1 << 16])
        view = view[written:]
    proc.stdin.close()


def run_socat(lines, length):
    port = free_udp_port()
    recv = subprocess.Popen(
        ["socat", "-u", f"UDP-RECV:{port},bind=127.0.0.1,rcvbuf=4194304", "STDOUT"],
        stdout=subprocess.PIPE,
    )
    time.sleep(0.2)
    send = subprocess.Popen(
        ["socat", "-u", "-b", str(length), "STDIN", f"UDP-SENDTO:127.0.0.1:{port}"],
        stdin=subprocess.PIPE,
    )
    data = payload(lines, length)
    import threading

    writer = threading.Thread(target=feed, args=(send, data))
    writer.start()
    got, first, last = count_lines(recv.stdout, lines, 1.0)
    writer.join()
    cpu = cpu_of(send.pid)
    recv.send_signal(signal.SIGTERM)
    cpu += cpu_of(recv.pid)
    return got, first, last, cpu


def run_floe(floe, lines, length):
    d = tempfile.mkdtemp()
    a2b, b2a = os.path.join(d, "a2b"), os.path.join(d, "b2a")
    os.mkfifo(a2b)
    os.mkfifo(b2a)
    common = ["--bind", "127.0.0.1:0", "--json", "--timeout", "10", "--address-watch", "0"]
    recv = subprocess.Popen(
        [floe, "connect", "--answer", *common, "--linger", "30",
         "--signal", f"files:{a2b},{b2a}"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    send = subprocess.Popen(
        [floe, "connect", "--offer", *common, "--linger", "1",
         "--signal", f"files:{b2a},{a2b}"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    # Both connected (the receiver's stdin stays open, so it does not linger out).
    for p in (send, recv):
        while True:
            line = p.stderr.readline()
            if not line:
                raise SystemExit("floe connect exited before connecting")
            if b'"state":"completed"' in line or b'"state":"connected"' in line:
                break
    time.sleep(0.3)
    data = payload(lines, length)
    import threading

    # Lines without their newline on the wire, as floe connect sends them.
    writer = threading.Thread(target=feed, args=(send, data))
    writer.start()
    got, first, last = count_lines(recv.stdout, lines, 1.0)
    writer.join()
    cpu = cpu_of(send.pid)
    recv.stdin.close()
    recv.send_signal(signal.SIGTERM)
    cpu += cpu_of(recv.pid)
    for f in (a2b, b2a):
        os.unlink(f)
    os.rmdir(d)
    return got, first, last, cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--floe", default="target/release/floe")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--len", type=int, default=100)
    args = ap.parse_args()
    results = {"socat": [], "floe": []}
    for r in range(args.rounds):
        order = ["socat", "floe"] if r % 2 == 0 else ["floe", "socat"]
        for name in order:
            if name == "socat":
                got, first, last, cpu = run_socat(args.lines, args.len)
            else:
                got, first, last, cpu = run_floe(args.floe, args.lines, args.len)
            rate = got / (last - first) if got and last > first else 0.0
            per_line = cpu / got * 1e6 if got else float("inf")
            loss = 1 - got / args.lines
            results[name].append((rate, per_line, loss))
            print(f"round {r} {name:5}: {got} lines, {rate:,.0f} lines/s, "
                  f"{per_line:.2f} us CPU per line, loss {loss:.2%}", flush=True)
    print()
    med = {k: [statistics.median(x[i] for x in v) for i in range(3)] for k, v in results.items()}
    print(f"| | lines/s (median) | CPU µs per line (median) | loss (median) |")
    print(f"|---|---|---|---|")
    for k in ("socat", "floe"):
        rate, per, loss = med[k]
        print(f"| {k} | {rate:,.0f} | {per:.2f} | {loss:.2%} |")
    print(f"| floe / socat | {med['floe'][0] / med['socat'][0]:.2f}x | "
          f"{med['floe'][1] - med['socat'][1]:+.2f} µs | |")


if __name__ == "__main__":
    main()
