#!/usr/bin/env python3
"""A client for `baton serve` (API v1), Python 3 standard library only (urllib, json).

    from baton_client import BatonClient
    c = BatonClient("http://10.0.0.5:7443")            # or a list: the leader and its standbys
    m = c.dispatch({"deviceId": "fw1", "method": "PUT", "path": "/policies/p1", "body": {}})
    c.wait_applied("fw1", m["seq"])                    # raises BatonError when it was dead-lettered

Safe retries: every POST that creates messages carries an Idempotency-Key (one per call unless
given). The client sends the very same request again, with the same key, after a connection error
(on the next base URL given, if several), after a 503 (`no-leader`, `stopping`) or a 409
`idempotency-key-in-flight` (the first request with that key is still being carried out, or its
server died holding it; the server takes the key over after 30 s by default), each after Retry-After, and to
the leader a standby names: a standby answers 307 with `Location` and `details.leader`; urllib does
not follow a 307 for a POST, so the client reads `details.leader` (else `Location`) itself, and
talks to that leader from then on. The server answers a repeat with the first result. `attempts`
bounds the tries of one call: across a leader's death give it enough for about 40 s.

The bearer token comes from `token=` or the environment (BATON_TOKEN). Errors raise BatonError with
the server's `code`, `message` and `details` (the API's one error shape). `python3 baton_client.py
--help` runs the demo: a policy and its rules to one device, one retried with the same key, waited
until applied, and the events read back.
"""
import json
import os
import socket
import ssl
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.client import HTTPException

__all__ = ["BatonClient", "BatonError", "Event"]

#: where `baton serve` listens unless told otherwise (the demo's default)
DEFAULT_URL = "http://127.0.0.1:7443"


class BatonError(Exception):
    """The server's error (`code` is a BatonError code of baton), or `unreachable` when no server answered."""

    def __init__(self, status, code, message, details=None):
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message, self.details = status, code, message, details or {}


class Event:
    """One Server-Sent Event of /v1/events: `id` (give it back as last_event_id to resume), `type`, `data` (parsed JSON when it is JSON)."""

    def __init__(self, id, type, data):
        self.id, self.type, self.data = id, type, data

    def __repr__(self):
        return f"Event(id={self.id!r}, type={self.type!r}, data={self.data!r})"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # every redirect comes back as an HTTPError: the client follows it itself, keeping method, body and key
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _retryable(err):
    return isinstance(err, (urllib.error.URLError, HTTPException, ConnectionError, socket.timeout, TimeoutError)) and not isinstance(err, urllib.error.HTTPError)


class BatonClient:
    def __init__(self, base_url, token=None, timeout=30.0, attempts=6, backoff=0.2, max_sleep=5.0, cafile=None):
        """`base_url`: one URL or several (the leader and its standbys, tried in turn); `cafile`: the CA that signs an https server's certificate."""
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        self.urls = [u.rstrip("/") for u in urls]
        self.token = token if token is not None else os.environ.get("BATON_TOKEN")
        self.timeout, self.attempts, self.backoff, self.max_sleep = timeout, attempts, backoff, max_sleep
        tls = urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=cafile)) if cafile else urllib.request.HTTPSHandler()
        self._opener = urllib.request.build_opener(_NoRedirect, tls)
        #: the last answer: (HTTP status, headers); `replayed` tells a repeat answered with the first result
        self.last_status, self.last_headers, self.replayed = None, {}, False

    @property
    def base_url(self):
        return self.urls[0]

    # ------------------------------------------------------------------ messages

    def dispatch(self, msg, key=None):
        """Sends one message; returns {deviceId, seq} once it is durable. `key`: the Idempotency-Key (default: a new one per call)."""
        return self._request("POST", "/v1/messages", msg, key=key or str(uuid.uuid4()))

    def batch(self, msgs, key=None):
        """Sends messages as one batch (accepted or refused as a whole); returns [{deviceId, seq}] in their order."""
        return self._request("POST", "/v1/batches", {"messages": list(msgs)}, key=key or str(uuid.uuid4()))["accepted"]

    def fate(self, device, seq, wait_ms=0):
        """{deviceId, seq, fate: accepted|applied|dead-lettered, answer?}; `wait_ms` (<= 60000): until it is final."""
        path = f"/v1/messages/{urllib.parse.quote(device, safe='')}/{int(seq)}"
        return self._request("GET", path + (f"?waitMs={int(wait_ms)}" if wait_ms else ""), timeout=self.timeout + wait_ms / 1000)

    def wait_applied(self, device, seq, timeout_s=120.0):
        """Returns the fate once applied; raises BatonError `device-rejected` when dead-lettered, `timeout` when not applied in time."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            f = self.fate(device, seq, wait_ms=max(0, min(60_000, int(left * 1000))))
            if f["fate"] == "applied":
                return f
            if f["fate"] == "dead-lettered":
                answer = f.get("answer") or {}
                raise BatonError(200, "device-rejected", f"device {device}: seq {seq} was dead-lettered ({answer.get('reason', 'no reason stored')})", f)
            if time.monotonic() >= deadline:
                raise BatonError(200, "timeout", f"device {device}: seq {seq} not applied within {timeout_s} s; it stays queued", f)

    # ------------------------------------------------------------------ views and actions

    def status(self):
        return self._request("GET", "/v1/status")

    def devices(self):
        return self._request("GET", "/v1/devices")

    def pause(self, device):
        return self._request("POST", f"/v1/devices/{urllib.parse.quote(device, safe='')}/pause", {})

    def resume(self, device):
        return self._request("POST", f"/v1/devices/{urllib.parse.quote(device, safe='')}/resume", {})

    def unblock(self, device, action):
        """`action`: "retry" (send the refused message again first) or "skip" (leave it dead-lettered, go on)."""
        return self._request("POST", f"/v1/devices/{urllib.parse.quote(device, safe='')}/unblock", {"action": action})

    # ------------------------------------------------------------------ events

    def events(self, last_event_id=None, reconnect=True, idle_timeout=None, on_open=None):
        """Yields Events from /v1/events, resuming after `last_event_id`; a dropped stream is connected again after the last id seen
        (`reconnect`). When the server cannot resume there (the id is of another leader, or too old), an Event of type "resync"
        comes first: re-read the state (the fate of what you wait for), the stream then goes on from now.
        `idle_timeout`: seconds without an event (or a keep-alive) after which it ends. `on_open()`: called once the stream is open."""
        last = last_event_id
        failures = 0
        while True:
            headers = {"Accept": "text/event-stream"}
            if last is not None:
                headers["Last-Event-ID"] = last
            try:
                with self._open("GET", "/v1/events", None, headers, timeout=idle_timeout) as resp:
                    failures = 0
                    if on_open:
                        on_open()
                    for ev in parse_sse(resp):
                        if ev.id is not None:
                            last = ev.id
                        yield ev
            except (socket.timeout, TimeoutError):
                if idle_timeout is not None:
                    return
                raise
            except BatonError as err:
                # the server cannot tell what followed `last` (another leader's id, or too old): say so, then follow from now
                if last is None or err.code != "invalid-request":
                    raise
                yield Event(None, "resync", {"lastEventId": last, "message": err.message, **err.details})
                last = None
            except Exception as err:  # noqa: BLE001 - a stream that broke: connect again, or give up
                if not reconnect or not _retryable(err) or failures >= self.attempts:
                    raise
                failures += 1
                self._rotate()
                time.sleep(min(self.max_sleep, self.backoff * 2 ** failures))
            else:
                if not reconnect:
                    return

    # ------------------------------------------------------------------ the request loop

    def _request(self, method, path, body=None, key=None, timeout=None):
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if key is not None:
            headers["Idempotency-Key"] = key
        with self._open(method, path, data, headers, timeout=timeout or self.timeout) as resp:
            raw = resp.read()
            return json.loads(raw) if raw else None

    def _open(self, method, path, data, headers, timeout):
        """The response of the first server that answers 2xx: follows a leader named by a standby, waits out a 503, retries a connection error."""
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        problem = None
        for attempt in range(self.attempts):
            req = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
            try:
                resp = self._opener.open(req, timeout=timeout)
                self.last_status, self.last_headers = resp.status, dict(resp.headers)
                self.replayed = resp.headers.get("Idempotent-Replayed") == "true"
                return resp
            except urllib.error.HTTPError as err:
                problem = self._answered(err)
                if problem.status == 307 or problem.code == "not-leader":
                    if self._follow(problem, err, path):
                        continue
                elif problem.status != 503 and problem.code != "idempotency-key-in-flight":
                    raise problem from None
                wait = err.headers.get("Retry-After")
                self._sleep(attempt, float(wait) if wait and wait.isdigit() else None)
            except Exception as err:  # noqa: BLE001
                if not _retryable(err):
                    raise
                problem = BatonError(None, "unreachable", f"{self.base_url}: {getattr(err, 'reason', err)}")
                self._rotate()
                self._sleep(attempt, None)
        raise problem

    def _answered(self, err):
        self.last_status, self.last_headers = err.code, dict(err.headers)
        try:
            e = json.loads(err.read() or b"{}").get("error") or {}
        except ValueError:
            e = {}
        return BatonError(err.code, e.get("code", f"http-{err.code}"), e.get("message", err.reason), e.get("details"))

    def _follow(self, problem, err, path):
        """Talks to the leader the standby named from now on; False when it named none."""
        leader = (problem.details or {}).get("leader")
        if not (isinstance(leader, str) and leader.startswith(("http://", "https://"))):
            location = err.headers.get("Location")
            if not location:
                return False
            location = urllib.parse.urljoin(self.base_url + path, location)
            leader = location[: -len(path)] if location.endswith(path) else location
        leader = leader.rstrip("/")
        self.urls = [leader] + [u for u in self.urls if u != leader]
        return True

    def _rotate(self):
        self.urls = self.urls[1:] + self.urls[:1]

    def _sleep(self, attempt, retry_after):
        time.sleep(min(self.max_sleep, retry_after if retry_after is not None else self.backoff * 2 ** attempt))


def parse_sse(lines):
    """Events from a text/event-stream, given as an iterable of byte lines (an HTTP response is one)."""
    fields = {"id": None, "event": "message", "data": []}
    for raw in lines:
        line = raw.decode("utf-8").rstrip("\r\n")
        if line == "":
            if fields["data"]:
                text = "\n".join(fields["data"])
                try:
                    data = json.loads(text)
                except ValueError:
                    data = text
                yield Event(fields["id"], fields["event"], data)
            fields = {"id": None, "event": "message", "data": []}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            fields["data"].append(value)
        elif name in ("id", "event"):
            fields[name] = value


def _demo(argv):
    import argparse

    p = argparse.ArgumentParser(description="Dispatch a policy and its rules to a device through baton serve, retry one with the same key, wait until applied, read the events.")
    p.add_argument("--url", action="append", help="a baton serve base URL (several: the leader and standbys); default $BATON_URL or " + DEFAULT_URL)
    p.add_argument("--cafile", help="the CA certificate of an https baton serve")
    p.add_argument("--device", default="fw1")
    p.add_argument("--rules", type=int, default=3)
    p.add_argument("--events-for", type=float, default=2.0, help="seconds to read events for")
    a = p.parse_args(argv)
    c = BatonClient(a.url or [os.environ.get("BATON_URL", DEFAULT_URL)], cafile=a.cafile)
    policy = f"/policies/demo-{uuid.uuid4().hex[:8]}"
    msgs = [{"deviceId": a.device, "method": "PUT", "path": policy, "body": {"action": "deny"}}]
    msgs += [{"deviceId": a.device, "method": "PUT", "path": f"{policy}/rules/r{i}", "body": {"port": 1000 + i}} for i in range(1, a.rules + 1)]
    keys = [str(uuid.uuid4()) for _ in msgs]
    # the events, read by a second client on its own thread from before the first message
    seen, opened, heard = [], threading.Event(), threading.Condition()

    def read_events():
        for ev in BatonClient(c.urls, cafile=a.cafile).events(idle_timeout=a.events_for + 30, reconnect=False, on_open=opened.set):
            with heard:
                seen.append(ev)
                heard.notify_all()

    threading.Thread(target=read_events, daemon=True).start()
    opened.wait(10)
    got = [c.dispatch(m, key=k) for m, k in zip(msgs, keys)]
    for m, g in zip(msgs, got):
        print(f"accepted {m['method']} {m['path']} as seq {g['seq']}")
    again = c.dispatch(msgs[1], key=keys[1])
    print(f"retried {msgs[1]['path']} with the same key: seq {again['seq']} (replayed: {c.replayed})")
    if again["seq"] != got[1]["seq"]:
        print("the retry got another seq: it was accepted twice", file=sys.stderr)
        return 1
    for g in got:
        c.wait_applied(g["deviceId"], g["seq"])
    print(f"applied: seqs {[g['seq'] for g in got]} on {a.device}")
    last = got[-1]["seq"]
    covered = lambda ev: ev.type == "applied" and isinstance(ev.data, dict) and ev.data.get("deviceId") == a.device and ev.data.get("from", 0) <= last <= ev.data.get("to", -1)
    with heard:
        heard.wait_for(lambda: any(covered(ev) for ev in seen), timeout=a.events_for)
        shown = list(seen)
    for ev in shown:
        print(f"event {ev.id} {ev.type} {json.dumps(ev.data)}")
    return 0


if __name__ == "__main__":
    sys.exit(_demo(sys.argv[1:]))
