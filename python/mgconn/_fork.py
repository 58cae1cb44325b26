"""mgconn in the child of os.fork() (multiprocessing, gunicorn --preload, Celery prefork).

The parent's runtime has no threads in the child and must not be touched there (a lock one of its
threads held stays locked). The fork itself makes nothing: at-fork handlers also run in the child of
``subprocess.Popen(preexec_fn=...)`` between fork and exec, where making threads or connections is
unsafe and a warning would be noise. The C extension counts forks, and a runtime made before the
last one is ``foreign()`` (an integer compare, no getpid).

The child's first use of mgconn remakes it (``mgconn._remake_after_fork``): a runtime of its own,
every connection made before the fork made again on it with the same URI and options, its models,
collections and use_db children rebound, and a RuntimeWarning, once (as PyMongo warns in a child).
Where the first use is noticed:

- operations (Collection._call, Cursor._fetch, Future.result, mgconn.poll): nothing on their way.
  The extension refuses an object of the parent's runtime with a RuntimeError; the layer then asks
  ``remade_for(host)`` and, when it says so, issues the call again on the remade objects, once.
- everything else that reaches the runtime (making a connection, events, readyState, open, close,
  model registration, awaiting): ``remade_for(host)`` first.

An operation in flight at the fork belongs to the parent: its ``.result()`` in the child raises a
RuntimeError at once (after remaking, as any first use does).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from ._host import Host

remake: Callable[[], None] = lambda: None
"""Makes the child's runtime and remakes the objects on it (set by the package: it holds them)."""


def remade_for(host: "Host") -> bool:
    """True when `host` is the parent's (made before a fork): this process's mgconn has then been
    remade, now or by an earlier first use, and the caller looks its objects up again."""
    if host.runtime.foreign():
        remake()
        return True
    return False
