"""`py-echo`: an example third-party bottle plugin written in Python.

It implements the `sidecar-plugin` world of `bottle:plugin@0.1.0` (`wit/plugin.wit`) like any other
plugin would: it reads only its own manifest section, `py_echo`, and turns it into one sidecar on
the bottle's internal network.

    py_echo:
      image: hashicorp/http-echo:1.0   # required
      port: 8080                       # optional, 1-65535, default 8080
      greeting: "hello from a bottle"  # optional, one line
      enabled: true                    # optional; `py_echo: false` works too

`componentize-py` generates the `wit_world` package when it builds the component; for tests on a
plain CPython, `componentize-py bindings` writes stubs of the same package (see `test_app.py`).
"""

import difflib
import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import sidecar as wit
from wit_world.imports import host
from wit_world.imports.types import Diagnostic, Severity

NAME = "py-echo"
VERSION = "0.1.0"
# A section name is `[a-z][a-z0-9_]*`; the host lets an external plugin read only the one named
# after it.
SECTION = "py_echo"
DEFAULT_PORT = 8080
DEFAULT_GREETING = "hello from a bottle"
KNOWN_KEYS = ("image", "port", "greeting", "enabled")
CONFIG_DIR = "/etc/py-echo"


class Sidecar(exports.Sidecar):
    """The exported `sidecar` interface: componentize-py looks for a class of this name."""

    def describe(self) -> wit.PluginInfo:
        return wit.PluginInfo(
            name=NAME,
            version=VERSION,
            summary="example echo sidecar, written in Python (componentize-py)",
            sections=[SECTION],
            roles=[],
            properties=[],
        )

    def plan(self, config: str, context: wit.PlanContext):
        settings = read_config(config)
        if settings is None:
            return None
        host.log(
            host.LogLevel.INFO,
            f"adding sidecar {NAME} ({settings['image']}) on port {settings['port']} "
            f"for bottle {context.bottle}",
        )
        return contribution(settings, context)

    def finalize(self, config: str, context: wit.PlanContext, facts: wit.Facts) -> wit.Finalization:
        settings = read_config(config)
        if settings is None:
            return wit.Finalization(files=[], env=[], properties=[])
        peers = sorted(s.name for s in facts.sidecars if s.plugin != NAME)
        network = {
            "internal_cidr": facts.internal_cidr,
            "peers": peers,
            "agent_proxy": facts.agent_proxy,
        }
        return wit.Finalization(
            files=[
                wit.PlacedFile(
                    target=wit.Target_Sidecar(NAME),
                    file=text_file(f"{CONFIG_DIR}/network.json", json.dumps(network, indent=2) + "\n"),
                )
            ],
            env=[],
            properties=[],
        )


def contribution(settings: dict, context: wit.PlanContext) -> wit.Contribution:
    port = settings["port"]
    config_file = {
        "greeting": settings["greeting"],
        "port": port,
        "bottle": context.bottle,
        "agent": context.agent,
    }
    sidecar = wit.SidecarSpec(
        name=NAME,
        image=wit.Image_Reference(settings["image"]),
        command=[],
        networks=[wit.Network.INTERNAL],
        aliases=[NAME],
        port=port,
        health=wit.HealthCheck(
            probe=wit.Probe_Tcp(port), interval_ms=500, timeout_ms=2000, retries=20
        ),
        env=[
            wit.EnvVar("ECHO_GREETING", wit.EnvValue_Literal(settings["greeting"])),
            wit.EnvVar("ECHO_PORT", wit.EnvValue_Literal(str(port))),
        ],
        files=[text_file(f"{CONFIG_DIR}/config.json", json.dumps(config_file, indent=2) + "\n")],
        host_files=[],
        mounts=[],
        cas=[],
        extra_hosts=[],
        roles=[],
        after=[],
        properties=[],
    )
    agent = wit.AgentContribution(
        env=[wit.EnvVar("PY_ECHO_URL", wit.EnvValue_Literal(f"http://{NAME}:{port}/"))],
        files=[],
        # The sidecar is on the internal network: the agent reaches it directly, not via its proxy.
        no_proxy=[NAME],
        provision=[],
        properties=[],
    )
    return wit.Contribution(sidecars=[sidecar], agent=agent, egress=[], properties=[])


def text_file(path: str, text: str) -> wit.File:
    return wit.File(path=path, contents=text.encode("utf-8"), mode=0o644)


def read_config(config: str):
    """The plugin's settings, `None` when its section is absent or disabled, or `Err(diagnostics)`."""
    try:
        sections = json.loads(config)
    except ValueError as e:
        raise Err([error("", f"the host sent configuration that is not JSON: {e}")])
    section = sections.get(SECTION) if isinstance(sections, dict) else None
    if section is None or section is False:
        return None
    if section is True:
        section = {}
    if not isinstance(section, dict):
        raise Err(
            [
                error(
                    "",
                    f"`{SECTION}` must be a mapping, not {describe_value(section)}",
                    f"write `{SECTION}: {{image: <image>, port: {DEFAULT_PORT}}}`",
                )
            ]
        )
    if section.get("enabled", True) is False:
        return None

    problems = []
    for key in section:
        if key not in KNOWN_KEYS:
            close = difflib.get_close_matches(key, KNOWN_KEYS, n=1)
            hint = f"did you mean `{close[0]}`?" if close else f"known keys: {', '.join(KNOWN_KEYS)}"
            problems.append(error(key, f"unknown key `{key}`", hint))

    enabled = section.get("enabled", True)
    if not isinstance(enabled, bool):
        problems.append(error("enabled", f"must be true or false, not {describe_value(enabled)}"))

    image = section.get("image")
    if image is None:
        problems.append(
            error(
                "image",
                "missing: py-echo needs the container image to run",
                f"add `image: <repository>:<tag>` under `{SECTION}`, e.g. `image: hashicorp/http-echo:1.0`",
            )
        )
    elif not isinstance(image, str) or not image.strip():
        problems.append(error("image", f"must be an image reference, not {describe_value(image)}"))
    elif any(c.isspace() for c in image):
        problems.append(error("image", f"`{image}` is not an image reference: it contains white space"))

    port = section.get("port", DEFAULT_PORT)
    # JSON booleans are Python ints: reject them explicitly.
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        problems.append(
            error(
                "port",
                f"must be a TCP port between 1 and 65535, not {describe_value(port)}",
                f"write e.g. `port: {DEFAULT_PORT}`",
            )
        )

    greeting = section.get("greeting", DEFAULT_GREETING)
    if not isinstance(greeting, str):
        problems.append(error("greeting", f"must be a string, not {describe_value(greeting)}"))
    elif "\n" in greeting or "\r" in greeting or "\0" in greeting:
        problems.append(error("greeting", "must be one line (it becomes an environment variable)"))

    if problems:
        raise Err(problems)
    return {"image": image.strip(), "port": port, "greeting": greeting}


def error(path: str, message: str, hint=None) -> Diagnostic:
    full = SECTION if not path else f"{SECTION}.{path}"
    return Diagnostic(severity=Severity.ERROR, path=full, message=message, hint=hint)


def describe_value(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, (int, float)):
        return f"`{value}`"
    if isinstance(value, str):
        return f"the string {json.dumps(value)}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
