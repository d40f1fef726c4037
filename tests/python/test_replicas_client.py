#!/usr/bin/python3
"""hpsched.Client with several replicas: the target list and its errors, the service config, round-robin over three
real hpsched-server processes, and a caller that sees no error while one of them is SIGKILLed mid-run; the C++ CLI
and toy trainer take the same list (with one of the servers dead).

Each server has its own memory store (the replicas' shared PostgreSQL is the replicas tests' business): the same job
is created on each, labelled with the server's name, so GetJob tells which replica answered and GetValues answers
alike everywhere (a StepLR: golden values from torch).
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import unittest

import torch

from hpsched import Client
from hpsched.client import RETRIED_METHODS, channel_target, service_config
from hpsched_testing import ServerProcess, main, server_binary

SPEC = {"lr": {"base_values": [0.1], "schedule": {"step": {"step_size": 10, "gamma": 0.5}}}}


def torch_steplr(steps: int) -> list[float]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


class TargetTest(unittest.TestCase):
    def test_lists_become_one_target(self):
        self.assertEqual(channel_target("localhost:50051"), "localhost:50051")
        self.assertEqual(channel_target("dns:///hpsched.example:50051"), "dns:///hpsched.example:50051")
        self.assertEqual(channel_target(" 127.0.0.1:1, 127.0.0.2:2 "), "ipv4:127.0.0.1:1,127.0.0.2:2")
        self.assertEqual(channel_target("[::1]:7,[::2]:8"), "ipv6:[::1]:7,[::2]:8")
        with self.assertRaisesRegex(ValueError, r'^target: "127.0.0.1:1,,127.0.0.2:2" has an empty address'):
            channel_target("127.0.0.1:1,,127.0.0.2:2")
        with self.assertRaisesRegex(ValueError, r'^target: "127.0.0.2" must be HOST:PORT \(a list needs every port\)'):
            channel_target("127.0.0.1:1,127.0.0.2")
        with self.assertRaisesRegex(ValueError, "port in 1..65535"):
            channel_target("127.0.0.1:1,127.0.0.2:0")
        with self.assertRaisesRegex(ValueError, "mixes"):
            channel_target("127.0.0.1:1,[::1]:2")

    def test_service_config(self):
        config = json.loads(service_config(5, 0.1, 2.0))
        self.assertEqual(config["loadBalancingConfig"], [{"round_robin": {}}])
        names = [n["method"] for n in config["methodConfig"][0]["name"]]
        self.assertEqual(names, list(RETRIED_METHODS))
        self.assertNotIn("DeleteJob", names)
        self.assertNotIn("WatchJob", names)
        self.assertEqual(config["methodConfig"][0]["retryPolicy"]["retryableStatusCodes"], ["UNAVAILABLE"])
        self.assertEqual(json.loads(service_config(1)), {"loadBalancingConfig": [{"round_robin": {}}]})


class ReplicasTest(unittest.TestCase):
    def setUp(self):
        self.servers = [ServerProcess(name=f"r{i}").start() for i in range(3)]
        self.addCleanup(lambda: [s.stop() for s in self.servers])
        for i, server in enumerate(self.servers):
            with Client(server.target) as direct:
                direct.create_job("j", SPEC, labels={"replica": f"r{i}"})
        self.target = ",".join(s.target for s in self.servers)

    def test_round_robin_and_a_sigkilled_replica_is_not_seen(self):
        golden = torch_steplr(40)
        errors: list[BaseException] = []
        replicas_seen: set[str] = set()
        done = threading.Event()
        calls = [0]
        with Client(self.target, timeout=20.0) as client:
            for _ in range(300):
                replicas_seen.add(client.get_job("j").labels["replica"])
                if len(replicas_seen) == 3:
                    break
            self.assertEqual(replicas_seen, {"r0", "r1", "r2"})

            def caller():
                try:
                    for n in range(400):  # Bounded.
                        step = n % 40
                        values = client.get_values("j", step)
                        self.assertAlmostEqual(values[("lr", 0)][0], golden[step], delta=1e-15)
                        calls[0] += 1
                        if calls[0] == 100:
                            done.set()
                except BaseException as e:  # noqa: BLE001 (reported below)
                    errors.append(e)
                    done.set()

            threads = [threading.Thread(target=caller) for _ in range(2)]
            for t in threads:
                t.start()
            self.assertTrue(done.wait(60))
            self.servers[0].process.send_signal(signal.SIGKILL)
            self.servers[0].process.wait(10)
            for t in threads:
                t.join(120)
            self.assertEqual(errors, [])
            self.assertEqual(calls[0], 800)
            after = {client.get_job("j").labels["replica"] for _ in range(30)}
            self.assertEqual(after, {"r1", "r2"})

    def test_the_toy_trainer_takes_the_list(self):
        trainer = os.path.join(os.path.dirname(os.path.dirname(server_binary())), "client", "toy-trainer")
        self.servers[2].process.send_signal(signal.SIGKILL)
        self.servers[2].process.wait(10)
        out = subprocess.run([trainer, f"--target={self.target}", "--job=j", "--epochs=25", "--window=4"],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        golden = torch_steplr(26)
        printed = re.findall(r"^Epoch (\d+) - LR: (\S+)$", out.stdout, re.M)
        self.assertEqual(printed, [(f"{e + 1:02d}", f"{golden[e + 1]:.5f}") for e in range(25)])

    def test_the_cli_takes_the_list(self):
        cli = os.path.join(os.path.dirname(os.path.dirname(server_binary())), "client", "hpsched")
        self.servers[1].process.send_signal(signal.SIGKILL)
        self.servers[1].process.wait(10)
        for _ in range(6):
            out = subprocess.run([cli, f"--target={self.target}", "values", "j", "--steps=25:26"], capture_output=True,
                                 text=True, timeout=60)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn("0.025", out.stdout)


if __name__ == "__main__":
    main()
