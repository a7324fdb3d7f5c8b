"""Work that holds one native call for long (argon2 password hashing, a batch of request-log
rows) runs where it cannot stall a gevent worker: in gevent's pool of native threads, while the
worker's event loop goes on serving every other connection. Under plain threads (gthread, the
development server, the tests) each request already has a thread of its own."""
import gevent
from gevent import monkey


def off_the_loop(function, *args):
    if monkey.is_module_patched("threading"):
        return gevent.get_hub().threadpool.apply(function, args)
    return function(*args)
