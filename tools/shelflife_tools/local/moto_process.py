"""moto's server in a process of its own, for the local stack.

In the stack's process, moto's server shared one interpreter lock with every function,
the gateway and the clients: half of the load run's CPU was moto answering, on one core
of two. In its own process it answers on the other core, as AWS answers elsewhere than
in the function.

The child is ``python -m shelflife_tools.local.moto_process``: it applies
``moto_quirks`` itself (patches live per process), prints the port it listens on, and
serves until its standard input closes, which happens when the stack stops it or when
the stack's process dies, so no server outlives the stack that started it. (Not
``multiprocessing``: its spawn runs the parent's main script again, which a user's
unguarded script does not survive.)
"""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
import sys
import threading

# How long the child may take to import moto and listen.
START_TIMEOUT = 60.0


class MotoProcess:
    """``start()`` returns the endpoint (``http://127.0.0.1:<port>``); ``stop()`` ends
    the process. ``port=0`` takes a free port."""

    def __init__(self, *, port: int = 0) -> None:
        self.port = port
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> str:
        process = subprocess.Popen(
            [sys.executable, "-m", __name__, str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._process = process
        assert process.stdout is not None
        first_line: list[str] = []
        reader = threading.Thread(
            target=lambda: first_line.append(process.stdout.readline()),  # type: ignore[union-attr]
            daemon=True,
        )
        reader.start()
        reader.join(START_TIMEOUT)
        line = first_line[0].strip() if first_line else ""
        if not line.isdigit():
            self.stop()
            raise RuntimeError(
                "moto's server did not start "
                + (
                    f"(exit code {process.returncode})"
                    if process.returncode is not None
                    else f"within {START_TIMEOUT:.0f} s"
                )
            )
        return f"http://127.0.0.1:{line}"

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):  # already gone
                process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if process.stdout is not None:
            process.stdout.close()


def main(argv: list[str]) -> None:
    from moto.server import ThreadedMotoServer

    from shelflife_tools.local import moto_quirks

    # Ctrl-C in a terminal reaches the whole process group: the stack stops this
    # server itself, after saving its state from it, so the child does not end first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # moto's server logs every request it serves; the functions' logs are enough.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto_quirks.apply()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(argv[0]), verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    sys.stdin.read()  # until the stack closes it, or its process ends
    server.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
