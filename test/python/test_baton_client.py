"""The Python client's own logic against stub servers (http.server, no baton): the request it sends
(JSON, Idempotency-Key, bearer token), a standby's 307 followed with the same key and body, a
connection error, a 503 or a 409 key-in-flight retried with the same key, the API's error shape raised, the SSE reader
and its resumption, wait_applied. Run by test/unit/python-client.test.ts (python3 -m unittest)."""
import json
import os
import socket
import sys
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
from baton_client import BatonClient, BatonError, parse_sse  # noqa: E402


class Stub:
    """A server answering from a script: per (method, path), a list of answers, the last one repeated. Records each request."""

    def __init__(self, script):
        self.script = {k: list(v) for k, v in script.items()}
        self.requests = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?")[0]
                stub.requests.append({"method": self.command, "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": json.loads(body) if body else None})
                answers = stub.script.get((self.command, path)) or [{"status": 404, "body": {"error": {"code": "not-found", "message": "no route"}}}]
                a = answers.pop(0) if len(answers) > 1 else answers[0]
                if a.get("drop"):
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                raw = a["raw"] if "raw" in a else json.dumps(a.get("body")).encode()
                self.send_response(a["status"])
                for k, v in (a.get("headers") or {}).items():
                    self.send_header(k, v.replace("{base}", stub.url))
                self.send_header("Content-Type", a.get("type", "application/json"))
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def dead_url():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


MSG = {"deviceId": "fw1", "method": "PUT", "path": "/policies/p1", "body": {"action": "deny"}}
ACCEPTED = {"status": 202, "body": {"deviceId": "fw1", "seq": 7}}


class ClientTest(unittest.TestCase):
    def stub(self, script):
        s = Stub(script)
        self.addCleanup(s.close)
        return s

    def client(self, urls, **kw):
        return BatonClient(urls, backoff=0.001, **kw)

    def test_dispatch_sends_the_message_as_json_with_a_new_key_per_call_and_the_token_from_the_environment(self):
        s = self.stub({("POST", "/v1/messages"): [ACCEPTED]})
        os.environ["BATON_TOKEN"] = "t0k"
        self.addCleanup(os.environ.pop, "BATON_TOKEN")
        c = self.client(s.url)
        self.assertEqual(c.dispatch(MSG), {"deviceId": "fw1", "seq": 7})
        c.dispatch(MSG)
        first, second = s.requests
        self.assertEqual(first["body"], MSG)
        self.assertEqual(first["headers"]["authorization"], "Bearer t0k")
        self.assertEqual(first["headers"]["content-type"], "application/json")
        self.assertTrue(0 < len(first["headers"]["idempotency-key"]) <= 200)
        self.assertNotEqual(first["headers"]["idempotency-key"], second["headers"]["idempotency-key"])
        c.dispatch(MSG, key="k-1")
        self.assertEqual(s.requests[2]["headers"]["idempotency-key"], "k-1")

    def test_a_repeat_answered_with_the_first_result_is_flagged_replayed(self):
        s = self.stub({("POST", "/v1/messages"): [ACCEPTED, {"status": 200, "body": {"deviceId": "fw1", "seq": 7}, "headers": {"Idempotent-Replayed": "true"}}]})
        c = self.client(s.url)
        c.dispatch(MSG, key="k")
        self.assertFalse(c.replayed)
        self.assertEqual(c.dispatch(MSG, key="k")["seq"], 7)
        self.assertTrue(c.replayed)

    def test_a_standby_307_is_followed_with_the_same_method_body_and_key_and_the_leader_kept(self):
        leader = self.stub({("POST", "/v1/messages"): [ACCEPTED], ("GET", "/v1/status"): [{"status": 200, "body": {"leading": True}}]})
        not_leader = {"error": {"code": "not-leader", "message": "r2 stands by; r1 leads", "details": {"leader": leader.url}}}
        standby = self.stub({("POST", "/v1/messages"): [{"status": 307, "headers": {"Location": leader.url + "/v1/messages"}, "body": not_leader}]})
        c = self.client(standby.url)
        self.assertEqual(c.dispatch(MSG, key="k-9")["seq"], 7)
        self.assertEqual(standby.requests[0]["headers"]["idempotency-key"], "k-9")
        self.assertEqual(leader.requests[0]["method"], "POST")
        self.assertEqual(leader.requests[0]["body"], MSG)
        self.assertEqual(leader.requests[0]["headers"]["idempotency-key"], "k-9")
        self.assertEqual(c.base_url, leader.url)
        c.status()
        self.assertEqual(len(standby.requests), 1)

    def test_a_307_with_only_a_location_is_followed_too(self):
        leader = self.stub({("POST", "/v1/devices/fw1/pause"): [{"status": 200, "body": {"outcome": "done"}}]})
        standby = self.stub({("POST", "/v1/devices/fw1/pause"): [{"status": 307, "headers": {"Location": leader.url + "/v1/devices/fw1/pause"}, "raw": b""}]})
        c = self.client(standby.url)
        self.assertEqual(c.pause("fw1"), {"outcome": "done"})
        self.assertEqual(c.base_url, leader.url)

    def test_a_connection_error_is_retried_with_the_same_key_on_the_next_url(self):
        live = self.stub({("POST", "/v1/batches"): [{"status": 202, "body": {"accepted": [{"deviceId": "fw1", "seq": 1}, {"deviceId": "fw1", "seq": 2}]}}]})
        c = self.client([dead_url(), live.url])
        self.assertEqual(c.batch([MSG, MSG], key="b-1"), [{"deviceId": "fw1", "seq": 1}, {"deviceId": "fw1", "seq": 2}])
        self.assertEqual(live.requests[0]["body"], {"messages": [MSG, MSG]})
        self.assertEqual(live.requests[0]["headers"]["idempotency-key"], "b-1")

    def test_a_dropped_connection_is_retried_with_the_same_key(self):
        s = self.stub({("POST", "/v1/messages"): [{"drop": True}, ACCEPTED]})
        c = self.client(s.url)
        self.assertEqual(c.dispatch(MSG)["seq"], 7)
        self.assertEqual(len(s.requests), 2)
        self.assertEqual(s.requests[0]["headers"]["idempotency-key"], s.requests[1]["headers"]["idempotency-key"])

    def test_a_503_is_waited_out_and_sent_again(self):
        no_leader = {"status": 503, "headers": {"Retry-After": "0"}, "body": {"error": {"code": "no-leader", "message": "no runtime leads right now"}}}
        s = self.stub({("POST", "/v1/messages"): [no_leader, ACCEPTED]})
        self.assertEqual(self.client(s.url).dispatch(MSG, key="k")["seq"], 7)
        self.assertEqual([r["headers"]["idempotency-key"] for r in s.requests], ["k", "k"])

    def test_a_409_key_in_flight_is_waited_out_and_sent_again_with_the_same_key(self):
        # the first request with this key is still being carried out (or its server died holding the claim): Retry-After, same key
        in_flight = {"status": 409, "headers": {"Retry-After": "0"}, "body": {"error": {"code": "idempotency-key-in-flight", "message": "still being carried out", "details": {"key": "k"}}}}
        s = self.stub({("POST", "/v1/messages"): [in_flight, in_flight, ACCEPTED]})
        self.assertEqual(self.client(s.url).dispatch(MSG, key="k")["seq"], 7)
        self.assertEqual([r["headers"]["idempotency-key"] for r in s.requests], ["k", "k", "k"])

    def test_other_409s_raise(self):
        conflict = {"status": 409, "body": {"error": {"code": "conflict", "message": "no"}}}
        s = self.stub({("POST", "/v1/messages"): [conflict, ACCEPTED]})
        with self.assertRaises(BatonError) as e:
            self.client(s.url).dispatch(MSG, key="k")
        self.assertEqual((e.exception.status, e.exception.code), (409, "conflict"))
        self.assertEqual(len(s.requests), 1)

    def test_errors_raise_the_api_error_shape(self):
        reused = {"error": {"code": "idempotency-key-reused", "message": "key k was used for another body", "details": {"key": "k"}}}
        s = self.stub({("POST", "/v1/messages"): [{"status": 422, "body": reused}]})
        with self.assertRaises(BatonError) as e:
            self.client(s.url).dispatch(MSG, key="k")
        self.assertEqual((e.exception.status, e.exception.code, e.exception.details), (422, "idempotency-key-reused", {"key": "k"}))
        self.assertEqual(e.exception.message, "key k was used for another body")
        self.assertEqual(len(s.requests), 1)

    def test_it_gives_up_when_no_server_answers(self):
        with self.assertRaises(BatonError) as e:
            BatonClient(dead_url(), attempts=2, backoff=0.001).status()
        self.assertEqual(e.exception.code, "unreachable")

    def test_wait_applied_asks_with_waitMs_until_applied_and_raises_on_a_dead_letter(self):
        path = "/v1/messages/fw1/7"
        s = self.stub({("GET", path): [{"status": 200, "body": {"deviceId": "fw1", "seq": 7, "fate": "accepted"}}, {"status": 200, "body": {"deviceId": "fw1", "seq": 7, "fate": "applied"}}]})
        c = self.client(s.url)
        self.assertEqual(c.wait_applied("fw1", 7, timeout_s=30)["fate"], "applied")
        self.assertTrue(all("waitMs=" in r["path"] for r in s.requests))
        dead = {"deviceId": "fw1", "seq": 8, "fate": "dead-lettered", "answer": {"status": 422, "reason": "device rejected the message (422)"}}
        s2 = self.stub({("GET", "/v1/messages/fw1/8"): [{"status": 200, "body": dead}]})
        with self.assertRaises(BatonError) as e:
            self.client(s2.url).wait_applied("fw1", 8)
        self.assertEqual(e.exception.code, "device-rejected")
        self.assertIn("device rejected the message (422)", e.exception.message)

    def test_sse_parser(self):
        stream = [b": keep-alive\n", b"id: 3-1\n", b"event: applied\n", b'data: {"deviceId": "fw1",\n', b'data: "from": 1, "to": 2}\n', b"\n",
                  b"event: alarm\n", b"data: not json\n", b"\n", b"id: 3-2\n", b"data: {}\n"]
        evs = list(parse_sse(stream))
        self.assertEqual([(e.id, e.type, e.data) for e in evs], [("3-1", "applied", {"deviceId": "fw1", "from": 1, "to": 2}), (None, "alarm", "not json")])

    def test_events_connect_again_after_the_last_id_seen(self):
        first = b'id: 4-1\nevent: applied\ndata: {"seq": 1}\n\nid: 4-2\nevent: applied\ndata: {"seq": 2}\n\n'
        second = b'id: 4-3\nevent: dead-lettered\ndata: {"seq": 3}\n\n'
        s = self.stub({("GET", "/v1/events"): [{"status": 200, "type": "text/event-stream", "raw": first}, {"status": 200, "type": "text/event-stream", "raw": second}]})
        got = []
        for ev in self.client(s.url).events(last_event_id="4-0"):
            got.append((ev.id, ev.type, ev.data))
            if len(got) == 3:
                break
        self.assertEqual(got, [("4-1", "applied", {"seq": 1}), ("4-2", "applied", {"seq": 2}), ("4-3", "dead-lettered", {"seq": 3})])
        self.assertEqual([r["headers"].get("last-event-id") for r in s.requests], ["4-0", "4-2"])

    def test_an_id_the_server_cannot_resume_from_yields_resync_then_the_stream_from_now(self):
        refused = {"error": {"code": "invalid-request", "message": "event 4-2 is of leader term 4", "details": {"field": "Last-Event-ID", "reason": "leader-changed", "newest": "5-9"}}}
        s = self.stub({("GET", "/v1/events"): [{"status": 400, "body": refused}, {"status": 200, "type": "text/event-stream", "raw": b'id: 5-10\nevent: applied\ndata: {"seq": 4}\n\n'}]})
        got = []
        for ev in self.client(s.url).events(last_event_id="4-2"):
            got.append((ev.id, ev.type, ev.data))
            if len(got) == 2:
                break
        self.assertEqual(got[0][:2], (None, "resync"))
        self.assertEqual(got[0][2]["reason"], "leader-changed")
        self.assertEqual(got[1], ("5-10", "applied", {"seq": 4}))
        self.assertEqual([r["headers"].get("last-event-id") for r in s.requests], ["4-2", None])


if __name__ == "__main__":
    unittest.main()
