#!/usr/bin/python3
"""hpsched.torch.spec_from_scheduler and job_spec against PyTorch itself, on a real hpsched-server.

For every kind the converter supports: build the PyTorch scheduler (two param groups with different lrs, per-group
lists where PyTorch takes them), convert it, create the job, and compare the server's values with PyTorch's for every
step (a few hundred): lr, and momentum / betas[0] where the scheduler cycles them. What no spec can express is refused
with SpecError. OneCycleLR and CyclicLR with PyTorch's default cycle_momentum: one spec on lr drives the momentum
through a RemoteScheduler, on SGD and on Adam, step for step with PyTorch.
"""
from __future__ import annotations

import json
import warnings

import torch
from torch import nn
from torch.optim import lr_scheduler as L

import hpsched
from hpsched.torch import RemoteScheduler, job_spec, spec_from_scheduler
from hpsched_testing import ServerTestCase, main

REL = 1e-12
LRS = [0.1, 0.05]
STEPS = 300


def sgd(lrs=LRS, momentum=0.9):
    groups = []
    for lr in lrs:
        p = nn.Parameter(torch.ones(2))
        p.grad = torch.full((2,), 0.5)
        groups.append({"params": [p], "lr": lr})
    return torch.optim.SGD(groups, momentum=momentum)


def adam(lrs=LRS):
    groups = []
    for lr in lrs:
        p = nn.Parameter(torch.ones(2))
        p.grad = torch.full((2,), 0.5)
        groups.append({"params": [p], "lr": lr})
    return torch.optim.Adam(groups, betas=(0.9, 0.999))


def read(opt, key):
    if key == "beta1":
        return [g["betas"][0] for g in opt.param_groups]
    if key == "beta2":
        return [g["betas"][1] for g in opt.param_groups]
    return [g[key] for g in opt.param_groups]


def run(opt, sched, n, keys=("lr",)):
    """{key: [[value per group] per step]} over steps 0..n-1, PyTorch's convention (step 0 after construction)."""
    out = {key: [] for key in keys}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SequentialLR's step(0), the epoch parameter
        for step in range(n):
            if step:
                opt.step()
                sched.step()
            for key in keys:
                out[key].append(read(opt, key))
    return out


class ConvertTest(ServerTestCase):

    def assertSeries(self, got, want, what):
        self.assertEqual(len(got), len(want), what)
        for step, (g_row, w_row) in enumerate(zip(got, want)):
            self.assertEqual(len(g_row), len(w_row), f"{what} step {step}")
            for group, (g, w) in enumerate(zip(g_row, w_row)):
                if not abs(g - w) <= max(REL * abs(w), 1e-16):
                    self.fail(f"{what}: step {step} group {group}: hpsched {g!r}, torch {w!r}")

    def check(self, job_id, make, n=STEPS, optimizer=sgd, momentum=None, groups_differ=True):
        """make(optimizer) -> a PyTorch scheduler; its conversion's values == PyTorch's for n steps."""
        keys = ("lr",) + ((momentum,) if momentum else ())
        opt = optimizer()
        sched = make(opt)
        spec = spec_from_scheduler(sched)
        json.dumps(spec)  # plain data, as a spec file would hold it
        self.assertEqual(sorted(spec), sorted(keys), job_id)
        want = run(opt, sched, n, keys)
        self.client.create_job(job_id, spec)
        values = self.client.get_values(job_id, 0, n)
        for key in keys:
            got = [[values[(key, g)][i] for g in range(len(LRS))] for i in range(n)]
            self.assertSeries(got, want[key], f"{job_id} {key}")
        if groups_differ:
            self.assertNotEqual(want["lr"][0][0], want["lr"][0][1])  # the groups really differ
        return spec

    # --- every kind ----------------------------------------------------------------------------------------------

    def test_step(self):
        self.check("c-step", lambda o: L.StepLR(o, step_size=30, gamma=0.5))

    def test_multi_step(self):
        spec = self.check("c-multistep", lambda o: L.MultiStepLR(o, milestones=[50, 120, 120, 200], gamma=0.3))
        self.assertEqual(spec["lr"]["schedule"]["multi_step"]["milestones"], [50, 120, 120, 200])

    def test_constant(self):
        self.check("c-constant", lambda o: L.ConstantLR(o, factor=0.25, total_iters=40))

    def test_linear(self):
        self.check("c-linear", lambda o: L.LinearLR(o, start_factor=0.1, end_factor=0.9, total_iters=120))

    def test_exponential(self):
        self.check("c-exponential", lambda o: L.ExponentialLR(o, gamma=0.99))

    def test_polynomial(self):
        self.check("c-polynomial", lambda o: L.PolynomialLR(o, total_iters=250, power=2.0))

    def test_cosine_annealing(self):
        self.check("c-cosine", lambda o: L.CosineAnnealingLR(o, T_max=100, eta_min=0.001), n=100)

    def test_cosine_annealing_warm_restarts(self):
        self.check("c-warm", lambda o: L.CosineAnnealingWarmRestarts(o, T_0=20, T_mult=2, eta_min=0.001))

    def test_cyclic_per_group_with_momentum(self):
        for mode in ("triangular", "triangular2", "exp_range"):
            with self.subTest(mode):
                spec = self.check(f"c-cyclic-{mode.replace('_', '-')}", lambda o: L.CyclicLR(
                    o, base_lr=[0.01, 0.005], max_lr=[0.1, 0.2], step_size_up=20, step_size_down=30, mode=mode,
                    gamma=0.995, base_momentum=[0.8, 0.7], max_momentum=[0.9, 0.95]), momentum="momentum")
                self.assertEqual(spec["lr"]["schedule"]["cyclic"]["max_lr"], [0.1, 0.2])

    def test_cyclic_without_momentum(self):
        self.check("c-cyclic-plain", lambda o: L.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=7,
                                                            cycle_momentum=False), groups_differ=False)

    def test_one_cycle_sgd_momentum(self):
        self.check("c-onecycle", lambda o: L.OneCycleLR(o, max_lr=[0.1, 0.3], total_steps=STEPS),
                   momentum="momentum")

    def test_one_cycle_adam_betas_three_phase_linear(self):
        self.check("c-onecycle-adam", lambda o: L.OneCycleLR(
            o, max_lr=[0.1, 0.3], total_steps=STEPS, pct_start=0.25, anneal_strategy="linear", three_phase=True,
            div_factor=10.0, final_div_factor=100.0, base_momentum=0.8, max_momentum=0.9), optimizer=adam,
            momentum="beta1")

    def test_one_cycle_epochs_without_momentum(self):
        self.check("c-onecycle-epochs", lambda o: L.OneCycleLR(o, max_lr=0.2, epochs=10, steps_per_epoch=30,
                                                               cycle_momentum=False), groups_differ=False)

    def test_sequential(self):
        self.check("c-sequential", lambda o: L.SequentialLR(o, [
            L.LinearLR(o, start_factor=0.1, total_iters=20), L.CosineAnnealingLR(o, T_max=80),
            L.ExponentialLR(o, gamma=0.98)], milestones=[20, 100]), n=200)

    def test_chained(self):
        self.check("c-chained", lambda o: L.ChainedScheduler([
            L.ConstantLR(o, factor=0.5, total_iters=10), L.ExponentialLR(o, gamma=0.99),
            L.StepLR(o, step_size=50, gamma=0.5)]))

    def test_reduce_on_plateau_with_a_metric(self):
        """ReduceLROnPlateau with metric=: the job follows the reports as PyTorch follows step(val_loss)."""
        opt = sgd()
        local = L.ReduceLROnPlateau(opt, factor=0.5, patience=1, cooldown=1, min_lr=[0.01, 0.001])
        spec = spec_from_scheduler(local, metric="val_loss")
        every, losses = 10, [1.0, 0.9, 0.9, 0.95, 0.9, 0.85, 0.8, 0.8, 0.8, 0.8, 0.8, 0.7, 0.8, 0.8]
        self.client.create_job("c-plateau", spec, metrics={"val_loss": every})
        want = []
        for epoch, loss in enumerate(losses):
            want.extend([read(opt, "lr")] * every)
            local.step(loss)
            self.client.report_metrics("c-plateau", (epoch + 1) * every - 1, {"val_loss": loss})
        values = self.client.get_values("c-plateau", 0, len(want))
        got = [[values[("lr", g)][i] for g in range(2)] for i in range(len(want))]
        self.assertSeries(got, want, "c-plateau")
        self.assertGreater(len({w[0] for w in want}), 2)
        with self.assertRaises(hpsched.SpecError) as e:  # stepped: its groups' lr is no longer the base value
            spec_from_scheduler(local, metric="val_loss")
        self.assertIn("convert it before its first step(metric)", e.exception.message)

    def test_stepped_scheduler_gives_the_spec_from_step_zero(self):
        opt = sgd()
        sched = L.OneCycleLR(opt, max_lr=0.1, total_steps=100)
        fresh = spec_from_scheduler(sched)
        run(opt, sched, 40, ("lr",))
        self.assertEqual(spec_from_scheduler(sched), fresh)

    # --- refused -------------------------------------------------------------------------------------------------

    def assertRefused(self, make, message, **kwargs):
        with self.assertRaises(hpsched.SpecError) as e:
            spec_from_scheduler(make(sgd()), **kwargs)
        self.assertEqual(e.exception.message, message)

    def test_refuses_what_no_spec_expresses(self):
        self.assertRefused(lambda o: L.LambdaLR(o, lambda step: 0.95 ** step),
                           "scheduler: LambdaLR: its lr_lambda is a Python function, which hpsched cannot run; write "
                           "it as an expression over `step`: {\"lambda\": {\"expression\": \"...\"}} (see "
                           "schedule.proto)")
        self.assertRefused(lambda o: L.MultiplicativeLR(o, lambda step: 0.95),
                           "scheduler: MultiplicativeLR: its lr_lambda is a Python function, which hpsched cannot "
                           "run; write it as an expression over `step`: {\"multiplicative\": {\"lr_lambda\": \"...\", "
                           "\"total_iters\": N}} (see schedule.proto)")
        self.assertRefused(lambda o: L.ReduceLROnPlateau(o),
                           "scheduler: ReduceLROnPlateau: its decisions follow metric reports: pass "
                           "metric=\"val_loss\" (the name your reports will use) and declare it in "
                           "create_job(metrics=...)")
        self.assertRefused(lambda o: L.CyclicLR(o, 0.01, 0.1, scale_fn=lambda x: 0.5),
                           "scheduler: CyclicLR: a custom scale_fn is a Python function; use mode triangular, "
                           "triangular2 or exp_range")
        self.assertRefused(lambda o: L.SequentialLR(o, [L.ConstantLR(o), L.OneCycleLR(o, 0.1, total_steps=10)],
                                                    milestones=[5]),
                           "scheduler._schedulers[1]: OneCycleLR: cycles the momentum inside a SequentialLR or "
                           "ChainedScheduler, which one momentum hyperparameter cannot follow; build it with "
                           "cycle_momentum=False")
        with self.assertRaises(hpsched.SpecError) as e:
            spec_from_scheduler(L.ChainedScheduler([L.ExponentialLR(o := sgd(), 0.9), L.CosineAnnealingLR(o, 10)]))
        self.assertTrue(e.exception.message.startswith(
            "scheduler._schedulers[1]: CosineAnnealingLR: in a ChainedScheduler PyTorch applies its recursive form"))

        class MyStepLR(L.StepLR):
            pass

        with self.assertRaises(hpsched.SpecError) as e:
            spec_from_scheduler(MyStepLR(sgd(), 10))
        self.assertIn("scheduler: MyStepLR: not a scheduler hpsched knows", e.exception.message)
        with self.assertRaises(hpsched.SpecError):
            spec_from_scheduler("not a scheduler")

    # --- one spec on lr drives the momentum (job_spec + RemoteScheduler) -----------------------------------------

    def compare_remote(self, job_id, schedule, make_local, optimizer, momentum, n):
        """RemoteScheduler on job_spec(optimizer, schedule) vs PyTorch's scheduler with its defaults."""
        local_opt = optimizer()
        want = run(local_opt, make_local(local_opt), n, ("lr", momentum))
        remote_opt = optimizer()
        spec = job_spec(remote_opt, schedule)
        self.assertEqual(list(spec), ["lr", "momentum" if momentum == "momentum" else "beta1"])
        self.client.create_job(job_id, spec)
        remote = RemoteScheduler(remote_opt, job_id, client=self.client, window=50, watch=False)
        got = run(remote_opt, remote, n, ("lr", momentum))
        self.assertSeries(got["lr"], want["lr"], f"{job_id} lr")
        self.assertSeries(got[momentum], want[momentum], f"{job_id} {momentum}")
        self.assertGreater(len({row[0] for row in want[momentum]}), 10)  # the momentum really cycles
        remote.close()

    def test_one_cycle_spec_drives_sgd_momentum(self):
        self.compare_remote("m-onecycle-sgd", {"one_cycle": {"max_lr": 0.1, "total_steps": 200}},
                            lambda o: L.OneCycleLR(o, max_lr=0.1, total_steps=200), sgd, "momentum", 200)

    def test_one_cycle_spec_drives_adam_beta1(self):
        self.compare_remote("m-onecycle-adam", {"one_cycle": {"max_lr": [0.1, 0.2], "total_steps": 200}},
                            lambda o: L.OneCycleLR(o, max_lr=[0.1, 0.2], total_steps=200), adam, "beta1", 200)

    def test_cyclic_spec_drives_sgd_momentum(self):
        # PyTorch 1.13's CyclicLR cycles only `momentum` (not Adam's betas): SGD here.
        self.compare_remote("m-cyclic-sgd", {"cyclic": {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 25}},
                            lambda o: L.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=25), sgd, "momentum",
                            200)

    def test_remote_scheduler_warns_when_the_momentum_is_not_scheduled(self):
        self.client.create_job("m-lr-only", {"lr": {"base_values": LRS, "schedule": {"one_cycle": {
            "max_lr": 0.1, "total_steps": 100}}}})
        with self.assertWarnsRegex(UserWarning, r"jobs/m-lr-only: lr's one_cycle schedule cycles the momentum .* "
                                                r"hpsched\.torch\.job_spec"):
            RemoteScheduler(sgd(), "m-lr-only", client=self.client, watch=False)

    def test_job_spec_without_momentum(self):
        spec = job_spec(sgd(), {"one_cycle": {"max_lr": 0.1, "total_steps": 10, "cycle_momentum": False}})
        self.assertEqual(list(spec), ["lr"])
        self.assertEqual(list(job_spec(sgd(), {"step": {"step_size": 3}})), ["lr"])
        adagrad = torch.optim.Adagrad([nn.Parameter(torch.ones(1))], lr=0.1)
        with self.assertRaises(hpsched.SpecError) as e:
            job_spec(adagrad, {"one_cycle": {"max_lr": 0.1, "total_steps": 10}})
        self.assertEqual(e.exception.message, "schedule.one_cycle.cycle_momentum: cycle_momentum (PyTorch's default) "
                         "needs an optimizer with momentum or betas, and Adagrad has neither: set cycle_momentum to "
                         "false")


if __name__ == "__main__":
    main()
