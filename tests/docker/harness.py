"""Drive the real Docker tooling for the container tests: packages, dockerd, base image,
image builds and a docker-compose project. Every wait is bounded.

Also a command line for doing the same by hand (``python -m tests.docker.harness --help``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("tests.docker")

REPO = Path(__file__).resolve().parents[2]
BASE_IMAGE = "debian:bookworm-slim"
SERVE_IMAGE = "rectifier:serve"
DEBIAN_PACKAGES = ("docker.io", "docker-compose", "debootstrap")
# The container tests' measurements (build time, image size, time to ready), which
# tests/docker/conftest.py prints after the run.
REPORT: dict[str, float] = {}
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# The build context, as .dockerignore allows it; models and examples come along for the test.
CONTEXT_PATHS = (
    ".dockerignore",
    "Dockerfile",
    "docker-compose.yml",
    "pyproject.toml",
    "README.md",
    "docker",
    "model",
    "service",
    "training",
)


class DockerUnavailable(RuntimeError):
    """Docker cannot be used here (not root, packages not installable): the tests skip."""


def run(
    args: Sequence[str | Path],
    *,
    timeout: float,
    check: bool = True,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    capture: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a command with a hard timeout; on failure raise with its output's tail."""
    command = [str(arg) for arg in args]
    log.debug("$ %s", " ".join(command))
    result = subprocess.run(
        command,
        timeout=timeout,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.STDOUT if capture else None,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if check and result.returncode != 0:
        tail = (result.stdout or "")[-4000:]
        raise RuntimeError(f"{' '.join(command)} exited {result.returncode}:\n{tail}")
    return result


# --- packages and the daemon ------------------------------------------------------------


def ensure_packages() -> None:
    """Install docker.io, docker-compose and debootstrap from Debian when any is missing."""
    missing = [tool for tool in ("dockerd", "docker-compose", "debootstrap") if not _which(tool)]
    if not missing:
        return
    if os.geteuid() != 0:
        raise DockerUnavailable(f"{', '.join(missing)} missing and not root to install them")
    if not _which("apt-get"):
        raise DockerUnavailable(f"{', '.join(missing)} missing and no apt-get")
    log.info("installing %s", " ".join(DEBIAN_PACKAGES))
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    try:
        run(["apt-get", "update", "-q"], timeout=300, env=env)
        run(["apt-get", "install", "-y", "-q", *DEBIAN_PACKAGES], timeout=600, env=env)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        raise DockerUnavailable(f"could not install {' '.join(DEBIAN_PACKAGES)}: {exc}") from exc


def _which(tool: str) -> str | None:
    # dockerd and debootstrap live in sbin, which a non-login PATH may lack.
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin:/usr/local/sbin")


def daemon_running() -> bool:
    try:
        return run(["docker", "info"], timeout=30, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


@contextlib.contextmanager
def docker_daemon(log_dir: Path) -> Iterator[int | None]:
    """Yield with dockerd answering; start it when none runs and stop what we started."""
    if daemon_running():
        yield None
        return
    if os.geteuid() != 0:
        raise DockerUnavailable("dockerd is not running and starting it needs root")
    dockerd = _which("dockerd")
    if dockerd is None:
        raise DockerUnavailable("dockerd is not installed")
    log_path = log_dir / "dockerd.log"
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            [dockerd],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    log.info("started dockerd, pid %d (log %s)", process.pid, log_path)
    try:
        deadline = time.monotonic() + 90
        while not daemon_running():
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"dockerd did not come up (exit {process.poll()}):\n{tail}")
            time.sleep(1)
        yield process.pid
    finally:
        log.info("stopping dockerd, pid %d", process.pid)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


# --- images -------------------------------------------------------------------------------


def ensure_base_image() -> None:
    """Pull debian:bookworm-slim, or build it locally when no registry answers."""
    run(["bash", REPO / "tests/docker/build_base_image.sh", BASE_IMAGE], timeout=1200)


def buildkit_cli() -> str:
    """A docker client that builds with BuildKit, so a target builds only its own stages.

    Docker >= 23 needs the buildx plugin for that; Debian's docker.io 20.10 client has
    BuildKit built in. The classic builder would build every stage (GBs of torch).
    """
    candidates = [c for c in dict.fromkeys([shutil.which("docker"), "/usr/bin/docker"]) if c]
    for cli in candidates:
        if not Path(cli).exists():
            continue
        if run([cli, "buildx", "version"], timeout=30, check=False).returncode == 0:
            return cli
        version = run([cli, "version", "-f", "{{.Client.Version}}"], timeout=30, check=False)
        major = version.stdout.strip().split(".")[0]
        if major.isdigit() and 18 <= int(major) < 23:
            return cli
    raise RuntimeError(f"no docker client with BuildKit among {candidates}: install buildx")


def build_image(context: Path, target: str, tag: str, *, timeout: float = 1500) -> float:
    """Build one Dockerfile target with BuildKit; return the seconds it took."""
    started = time.monotonic()
    result = run(
        [buildkit_cli(), "build", "--progress=plain", "--target", target, "-t", tag, context],
        timeout=timeout,
        env={"DOCKER_BUILDKIT": "1"},
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"docker build --target {target} failed:\n{result.stdout[-6000:]}")
    return time.monotonic() - started


def image_size_bytes(tag: str) -> int:
    return int(run(["docker", "image", "inspect", "-f", "{{.Size}}", tag], timeout=30).stdout)


def run_in_image(
    image: str, entrypoint: str, *args: str, user: str | None = None
) -> tuple[int, str]:
    """``docker run --rm`` one command in an image, offline; return (exit code, output)."""
    command = ["docker", "run", "--rm", "--network", "none", "--entrypoint", entrypoint]
    if user is not None:
        command += ["--user", user]
    result = run([*command, image, *args], timeout=120, check=False)
    return result.returncode, result.stdout


# --- the project copy and compose ------------------------------------------------------------


def copy_project(dest: Path, models: Path, *, ca_bundle: Path | None = HOST_CA_BUNDLE) -> Path:
    """Copy the build context and compose file to dest, with models/ from ``models``.

    The host's CA bundle goes in docker/ca-certificates/ so the builder's pip trusts what
    this machine trusts (a TLS-intercepting proxy's CA included); it stays in the builder.
    """
    dest.mkdir(parents=True)
    for name in CONTEXT_PATHS:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(
                source,
                dest / name,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.crt"),
            )
        elif source.exists():
            shutil.copy2(source, dest / name)
    shutil.copytree(models, dest / "models")
    if ca_bundle is not None and ca_bundle.is_file():
        shutil.copy2(ca_bundle, dest / "docker/ca-certificates/host-bundle.crt")
    return dest


def compose_command() -> list[str]:
    """``docker compose`` (v2 plugin) when there is one, else ``docker-compose`` (v1)."""
    if run(["docker", "compose", "version"], timeout=30, check=False).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise DockerUnavailable("neither `docker compose` nor `docker-compose` is installed")


@dataclass
class ComposeProject:
    directory: Path
    name: str
    env: dict[str, str] = field(default_factory=dict)

    def command(self, *args: str) -> list[str]:
        return [
            *compose_command(),
            "--project-directory",
            str(self.directory),
            "-f",
            str(self.directory / "docker-compose.yml"),
            "-p",
            self.name,
            *args,
        ]

    def __call__(self, *args: str, timeout: float = 300, check: bool = True) -> str:
        result = run(self.command(*args), timeout=timeout, env=self.env, check=check)
        return result.stdout

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(*args),
            env={**os.environ, **self.env},
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def container_id(self, service: str) -> str:
        cid = self("ps", "-q", service, timeout=60).strip().splitlines()
        if not cid:
            raise RuntimeError(f"no container for {service}")
        return cid[-1]

    def container_state(self, service: str) -> dict[str, object]:
        out = run(
            ["docker", "inspect", "-f", "{{json .State}}", self.container_id(service)], timeout=30
        ).stdout
        state: dict[str, object] = json.loads(out)
        return state


def wait_until_ready(base_url: str, timeout: float) -> float:
    """Poll /readyz until 200; return the seconds it took."""
    started = time.monotonic()
    last = "no answer"
    while time.monotonic() - started < timeout:
        try:
            with urllib.request.urlopen(f"{base_url}/readyz", timeout=5) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.25)
    raise TimeoutError(f"{base_url}/readyz not ready after {timeout:.0f} s ({last})")


def wait_until_healthy(project: ComposeProject, service: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    status = "unknown"
    while time.monotonic() < deadline:
        state = project.container_state(service)
        health = state.get("Health")
        status = health.get("Status", "none") if isinstance(health, dict) else "none"
        if status == "healthy":
            return
        if state.get("Status") in ("exited", "dead"):
            raise RuntimeError(f"{service} exited ({state.get('ExitCode')}): {project('logs')}")
        time.sleep(1)
    raise TimeoutError(f"{service} not healthy after {timeout:.0f} s (health: {status})")


# --- by hand --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Prepare Docker here and build an image.")
    parser.add_argument("--target", default="serve", help="Dockerfile target [serve]")
    parser.add_argument("--tag", default=None, help="image tag [rectifier:TARGET]")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    ensure_packages()
    with tempfile.TemporaryDirectory(prefix="rectifier-docker-") as tmp, docker_daemon(Path(tmp)):
        ensure_base_image()
        context = copy_project(Path(tmp) / "project", REPO / "models")
        tag = args.tag or f"rectifier:{args.target}"
        seconds = build_image(context, args.target, tag, timeout=3600)
        print(f"built {tag} in {seconds:.0f} s, {image_size_bytes(tag) / 1e6:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
