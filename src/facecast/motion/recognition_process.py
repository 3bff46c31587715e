"""Speech recognition in a child process, beside the work that does not need its words.

Recognising the speech of an audio-only render (:func:`facecast.motion.recognition.recognise`,
about 0.1 s of CPU per audio second) used to run before the portrait's set-up; in a thread
beside it, it measured slower still, because pocketsphinx holds the GIL while it decodes.
A child Python decodes on the other core instead, while the parent checks the face, loads
the audio and sets up the portrait.

:class:`RecognitionProcess` starts the child before the audio is at hand (its own imports
then overlap the parent's face check), :meth:`~RecognitionProcess.send` hands it the
audio's samples and :meth:`~RecognitionProcess.result` waits for its pickled
:class:`~facecast.motion.recognition.Recognition`. The child also answers what it heard
after each chunk of the audio but the last (:meth:`~RecognitionProcess.next_part`), so
that a render can start on the first seconds while the rest is decoded. The child runs the very same
:func:`~facecast.motion.recognition.recognise` on the very same samples (a fresh decoder
either way), so the words and phones are the ones the parent would have found itself.
Whatever goes wrong there (the child cannot start, dies, answers nothing usable) the
parent recognises the audio itself: slower, never different.

The child is a plain ``python -c`` started with :mod:`subprocess`, not a
:mod:`multiprocessing` process: the service runs renders in daemonic worker processes,
which multiprocessing does not allow to have children, and its ``spawn`` start method
would import the parent's ``__main__`` module again in the child.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from facecast.media.audio import Audio
    from facecast.motion.recognition import Recognition

# Nothing but the standard library at import: the ``facecast render`` command starts the
# child before it imports NumPy, the media stack and the pipeline (about 0.25 s of CPU),
# and the child's imports then run beside the parent's. The recogniser is imported where
# it is used (in the child; in the parent only if the child fails).

log = logging.getLogger(__name__)

# The package's root (the folder holding ``facecast``): the child's working folder, so its
# ``python -c`` imports this very facecast (its sys.path starts with the working folder).
_ROOT = Path(__file__).resolve().parents[2]
_CHILD_CODE = "from facecast.motion.recognition_process import serve; serve()"
# The child decodes on one core: no BLAS or OpenMP thread pools to start for it.
_CHILD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
_PR_SET_PDEATHSIG = 1
# Each answer on the child's stdout: its pickle's length (8 bytes, little-endian), then it.
_LENGTH = struct.Struct("<Q")
_END = object()  # the child's stdout closed


def recognises(audio: object, text: object, transcript: object) -> bool:
    """Whether a render of these speech fields recognises its speech: audio given without
    its words (a text is spoken by piper, whose phones are known; a transcript is aligned)."""
    return audio is not None and text is None and not transcript


def start_recogniser(audio: object, text: object, transcript: object
                     ) -> RecognitionProcess | None:
    """A recogniser's child started now for a render of these speech fields, or None when
    it will not recognise. For a caller that has yet to import the pipeline (the
    ``facecast render`` command): the child's imports then run beside the parent's."""
    return RecognitionProcess() if recognises(audio, text, transcript) else None


class RecognitionProcess:
    """One recognition in a child process: start it early, :meth:`send` the audio,
    :meth:`result` when the words are needed, and :meth:`close` it in any case (a
    context manager does). Not thread-safe: one caller drives it."""

    def __init__(self) -> None:
        self._audio: Audio | None = None
        self._answers: queue.Queue[object] = queue.Queue()
        self._errors = b""
        self._thread: threading.Thread | None = None
        self._heard: Recognition | None = None
        self._ended = False  # the child's answers have all been read
        self._closed = False
        self._reaped = False  # close() has run (a second close does nothing)
        self.in_child = False  # whether the result came from the child (False: recognised here)
        self.wait_s = 0.0  # how long next_part() and result() waited for the child, in all
        self._proc: subprocess.Popen[bytes] | None = None
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _CHILD_CODE, str(os.getpid())],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                cwd=_ROOT, env={**os.environ, **_CHILD_ENV}, close_fds=True)
        except (OSError, ValueError) as exc:  # no executable, no processes left, ...
            log.warning("speech recognition could not start a child process (%s): "
                        "recognising in this one", exc)

    def __enter__(self) -> RecognitionProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def send(self, audio: Audio) -> None:
        """Hand ``audio`` to the child (it starts decoding at once); returns at once."""
        if self._audio is not None:
            raise RuntimeError("a RecognitionProcess recognises one audio")
        self._audio = audio
        proc = self._proc
        if proc is None:
            self._answers.put(_END)  # nothing will answer: next_part() recognises here
            return
        payload = pickle.dumps((audio.samples, audio.sample_rate),
                               protocol=pickle.HIGHEST_PROTOCOL)

        def talk() -> None:
            # The child reads all of its stdin before it writes anything, so writing the
            # samples (many pipe buffers, while it may still be importing) and then reading
            # its answers one by one cannot deadlock; stderr is read last (it writes
            # nothing there unless it fails).
            try:
                assert proc.stdin is not None and proc.stdout is not None
                with contextlib.suppress(OSError, ValueError):
                    proc.stdin.write(payload)
                with contextlib.suppress(OSError, ValueError):
                    proc.stdin.close()
                with contextlib.suppress(OSError, ValueError):
                    while (head := proc.stdout.read(_LENGTH.size)) and \
                            len(head) == _LENGTH.size:
                        body = proc.stdout.read(_LENGTH.unpack(head)[0])
                        self._answers.put(body)
                with contextlib.suppress(OSError, ValueError):
                    self._errors = proc.stderr.read() if proc.stderr is not None else b""
                with contextlib.suppress(OSError, ValueError):
                    proc.wait()
            finally:
                self._answers.put(_END)

        self._thread = threading.Thread(target=talk, name="facecast-recognition", daemon=True)
        self._thread.start()

    @property
    def sent(self) -> bool:
        """Whether :meth:`send` was called."""
        return self._audio is not None

    def next_part(self) -> Recognition:
        """What the child heard next: a partial recognition (``until_s`` set: the words of
        the audio up to there are final), or at last the whole one, as :meth:`result`
        gives it. Waits for it (the time adds to :attr:`wait_s`)."""
        if self._audio is None:
            raise RuntimeError("send() the audio before asking for the result")
        if self._heard is not None:
            return self._heard
        t = time.perf_counter()
        heard = None
        while heard is None and not self._ended:
            answer = self._answers.get()
            if self._closed:  # close() ended the child: nobody wants the words any more
                raise RuntimeError("the recognition was closed")
            if answer is _END:
                self._ended = True
                break
            heard = self._unpickled(answer)
            if heard is None:  # garbled: nothing after it can be trusted either
                self._ended = True
        self.wait_s += time.perf_counter() - t
        if heard is not None and heard.partial:
            return heard
        self.in_child = heard is not None  # a whole answer, unpickled: the child finished
        if heard is None:
            from facecast.motion.recognition import recognise

            self._warn()
            # the same chunks in the same order: the parts already given stay true
            heard = recognise(self._audio)
        assert heard is not None
        self._heard = heard
        return heard

    def result(self) -> Recognition:
        """The recognition of the audio given to :meth:`send`: the child's answer, or, if it
        failed, this process's own (the same function on the same samples)."""
        heard = self.next_part()
        while heard.partial:
            heard = self.next_part()
        return heard

    def _unpickled(self, answer: object) -> Recognition | None:
        from facecast.motion.recognition import Recognition

        try:
            heard = pickle.loads(answer)  # type: ignore[arg-type]  # our own child's answer
        except Exception as exc:  # a truncated or garbled answer: recognise here instead
            log.warning("speech recognition's child process answered nothing usable (%s): "
                        "recognising in this one", exc)
            return None
        return heard if isinstance(heard, Recognition) else None

    def _warn(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if self._thread is not None:
            self._thread.join()
        why = self._errors.decode(errors="replace").strip().splitlines()[-1:]
        log.warning("speech recognition's child process failed (exit %s%s): recognising "
                    "in this one", proc.returncode, f", {why[0]}" if why else "")

    @property
    def pid(self) -> int | None:
        """The child's process id (None when it could not start)."""
        return self._proc.pid if self._proc is not None else None

    def close(self) -> None:
        """End the child if it still runs (its answer is no longer wanted) and reap it.
        Closing again does nothing (the command and the render both close the one the
        command started)."""
        if self._reaped:
            return
        self._reaped = True
        self._closed = self._heard is None
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.kill()
        if self._thread is not None:
            self._thread.join()  # its reads end once the pipes close
        with contextlib.suppress(OSError, ValueError):
            proc.communicate()  # reaps it and closes the pipes (a no-op after the thread's)


def _end_with_parent(parent: int) -> None:
    """Be killed when the parent dies (a canceled job's worker killed hard must not leave
    a decoder running for a minute), and end now if it is already gone."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL),
                                                    0, 0, 0)
    if os.getppid() != parent:
        sys.exit(0)


def serve() -> None:
    """The child's side: read one pickled ``(samples, sample_rate)`` from stdin, write the
    pickled partial :class:`Recognition` after each chunk and then the whole one to stdout
    (each after its length)."""
    _end_with_parent(int(sys.argv[1]) if len(sys.argv) > 1 else os.getppid())
    from facecast.media.audio import Audio
    from facecast.motion.recognition import new_decoder, recognise

    # The models load (0.2-0.3 s) while the parent still checks the face; unused until the
    # audio comes, the decoder is as fresh as recognise() would make it.
    decoder = new_decoder()
    data = sys.stdin.buffer.read()
    if not data:  # the parent no longer wants it
        return
    samples, rate = pickle.loads(data)  # our parent's samples

    def answer(heard: Recognition) -> None:
        body = pickle.dumps(heard, protocol=pickle.HIGHEST_PROTOCOL)
        sys.stdout.buffer.write(_LENGTH.pack(len(body)) + body)
        sys.stdout.buffer.flush()  # the parent may start rendering on it now

    answer(recognise(Audio(samples, int(rate)), decoder=decoder, on_chunk=answer))
