"""Virtual speaker and microphone for tests and benchmarks: a private PulseAudio server.

Two null sinks: `roleplay_speaker` (the default output) and `roleplay_mic`, whose monitor is
the default input. A scripted trainee plays into `roleplay_mic`; `loopback()` also lets the
speaker leak into the microphone, like a laptop without a headset. PortAudio reaches the
server through ALSA's `pulse` plug-in (libasound2-plugins), which makes itself the ALSA
default when a server answers at PULSE_SERVER.

Both null sinks are kept busy by a server-side loopback from a silent null source at
KEEPALIVE_LATENCY_MS. An idle null sink renders in blocks of up to 2 s: a stream opened on it
waited up to 1.7 s for its first callback, and on the microphone side the capture buffer
filled meanwhile, so injected sound then arrived about 1.6 s late for the rest of the stream
(PortAudio reported that input latency too). Kept busy, streams after the first started
within 0.1 s and heard injected sound on time.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from roleplay.audio import devices
from roleplay.audio.clip import Audio
from roleplay.core.constants import RATE_HZ
from roleplay.core.errors import RoleplayError

SPEAKER_SINK = "roleplay_speaker"
MIC_SINK = "roleplay_mic"
SILENCE_SOURCE = "roleplay_silence"
KEEPALIVE_LATENCY_MS = 10

START_TIMEOUT_S = 10.0
INJECT_LATENCY_MS = 20  # pacat's buffer: how late an injected sound may start
_REQUIRED_TOOLS = ("pulseaudio", "pactl", "pacat")
_CLIENT_ENV_KEYS = ("PULSE_SERVER", "PULSE_COOKIE", "PULSE_SINK", "PULSE_SOURCE")


@dataclass(frozen=True)
class Injection:
    """A sound being played into the virtual microphone by a `pacat` process."""

    due_monotonic_s: float  # when its first sample is written to pacat
    _process: subprocess.Popen[bytes]
    _writer: threading.Thread

    def wait(self, *, timeout_s: float) -> None:
        """Block until pacat has played it all; RoleplayError if pacat failed or hung."""
        self._writer.join(timeout_s)
        try:
            self._process.wait(timeout=max(0.1, timeout_s))
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
            raise RoleplayError(
                f"pacat did not finish playing into the microphone in {timeout_s:g} s"
            ) from None
        stderr = self._process.stderr
        assert stderr is not None  # started with stderr=PIPE
        err = stderr.read().decode(errors="replace").strip()
        stderr.close()
        if self._process.returncode != 0:
            raise RoleplayError(f"pacat failed: {err}")


@dataclass(frozen=True)
class VirtualDevices:
    runtime_dir: Path
    env: Mapping[str, str]  # for client subprocesses (pactl, pacat, a child `roleplay`)
    _process: subprocess.Popen[bytes]
    speaker_sink: str = SPEAKER_SINK
    mic_sink: str = MIC_SINK

    @property
    def mic_source(self) -> str:
        return f"{self.mic_sink}.monitor"

    @property
    def speaker_monitor(self) -> str:
        return f"{self.speaker_sink}.monitor"

    @property
    def running(self) -> bool:
        return self._process.poll() is None

    def pactl(self, *args: str) -> str:
        done = subprocess.run(
            ["pactl", *args], env=self._client_env(), capture_output=True, text=True, timeout=10, check=False
        )
        if done.returncode != 0:
            raise RoleplayError(f"pactl {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def _client_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def play_into_mic(self, audio: Audio, *, delay_s: float = 0.0) -> Injection:
        """Play audio into the virtual microphone `delay_s` from now (a scripted trainee).

        pacat starts at once and gets the samples when due, so its start-up time does not
        delay the sound; it starts within about INJECT_LATENCY_MS of the due time.
        """
        process = subprocess.Popen(
            [
                "pacat",
                "--playback",
                "--raw",
                f"--device={self.mic_sink}",
                "--format=float32le",
                f"--rate={audio.rate_hz}",
                "--channels=1",
                f"--latency-msec={INJECT_LATENCY_MS}",
                "--client-name=roleplay-trainee",
            ],
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self._client_env(),
        )
        due = time.monotonic() + delay_s
        data = np.ascontiguousarray(audio.samples, dtype="<f4").tobytes()

        def write() -> None:
            time.sleep(max(0.0, due - time.monotonic()))
            assert process.stdin is not None  # started with stdin=PIPE
            with contextlib.suppress(BrokenPipeError):  # pacat died: wait() reports it
                process.stdin.write(data)
                process.stdin.close()

        writer = threading.Thread(target=write, name="roleplay-inject", daemon=True)
        writer.start()
        return Injection(due_monotonic_s=due, _process=process, _writer=writer)

    @contextlib.contextmanager
    def loopback(
        self, *, exact: bool = False, latency_ms: int = 20, gain_db: float = 0.0
    ) -> Iterator[None]:
        """Let the microphone hear the speaker; streams opened inside the block see it.

        exact=False: module-loopback mixes the speaker into `roleplay_mic`, together with
        whatever is injected (a laptop without a headset). Its rate control makes the lag
        drift by about 0.1 ms a second, with an occasional 2 ms jump.
        exact=True: the default input becomes the speaker's monitor: the microphone records
        exactly what was played (no injected sound), for sample-exact checks.
        gain_db (exact=False only): how loud the speaker reaches the microphone; a laptop's
        loudspeaker is well below the voice of the person in front of it.
        """
        if exact:
            self.pactl("set-default-source", self.speaker_monitor)
            undo = ("set-default-source", self.mic_source)
        else:
            module = self.pactl(
                "load-module",
                "module-loopback",
                f"source={self.speaker_monitor}",
                f"sink={self.mic_sink}",
                f"latency_msec={latency_ms}",
                "source_dont_move=true",
                "sink_dont_move=true",
            ).strip()
            undo = ("unload-module", module)
            if gain_db:
                self._set_module_input_volume(module, gain_db)
        try:
            yield
        finally:
            if self.running:
                self.pactl(*undo)

    def _set_module_input_volume(self, module: str, gain_db: float) -> None:
        """Set the volume of the sink input that `module` owns (a loopback's)."""
        index = None
        for block in self.pactl("list", "sink-inputs").split("Sink Input #")[1:]:
            if f"Owner Module: {module}\n" in block + "\n":
                index = block.split("\n", 1)[0].strip()
        if index is None:
            raise RoleplayError(f"no sink input of module {module} to set the loopback gain on")
        self.pactl("set-sink-input-volume", index, f"{gain_db:+.1f}dB")

    def stop(self) -> None:
        """Kill the server: open streams on it fail, as when a headset is pulled out."""
        if self.running:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


@contextlib.contextmanager
def virtual_devices() -> Iterator[VirtualDevices]:
    """Start a private PulseAudio server, point this process's PortAudio at it, clean up after.

    Sets PULSE_SERVER (and PULSE_COOKIE) in os.environ while active and re-initialises
    PortAudio on entry and exit, so no audio stream may be open across either.
    """
    missing = [tool for tool in _REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        raise RoleplayError(
            f"virtual audio devices need PulseAudio, but {', '.join(missing)} is not installed "
            "(Debian: apt-get install pulseaudio pulseaudio-utils libasound2-plugins)"
        )
    runtime_dir = Path(tempfile.mkdtemp(prefix="roleplay-pulse-"))
    socket = runtime_dir / "native"
    client_env = {
        "PULSE_SERVER": f"unix:{socket}",
        "PULSE_COOKIE": str(runtime_dir / "cookie"),  # keeps clients out of ~/.config/pulse
    }
    saved_env = {key: os.environ.get(key) for key in _CLIENT_ENV_KEYS}
    process = _start_server(runtime_dir, socket)
    vd = VirtualDevices(runtime_dir=runtime_dir, env=client_env, _process=process)
    try:
        _wait_until_ready(vd, runtime_dir / "server.log")
        vd.pactl("set-default-sink", vd.speaker_sink)
        vd.pactl("set-default-source", vd.mic_source)
        for key in ("PULSE_SINK", "PULSE_SOURCE"):  # they would override the defaults above
            os.environ.pop(key, None)
        os.environ.update(client_env)
        devices.rescan()
        yield vd
    finally:
        vd.stop()
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        devices.rescan()
        shutil.rmtree(runtime_dir, ignore_errors=True)


def _start_server(runtime_dir: Path, socket: Path) -> subprocess.Popen[bytes]:
    # Not daemonized (-D), so the Popen owns the pid; -n skips default.pa and with it
    # module-suspend-on-idle, under which duplex recordings came back silent.
    command = [
        "pulseaudio",
        "-n",
        "--daemonize=no",
        "--exit-idle-time=-1",
        "--use-pid-file=no",
        "--disallow-exit",
        # Without shared memory: with it, a client's libpulse deadlocked when the server
        # vanished (its mainloop waited in pa_memimport_free holding the lock that the
        # PortAudio thread wanted), so stream.abort() hung instead of reporting the loss.
        "--disable-shm=yes",
        "--log-target=stderr",
        "-L",
        f"module-native-protocol-unix socket={socket} auth-anonymous=1",
        "-L",
        f"module-null-sink sink_name={SPEAKER_SINK} rate={RATE_HZ} channels=1",
        "-L",
        f"module-null-sink sink_name={MIC_SINK} rate={RATE_HZ} channels=1",
        "-L",
        f"module-null-source source_name={SILENCE_SOURCE} rate={RATE_HZ} channels=1",
    ]
    for sink in (SPEAKER_SINK, MIC_SINK):  # keep-alive: see the module docstring
        command += [
            "-L",
            f"module-loopback source={SILENCE_SOURCE} sink={sink} "
            f"latency_msec={KEEPALIVE_LATENCY_MS} source_dont_move=true sink_dont_move=true",
        ]
    server_env = {
        **os.environ,
        # Its own runtime, state and home: no clash with another server, nothing in ~ (as
        # root it only warns that it is not meant to run as root).
        "PULSE_RUNTIME_PATH": str(runtime_dir),
        "PULSE_STATE_PATH": str(runtime_dir / "state"),
        "HOME": str(runtime_dir),
        "XDG_CONFIG_HOME": str(runtime_dir / "config"),
        "XDG_RUNTIME_DIR": str(runtime_dir),
    }
    with open(runtime_dir / "server.log", "wb") as log:
        return subprocess.Popen(
            command,
            env=server_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # Ctrl-C in the terminal reaches us, and we stop it
        )


def _wait_until_ready(vd: VirtualDevices, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if not vd.running:
            break
        try:
            vd.pactl("info")
            return
        except RoleplayError:
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
    lines = [
        line for line in log_path.read_text(errors="replace").splitlines() if line.startswith("E:")
    ]
    reason = lines[-1] if lines else "no error logged"
    raise RoleplayError(f"the virtual PulseAudio server did not start: {reason}")
