"""The tests' auth hook: admits the token `hook-user` as a user of `in-*` (kept 60 s) and `hook-short` as a reader of
`in-*` (not kept); refuses every other token with 403. Counts the questions it was asked (GET /count). Prints its port
on the first line. Usage: python3 auth_hook.py"""
from json_server import JSONHandler, serve

asked = {"count": 0}


class Handler(JSONHandler):
    def do_POST(self):
        body = self.body()
        asked["count"] += 1
        if body["token"] == "hook-user":
            self.answer(200, {"allow": True, "role": "user", "workspaces": ["in-*"], "ttlSeconds": 60})
        elif body["token"] == "hook-short":
            self.answer(200, {"allow": True, "role": "reader", "workspaces": ["in-*"]})
        else:
            self.answer(403, {"allow": False})

    def do_GET(self):
        self.answer(200, asked)


serve(Handler)
