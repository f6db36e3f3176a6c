"""dashboard_cdp.py: drives a headless Chromium through the DevTools
protocol for test_dashboard_shows_new_data_in_chromium.sh (python3-websocket).

usage: dashboard_cdp.py CDP_PORT PAGE_URL WRITE_SCRIPT TEXT...

Loads PAGE_URL, waits for the page's first render (its body's
data-refreshes), checks that no TEXT is shown yet, runs WRITE_SCRIPT (which
writes the rows), then waits until every TEXT is in the rendered page. Every
request the page made is recorded (Network domain); each must go to the
origin of PAGE_URL. Prints the rendered text of the page to stdout at the
end; exits 1 with a message on stderr on any failure, an error the page
logged (a request its Content-Security-Policy refused is one) included.
"""
import json
import subprocess
import sys
import time
import urllib.request

import websocket


class Cdp:
    """One DevTools session on a page target."""

    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=10,
                                              suppress_origin=True)
        self.next_id = 0
        self.requests = []
        self.errors = []

    def _event(self, msg):
        if msg.get("method") == "Network.requestWillBeSent":
            self.requests.append(msg["params"]["request"]["url"])
        elif msg.get("method") == "Log.entryAdded":
            e = msg["params"]["entry"]
            if e.get("level") == "error":	# a CSP refusal among them
                self.errors.append("%s: %s" % (e.get("url"), e.get("text")))
        elif msg.get("method") == "Runtime.exceptionThrown":
            self.errors.append(str(msg["params"]["exceptionDetails"]))

    def call(self, method, **params):
        self.next_id += 1
        mid = self.next_id
        self.ws.send(json.dumps({"id": mid, "method": method,
                                 "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            self._event(msg)

    def js(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError("%s: %s" % (expr, r["exceptionDetails"]))
        return r["result"].get("value")


def die(msg):
    print("dashboard_cdp: " + msg, file=sys.stderr)
    sys.exit(1)


def wait(what, secs, cond):
    deadline = time.time() + secs
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.2)
    die("timed out (%d s): %s" % (secs, what))


def main():
    port, url, write = sys.argv[1], sys.argv[2], sys.argv[3]
    texts = sys.argv[4:]
    origin = "/".join(url.split("/")[:3]) + "/"

    targets = wait("DevTools answers", 30, lambda: _targets(port))
    page = [t for t in targets if t.get("type") == "page"]
    if not page:
        die("no page target: %r" % targets)
    cdp = Cdp(page[0]["webSocketDebuggerUrl"])
    cdp.call("Network.enable")
    cdp.call("Runtime.enable")
    cdp.call("Log.enable")
    cdp.call("Page.navigate", url=url)

    text = "document.body ? document.body.innerText : ''"
    refreshes = ("Number(document.body && "
                 "document.body.getAttribute('data-refreshes') || 0)")
    # the first render: data from the API, no request held open before it
    wait("first render", 20, lambda: cdp.js(refreshes) >= 1)
    first = cdp.js(text)
    for t in texts:
        if t in first:
            die("%r shown before it was written" % t)
    lang = cdp.js("document.documentElement.lang")
    if lang != "de" or "Laboraktivit\u00e4t" not in first:
        die("German labels expected under --lang=de: lang=%r" % lang)

    n = cdp.js(refreshes)
    subprocess.run(["bash", write], check=True)
    wait("rows written after load shown: %r" % texts, 40,
         lambda: all(t in cdp.js(text) for t in texts))
    if cdp.js(refreshes) <= n:
        die("new rows shown without a new poll")

    # the language toggle
    cdp.js("document.getElementById('lang-en').click()")
    wait("English labels after the toggle", 5,
         lambda: "Lab activity" in cdp.js(text))
    final = cdp.js(text)

    cdp.call("Runtime.evaluate", expression="1")	# drain pending events
    if cdp.errors:
        die("the page logged errors: %s" % "; ".join(cdp.errors))
    if not cdp.requests:
        die("no request recorded")
    for u in cdp.requests:
        if not u.startswith(origin):
            die("a request left %s: %s" % (origin, u))
    print("requests: %d, all to %s" % (len(cdp.requests), origin),
          file=sys.stderr)
    try:
        cdp.call("Browser.close")
    except Exception:	# the browser may go before it answers
        pass
    sys.stdout.write(final)


def _targets(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%s/json/list" % port,
                                    timeout=2) as r:
            return json.load(r)
    except OSError:
        return None


if __name__ == "__main__":
    main()
