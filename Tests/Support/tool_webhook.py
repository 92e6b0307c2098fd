"""The tests' toolkit webhook on the host: answers every POST with JSON
`{"echo": input, "tool": tool, "workspace": workspace, "callId": callId, "auth": Authorization header}`; a tool
named `fail` gets 500 and `slow` waits 5 s first. Prints its port on the first line. Usage: python3 tool_webhook.py"""
import time
from json_server import JSONHandler, serve


class Handler(JSONHandler):
    def do_POST(self):
        body = self.body()
        if body["tool"] == "slow":
            time.sleep(5)
        if body["tool"] == "fail":
            return self.answer(500, b"oops", "text/plain")
        self.answer(200, {"echo": body["input"], "tool": body["tool"], "workspace": body["workspace"],
                          "callId": body["callId"], "auth": self.headers.get("Authorization")})


serve(Handler)
