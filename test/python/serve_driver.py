"""Drives scripts/baton_client.py against a real `baton serve` for test/int/serve-*.int.test.ts; prints
JSON lines the test reads (not a unittest module: its name does not match test_*.py).

    serve_driver.py load --url STANDBY --url LEADER --device fw1 --prefix c1 --count 100
        sends messages one at a time (each after the previous one's answer: the client's order is the
        device's order), key and path named by --prefix and the index; a line per answer:
        {"i", "key", "seq", "status", "replayed", "cut", "codes"} where `cut` says the client met a
        connection error while sending it and `codes` lists the error codes it was answered before
        the 2xx (not-leader, no-leader, idempotency-key-in-flight); then it sends message 0 again
        with its key ({"again": ...}) and ends with {"done": true, "base": the URL it talks to}
    serve_driver.py checks --url URL --token TOKEN --device fw1
        one JSON object: a request without the token, a message to a device that is not configured,
        and a pause + resume with the token, with the audit's newest rows
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
from baton_client import BatonClient, BatonError  # noqa: E402


class RecordingClient(BatonClient):
    """The client as it is, noting what it met on the way to each answer (its retries are otherwise silent)."""

    def begin(self):
        self.cut, self.codes = False, []

    def _rotate(self):
        self.cut = True  # called on a connection error only (events() is not used here)
        super()._rotate()

    def _answered(self, err):
        problem = super()._answered(err)
        self.codes.append(problem.code)
        return problem


def emit(obj):
    print(json.dumps(obj), flush=True)


def failure(err):
    return {"status": err.status, "code": err.code, "message": err.message, "details": err.details}


def load(a):
    # enough tries for a leader's death: the standby takes over within ~1.3 x leaderTtl, and a key the
    # dead leader held is taken over after the server's 30 s claim timeout (409 + Retry-After: 1 until then)
    c = RecordingClient(a.url, attempts=120, backoff=0.05, max_sleep=0.5, timeout=10)
    msg = lambda i: {"deviceId": a.device, "method": "PUT", "path": f"/policies/{a.prefix}-{i}", "body": {"i": i}}
    for i in range(a.count):
        c.begin()
        got = c.dispatch(msg(i), key=f"{a.prefix}-{i}")
        emit({"i": i, "key": f"{a.prefix}-{i}", "seq": got["seq"], "status": c.last_status, "replayed": c.replayed, "cut": c.cut, "codes": c.codes})
    c.begin()
    again = c.dispatch(msg(0), key=f"{a.prefix}-0")
    emit({"again": f"{a.prefix}-0", "seq": again["seq"], "status": c.last_status, "replayed": c.replayed})
    emit({"done": True, "base": c.base_url})


def checks(a):
    out = {}
    try:
        BatonClient(a.url, token="", attempts=1).status()
        out["noToken"] = None
    except BatonError as err:
        out["noToken"] = failure(err)
    c = BatonClient(a.url, token=a.token, attempts=1)
    try:
        c.dispatch({"deviceId": "ghost", "method": "PUT", "path": "/policies/p1", "body": {}})
        out["unknownDevice"] = None
    except BatonError as err:
        out["unknownDevice"] = failure(err)
    out["pause"] = c.pause(a.device)
    out["resume"] = c.resume(a.device)
    out["audit"] = c._request("GET", "/v1/audit")  # the client has no audit() of its own
    emit(out)


def main(argv):
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command", required=True)
    lp = sub.add_parser("load")
    lp.add_argument("--url", action="append", required=True)
    lp.add_argument("--device", required=True)
    lp.add_argument("--prefix", required=True)
    lp.add_argument("--count", type=int, required=True)
    cp = sub.add_parser("checks")
    cp.add_argument("--url", required=True)
    cp.add_argument("--token", required=True)
    cp.add_argument("--device", required=True)
    a = p.parse_args(argv)
    (load if a.command == "load" else checks)(a)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
