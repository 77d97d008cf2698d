"""Unit tests of `app.py` on a plain CPython, against the stub bindings of `componentize-py bindings`.

    scripts/build-python-plugin --test

runs them (it puts the stubs, written to `target/python-plugin/bindings`, on `PYTHONPATH`).
"""

import json
import unittest

from componentize_py_types import Err
from wit_world.imports import host

# The stub of the one host import raises NotImplementedError; record the log lines instead.
LOGGED = []
host.log = lambda level, message: LOGGED.append((level, message))

import app  # noqa: E402  (after the stub is replaced)
from wit_world.exports import sidecar as wit  # noqa: E402


def context() -> wit.PlanContext:
    return wit.PlanContext(bottle="work", agent="dev", secrets=[], plugins=[], properties=[])


def plan(section) -> "wit.Contribution | None":
    config = json.dumps({} if section is ... else {"py_echo": section})
    return app.Sidecar().plan(config, context())


def diagnostics(section) -> list:
    with unittest.TestCase().assertRaises(Err) as raised:
        plan(section)
    return raised.exception.value


class Plan(unittest.TestCase):
    def test_absent_or_disabled_section_means_nothing_to_do(self):
        self.assertIsNone(plan(...))
        self.assertIsNone(plan(None))
        self.assertIsNone(plan(False))
        self.assertIsNone(plan({"enabled": False}))

    def test_a_sidecar_on_the_internal_network(self):
        contribution = plan({"image": "hashicorp/http-echo:1.0", "port": 9000, "greeting": "hi"})
        (sidecar,) = contribution.sidecars
        self.assertEqual(sidecar.name, "py-echo")
        self.assertEqual(sidecar.image, wit.Image_Reference("hashicorp/http-echo:1.0"))
        self.assertEqual(sidecar.networks, [wit.Network.INTERNAL])
        self.assertEqual(sidecar.aliases, ["py-echo"])
        self.assertEqual(sidecar.port, 9000)
        self.assertEqual(sidecar.health.probe, wit.Probe_Tcp(9000))
        env = {e.name: e.value for e in sidecar.env}
        self.assertEqual(env["ECHO_GREETING"], wit.EnvValue_Literal("hi"))
        (config,) = sidecar.files
        self.assertEqual(config.path, "/etc/py-echo/config.json")
        self.assertEqual(json.loads(config.contents)["bottle"], "work")
        self.assertEqual(contribution.agent.no_proxy, ["py-echo"])
        self.assertTrue(any("py-echo" in m for _, m in LOGGED))

    def test_defaults(self):
        (sidecar,) = plan({"image": "echo:1"}).sidecars
        self.assertEqual(sidecar.port, 8080)
        self.assertEqual(json.loads(sidecar.files[0].contents)["greeting"], "hello from a bottle")

    def test_missing_image(self):
        (d,) = diagnostics({"port": 8080})
        self.assertEqual(d.path, "py_echo.image")
        self.assertIn("missing", d.message)
        self.assertIn("image:", d.hint)
        (d,) = diagnostics(True)
        self.assertEqual(d.path, "py_echo.image")

    def test_bad_ports(self):
        for port in [0, 65536, -1, "8080", True, 80.5, None]:
            (d,) = diagnostics({"image": "echo:1", "port": port})
            self.assertEqual(d.path, "py_echo.port", port)
            self.assertIn("between 1 and 65535", d.message)

    def test_every_problem_at_once(self):
        found = diagnostics({"port": 0, "greting": "typo", "greeting": "a\nb"})
        self.assertEqual(
            sorted(d.path for d in found),
            ["py_echo.greeting", "py_echo.greting", "py_echo.image", "py_echo.port"],
        )
        typo = next(d for d in found if d.path == "py_echo.greting")
        self.assertEqual(typo.hint, "did you mean `greeting`?")

    def test_not_a_mapping(self):
        (d,) = diagnostics(["image"])
        self.assertEqual(d.path, "py_echo")
        self.assertIn("a list", d.message)


class Finalize(unittest.TestCase):
    def test_writes_the_internal_cidr_into_its_own_sidecar(self):
        facts = wit.Facts(
            internal_cidr="172.30.0.0/24",
            sidecars=[
                wit.SidecarFact(name="py-echo", plugin="py-echo", aliases=[], port=8080, roles=[]),
                wit.SidecarFact(name="egress-proxy", plugin="egress-proxy", aliases=[], port=9099, roles=[]),
            ],
            egress=[],
            agent_proxy="http://egress-proxy:9099",
            upstream_proxy=None,
            cas=[],
            properties=[],
        )
        config = json.dumps({"py_echo": {"image": "echo:1"}})
        (placed,) = app.Sidecar().finalize(config, context(), facts).files
        self.assertEqual(placed.target, wit.Target_Sidecar("py-echo"))
        network = json.loads(placed.file.contents)
        self.assertEqual(network["internal_cidr"], "172.30.0.0/24")
        self.assertEqual(network["peers"], ["egress-proxy"])


class Describe(unittest.TestCase):
    def test_reads_only_its_own_section(self):
        info = app.Sidecar().describe()
        self.assertEqual(info.name, "py-echo")
        self.assertEqual(info.sections, ["py_echo"])


if __name__ == "__main__":
    unittest.main()
