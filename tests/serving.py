"""Test servers served from a thread that stop at once. serve_forever looks at its shutdown flag
once per poll interval; at the default half second, waiting for it was a third of the suite."""
import threading

POLL_SECONDS = 0.01


class Serving:
    """Serve a socketserver-style server (werkzeug's or http.server's) until stop()."""

    def __init__(self, server):
        self.server = server
        self.thread = threading.Thread(target=server.serve_forever, args=(POLL_SECONDS,),
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
