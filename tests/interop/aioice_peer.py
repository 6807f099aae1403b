"""An aioice peer that speaks `floe connect`'s JSON-lines signalling (docs/connect.md).

Usage: aioice_peer.py (offer|answer) IN OUT [TURN-HOST:PORT:USER:PASSWORD]
Reads signalling from the file/pipe IN, writes to OUT. Gathers host candidates (IPv4),
connects, sends one datagram "from-aioice", waits for "from-floe", prints it and exits 0.
As the offerer aioice is the controlling agent, and nominates aggressively (USE-CANDIDATE
on every check), which floe's controlled side must handle. With a TURN server, aioice
uses only its relayed candidate (its TURN client against floe serve).
"""

import asyncio
import json
import sys

import aioice


async def main(side: str, path_in: str, path_out: str, turn: str = "") -> int:
    options = {}
    if turn:
        host, port, user, password = turn.split(":")
        options = {
            "turn_server": (host, int(port)),
            "turn_username": user,
            "turn_password": password,
            "transport_policy": aioice.TransportPolicy.RELAY,
        }
    conn = aioice.Connection(ice_controlling=(side == "offer"), use_ipv6=False, **options)
    await conn.gather_candidates()
    description = {
        "type": "offer" if side == "offer" else "answer",
        "ufrag": conn.local_username,
        "pwd": conn.local_password,
        "lite": False,
        "candidates": ["candidate:" + c.to_sdp() for c in conn.local_candidates],
    }
    loop = asyncio.get_running_loop()
    # Opening a FIFO blocks until the other end opens it: do it off the event loop, and
    # open for writing first when answering (floe opens its OUT, our IN, first).
    out = await loop.run_in_executor(None, lambda: open(path_out, "w", buffering=1))
    inp = await loop.run_in_executor(None, lambda: open(path_in, "r"))

    def send(msg: dict) -> None:
        out.write(json.dumps(msg) + "\n")

    if side == "offer":
        send(description)
        send({"type": "end-of-candidates"})
    got_description = False
    while True:
        line = await loop.run_in_executor(None, inp.readline)
        if not line:
            print("signalling closed early", file=sys.stderr)
            return 1
        msg = json.loads(line)
        kind = msg.get("type")
        if kind in ("offer", "answer"):
            conn.remote_username = msg["ufrag"]
            conn.remote_password = msg["pwd"]
            for c in msg.get("candidates", []):
                await add(conn, c)
            got_description = True
            if side == "answer":
                send(description)
                send({"type": "end-of-candidates"})
        elif kind == "candidate":
            await add(conn, msg["candidate"])
        elif kind == "end-of-candidates" and got_description:
            await conn.add_remote_candidate(None)
            break
    await asyncio.wait_for(conn.connect(), 10)
    print("aioice connected", file=sys.stderr)
    await conn.send(b"from-aioice\n")
    deadline = loop.time() + 10
    while loop.time() < deadline:
        data = await asyncio.wait_for(conn.recv(), deadline - loop.time())
        if data.strip() == b"from-floe":
            print(data.decode().strip())
            await conn.close()
            return 0
    return 1


async def add(conn: aioice.Connection, line: str) -> None:
    sdp = line.split(":", 1)[1] if line.startswith("candidate:") else line
    try:
        candidate = aioice.Candidate.from_sdp(sdp)
    except ValueError:
        return
    if candidate.transport.lower() != "udp" or ":" in candidate.host:
        return
    await conn.add_remote_candidate(candidate)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:5])))
