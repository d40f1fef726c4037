#!/usr/bin/python3
"""hpsched.torch.RemoteScheduler against local PyTorch schedulers for the same specs, on a real hpsched-server.

For each kind, N iterations of `optimizer.step(); scheduler.step()` with both; every group's lr at every step must
agree within 1e-12 relative. Also: momentum / betas / weight_decay scheduled as further hyperparameters, the prefetch
window (ceil(N / window) GetValues calls), exact resume from state_dict(), and the errors. Live jobs: a
reduce_on_plateau job driven by `scheduler.report()` gives exactly PyTorch's ReduceLROnPlateau lrs, provisional values
are never prefetched, and prefetched values that an update made stale are dropped (WatchJob).
"""
from __future__ import annotations

import io
import math
import queue
import threading
import time
import warnings

import grpc
import torch
from torch import nn
from torch.optim import lr_scheduler as L

import hpsched.torch
from hpsched import HpschedError, pin, scale
from hpsched.torch import RemoteScheduler
from hpsched_testing import ServerTestCase, main

REL = 1e-12


class CountingClient:
    """Wraps an hpsched.Client and records every get_values call as (step, count)."""

    def __init__(self, client):
        self._client = client
        self.calls = []

    def get_values(self, job, step, count=1, hyperparameters=None, **kwargs):
        self.calls.append((step, count))
        return self._client.get_values(job, step, count, hyperparameters, **kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)


def make_sgd(lrs, **kwargs):
    """SGD over one parameter per group, with gradients so that step() does work."""
    groups = []
    for lr in lrs:
        p = nn.Parameter(torch.ones(2))
        p.grad = torch.full((2,), 0.5)
        groups.append({"params": [p], "lr": lr})
    return torch.optim.SGD(groups, **kwargs)


def record(opt, sched, n, keys=("lr",)):
    """{key: [[value per group] per step]} for steps 0..n-1: step 0 after construction, then optimizer.step();
    scheduler.step()."""
    def snap():
        out = {}
        for key in keys:
            if key == "beta1":
                out[key] = [g["betas"][0] for g in opt.param_groups]
            elif key == "beta2":
                out[key] = [g["betas"][1] for g in opt.param_groups]
            else:
                out[key] = [g[key] for g in opt.param_groups]
        return out
    seq = {key: [] for key in keys}
    with warnings.catch_warnings():
        # PyTorch's "lr_scheduler.step() before optimizer.step()" and "optimizer.step() has been overridden".
        warnings.filterwarnings("error", message=r".*lr_scheduler\.step\(\)")
        warnings.filterwarnings("ignore", message="The epoch parameter")  # SequentialLR's own step(0)
        for step in range(n):
            if step:
                opt.step()
                sched.step()
            for key, values in snap().items():
                seq[key].append(values)
    return seq


class RemoteSchedulerTest(ServerTestCase):

    def create(self, job_id, hyperparameters):
        self.client.create_job(job_id, hyperparameters)
        return job_id

    def assertClose(self, got, want, what):
        self.assertEqual(len(got), len(want), what)
        for step, (g_row, w_row) in enumerate(zip(got, want)):
            self.assertEqual(len(g_row), len(w_row), f"{what} step {step}")
            for group, (g, w) in enumerate(zip(g_row, w_row)):
                if not abs(g - w) <= max(REL * abs(w), 1e-15):
                    self.fail(f"{what}: step {step} group {group}: remote {g!r}, torch {w!r}")

    def compare(self, job_id, schedule, lrs, make_local, n, window=64):
        """RemoteScheduler on a job with `schedule` vs make_local(optimizer), both over SGD with groups' lrs."""
        self.create(job_id, {"lr": {"base_values": lrs, "schedule": schedule}})
        local_opt = make_sgd(lrs)
        want = record(local_opt, make_local(local_opt), n)["lr"]
        remote_opt = make_sgd(lrs)
        client = CountingClient(self.client)
        sched = RemoteScheduler(remote_opt, job_id, client=client, window=window)
        got = record(remote_opt, sched, n)["lr"]
        self.assertClose(got, want, job_id)
        self.assertEqual(sched.last_epoch, n - 1)
        self.assertEqual(sched.get_last_lr(), got[-1])
        self.assertEqual(len(client.calls), math.ceil(n / window))
        return got

    # --- the kinds ---------------------------------------------------------------------------------------------------

    def test_step_lr(self):
        self.compare("steplr", {"step": {"step_size": 10, "gamma": 0.5}}, [0.1],
                     lambda o: L.StepLR(o, step_size=10, gamma=0.5), n=60)

    def test_cosine_annealing_lr(self):
        self.compare("cosine", {"cosine_annealing": {"t_max": 20, "eta_min": 0.001}}, [0.1],
                     lambda o: L.CosineAnnealingLR(o, T_max=20, eta_min=0.001), n=41)

    def test_one_cycle_lr(self):
        # Steps 0..total_steps-1 (hpsched holds the final value from total_steps - 1 on; PyTorch raises after it).
        self.compare("onecycle", {"one_cycle": {"max_lr": [0.1], "total_steps": 100, "cycle_momentum": False}},
                     [0.1], lambda o: L.OneCycleLR(o, max_lr=0.1, total_steps=100, cycle_momentum=False), n=100,
                     window=16)

    def test_sequential_warmup_cosine(self):
        spec = {"sequential": {"schedules": [{"linear": {"start_factor": 0.1, "total_iters": 5}},
                                             {"cosine_annealing": {"t_max": 45}}], "milestones": [5]}}
        self.compare("warmup-cosine", spec, [0.1],
                     lambda o: L.SequentialLR(o, [L.LinearLR(o, start_factor=0.1, total_iters=5),
                                                  L.CosineAnnealingLR(o, T_max=45)], milestones=[5]),
                     n=50, window=10)

    def test_multi_step_lr_two_groups(self):
        got = self.compare("multistep-2g", {"multi_step": {"milestones": [10, 25, 25], "gamma": 0.3}}, [0.1, 0.01],
                           lambda o: L.MultiStepLR(o, milestones=[10, 25, 25], gamma=0.3), n=40, window=7)
        self.assertNotEqual(got[0][0], got[0][1])  # the groups really differ
        self.assertAlmostEqual(got[39][1], 0.01 * 0.3 ** 3, delta=1e-15)

    # --- further hyperparameters -------------------------------------------------------------------------------------

    def test_momentum_on_sgd(self):
        """"momentum" sets every SGD group's momentum: a local scheduler of the same spec over base 0.9 / 0.85."""
        lrs, moms = [0.1, 0.05], [0.9, 0.85]
        momentum_spec = {"cosine_annealing": {"t_max": 30, "eta_min": 0.5}}
        self.create("sgd-momentum", {"lr": {"base_values": lrs, "schedule": {"step": {"step_size": 7}}},
                                     "momentum": {"base_values": moms, "schedule": momentum_spec}})
        n = 40
        want_lr = record(*(lambda o: (o, L.StepLR(o, step_size=7)))(make_sgd(lrs)), n)["lr"]
        # The momentum PyTorch would give: the same scheduler driving an "lr" that starts at the base momentum.
        want_mom = record(*(lambda o: (o, L.CosineAnnealingLR(o, T_max=30, eta_min=0.5)))(make_sgd(moms)), n)["lr"]
        opt = make_sgd(lrs, momentum=0.0)
        sched = RemoteScheduler(opt, "sgd-momentum", client=self.client, window=16)
        self.assertEqual(sched.hyperparameters, ["lr", "momentum"])
        got = record(opt, sched, n, keys=("lr", "momentum"))
        self.assertClose(got["lr"], want_lr, "lr")
        self.assertClose(got["momentum"], want_mom, "momentum")
        self.assertEqual(sched.get_last_values()["momentum"], got["momentum"][-1])
        self.assertIn("momentum_buffer", opt.state[opt.param_groups[0]["params"][0]])  # momentum was used

    def test_adam_beta1_momentum_weight_decay(self):
        """On Adam: "beta1" (and "momentum") set betas[0], betas[1] stays; "weight_decay" is set too."""
        self.create("adam-beta1", {
            "lr": {"base_values": [0.01], "schedule": {"exponential": {"gamma": 0.9}}},
            "beta1": {"base_values": [0.95], "schedule": {"linear": {"start_factor": 0.9, "total_iters": 10}}},
            "weight_decay": {"base_values": [0.01], "schedule": {"step": {"step_size": 5, "gamma": 0.5}}},
            "dropout": {"base_values": [0.3], "schedule": {"constant": {}}},  # not an optimizer's: left alone
        })
        self.create("adam-momentum", {
            "lr": {"base_values": [0.01], "schedule": {"constant": {"factor": 1.0}}},
            "momentum": {"base_values": [0.95], "schedule": {"linear": {"start_factor": 0.9, "total_iters": 10}}},
        })
        n = 20
        want_beta1 = record(*(lambda o: (o, L.LinearLR(o, start_factor=0.9, total_iters=10)))(make_sgd([0.95])),
                            n)["lr"]
        want_wd = record(*(lambda o: (o, L.StepLR(o, step_size=5, gamma=0.5)))(make_sgd([0.01])), n)["lr"]
        for job_id in ("adam-beta1", "adam-momentum"):
            with self.subTest(job_id):
                model = nn.Linear(1, 1)
                opt = torch.optim.Adam(model.parameters(), lr=0.01, betas=(0.9, 0.999))
                model(torch.ones(1, 1)).sum().backward()
                sched = RemoteScheduler(opt, job_id, client=self.client)
                got = record(opt, sched, n, keys=("lr", "beta1", "beta2", "weight_decay"))
                self.assertClose(got["beta1"], want_beta1, f"{job_id} beta1")
                self.assertEqual(got["beta2"], [[0.999]] * n)
                if job_id == "adam-beta1":
                    self.assertEqual(sched.hyperparameters, ["lr", "beta1", "weight_decay"])
                    self.assertClose(got["weight_decay"], want_wd, "weight_decay")
                else:
                    self.assertEqual(got["weight_decay"], [[0]] * n)

    # --- prefetch ----------------------------------------------------------------------------------------------------

    def test_prefetch_window(self):
        """Steps 0..N-1 cost ceil(N / window) GetValues calls, each for `window` steps from a window boundary."""
        self.create("prefetch", {"lr": {"base_values": [0.1, 0.2], "schedule": {"exponential": {"gamma": 0.99}}}})
        n = 100
        for window in (1, 7, 16, 64, 99, 100, 1000):
            with self.subTest(window=window):
                client = CountingClient(self.client)
                opt = make_sgd([0.1, 0.2])
                sched = RemoteScheduler(opt, "prefetch", client=client, window=window)
                self.assertEqual(client.calls, [(0, window)])  # the initial step fetched the first window
                got = record(opt, sched, n)["lr"]
                self.assertEqual(len(client.calls), math.ceil(n / window))
                self.assertEqual(sched.rpc_count, len(client.calls))
                self.assertEqual(client.calls, [(k * window, window) for k in range(len(client.calls))])
                for step in (0, 1, 50, 99):
                    self.assertAlmostEqual(got[step][1], 0.2 * 0.99 ** step, delta=1e-14)

    # --- live jobs ---------------------------------------------------------------------------------------------------

    # ReduceLROnPlateau(mode min, factor 0.5, patience 1, threshold 1e-4 rel, cooldown 1, min_lr per group), one
    # val_loss per epoch of K steps. The losses plateau, improve, plateau: reductions, a cooldown, min_lr clamping.
    K = 4
    LOSSES = [1.0, 0.9, 0.9, 0.95, 0.9, 0.85, 0.8, 0.8, 0.8, 0.8, 0.79995, 0.8, 0.8, 0.8, 0.8, 0.8, 0.7, 0.8, 0.8]
    PLATEAU = {"reduce_on_plateau": {"metric": "val_loss", "factor": 0.5, "patience": 1, "cooldown": 1,
                                     "min_lr": [0.01, 0.001]}}

    def torch_plateau_lrs(self, lrs):
        """PyTorch's own ReduceLROnPlateau: [[lr per group] per optimizer step] over len(LOSSES) epochs of K steps."""
        opt = make_sgd(lrs)
        local = L.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=1, cooldown=1, min_lr=[0.01, 0.001])
        out = []
        for loss in self.LOSSES:
            for _ in range(self.K):
                out.append([g["lr"] for g in opt.param_groups])
                opt.step()
            local.step(loss)
        return out

    def test_reduce_on_plateau_driven_by_reports_matches_torch(self):
        lrs = [0.1, 0.02]
        want = self.torch_plateau_lrs(lrs)
        self.assertGreater(len({w[0] for w in want}), 3)  # the sequence really reduces, more than once
        for order in ("report after scheduler.step()", "report before scheduler.step()"):
            with self.subTest(order=order):
                job_id = "plateau-before" if "before" in order else "plateau-after"
                self.client.create_job(job_id, {"lr": {"base_values": lrs, "schedule": self.PLATEAU}},
                                       metrics={"val_loss": self.K})
                opt = make_sgd(lrs)
                client = CountingClient(self.client)
                sched = RemoteScheduler(opt, job_id, client=client, window=64)
                self.assertEqual(sched.metrics, ["val_loss"])
                self.assertEqual(sched.prefetched_steps, range(0, self.K))  # only the final steps were kept
                got = []
                with warnings.catch_warnings():
                    warnings.filterwarnings("error", message=r".*optimizer\.step\(\)")  # PyTorch's order checks
                    for epoch, loss in enumerate(self.LOSSES):
                        for i in range(self.K):
                            self.assertFalse(sched.pending)
                            got.append([g["lr"] for g in opt.param_groups])
                            opt.step()
                            last = i == self.K - 1
                            if last and "before" in order:
                                # For last_epoch: the step just done. (A float32 tensor would report its float32 value.)
                                response = sched.report(torch.tensor(loss, dtype=torch.float64))
                            sched.step()
                            if last and "after" in order:
                                # The next epoch's first step waits for this report: provisional until it arrives.
                                self.assertTrue(sched.pending)
                                response = sched.report(val_loss=loss)  # for last_epoch - 1: the step just done
                        self.assertFalse(response.duplicate)
                        self.assertEqual(sched.last_epoch, (epoch + 1) * self.K)
                self.assertEqual(got, want)  # exactly
                # Per epoch: the provisional first step of the next epoch, then its final window after the report;
                # plus, at most, one more window per reduction (the watch drops values from a reduction's step on).
                reductions = sum(1 for a, b in zip(want, want[1:]) if a != b)
                self.assertLessEqual(len(client.calls), 2 * len(self.LOSSES) + 1 + reductions)
                # The same report again is a no-op; another value for it is refused.
                self.assertTrue(sched.report({"val_loss": self.LOSSES[-1]}, step=len(want) - 1).duplicate)
                with self.assertRaises(HpschedError) as e:
                    sched.report(val_loss=0.1, step=len(want) - 1)
                self.assertEqual(e.exception.code, grpc.StatusCode.FAILED_PRECONDITION)
                sched.close()

    def test_reduce_on_plateau_reported_elsewhere_waits_at_optimizer_step(self):
        """A scheduler that does not report (another rank does): at the epoch's end its optimizer.step() waits for
        the report, then steps with the final lr."""
        lrs = [0.1, 0.02]
        want = self.torch_plateau_lrs(lrs)
        self.client.create_job("plateau-elsewhere", {"lr": {"base_values": lrs, "schedule": self.PLATEAU}},
                               metrics={"val_loss": self.K})
        epochs_done = queue.Queue()
        errors = []

        def reporter():  # reports epoch e once the trainer has finished its steps
            try:
                for e, loss in enumerate(self.LOSSES):
                    self.assertEqual(epochs_done.get(timeout=30), e)
                    self.client.report_metrics("plateau-elsewhere", (e + 1) * self.K - 1, {"val_loss": loss})
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

        thread = threading.Thread(target=reporter)
        thread.start()
        opt = make_sgd(lrs)
        used = []
        real_step = opt.step

        def spy_step(*args, **kwargs):
            result = real_step(*args, **kwargs)  # waits for a pending step's final values first
            used.append([g["lr"] for g in opt.param_groups])
            return result

        sched = RemoteScheduler(opt, "plateau-elsewhere", client=self.client, wait_timeout=30)
        real_step = sched.optimizer.step
        spy_step._with_counter = True  # PyTorch's mark of its own wrapper, which real_step calls
        opt.step = spy_step
        for epoch in range(len(self.LOSSES)):
            for i in range(self.K):
                opt.step()
                sched.step()
            epochs_done.put(epoch)
        thread.join(30)
        self.assertEqual(errors, [])
        self.assertEqual(used, want)
        sched.close()

    def test_never_prefetches_provisional_values(self):
        plateau = {"reduce_on_plateau": {"metric": "val_loss", "factor": 0.1, "patience": 1}}
        self.client.create_job("no-provisional", {"lr": {"base_values": [0.1], "schedule": plateau}},
                               metrics={"val_loss": 10})
        warnings.simplefilter("ignore")  # step(epoch) and step() without optimizer.step(): PyTorch's warnings
        self.addCleanup(warnings.resetwarnings)
        client = CountingClient(self.client)
        sched = RemoteScheduler(make_sgd([0.1]), "no-provisional", client=client, window=64, watch=False)
        self.assertEqual((client.calls, sched.prefetched_steps), ([(0, 64)], range(0, 10)))
        self.client.report_metrics("no-provisional", 9, {"val_loss": 1.0})
        sched.step(10)  # a jump to 10: the window from 10 is final through 19
        self.assertEqual(sched.prefetched_steps, range(10, 20))
        self.assertFalse(sched.pending)
        sched.step(25)  # provisional: applied, not cached, pending
        self.assertTrue(sched.pending)
        self.assertEqual(sched.prefetched_steps, range(10, 20))
        with self.assertRaises(HpschedError) as e:  # nobody reports: the wait ends at the deadline
            sched.wait_timeout = 1.0
            sched.optimizer.step()
        self.assertEqual(e.exception.code, grpc.StatusCode.DEADLINE_EXCEEDED)
        self.client.report_metrics("no-provisional", 19, {"val_loss": 1.0})  # bad, within patience
        sched.optimizer.step()  # now final: 0.1
        self.assertFalse(sched.pending)
        self.assertEqual(sched.get_last_lr(), [0.1])
        self.assertEqual(sched.prefetched_steps, range(25, 30))
        self.client.report_metrics("no-provisional", 29, {"val_loss": 2.0})  # second bad report: 0.01 from 30
        sched.step(30)
        self.assertEqual(sched.get_last_lr(), [0.1 * 0.1])

    def wait_until(self, predicate, what, timeout=10.0):
        """Polls `predicate` until true, at most `timeout` seconds (the watch thread works in the background)."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                self.fail(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.005)

    def test_drops_stale_prefetched_values_after_rewrite(self):
        self.create("rewrite", {"lr": {"base_values": [0.1], "schedule": {"constant": {"factor": 1.0}}}})
        opt = make_sgd([0.1])
        sched = RemoteScheduler(opt, "rewrite", client=self.client, window=100)
        got = record(opt, sched, 11)["lr"]  # steps 0..10; [0, 100) prefetched and served
        self.assertEqual(sched.prefetched_steps, range(0, 100))
        with self.assertRaises(HpschedError) as e:  # served: refused without allow_rewrite
            self.client.update_job("rewrite", pin("lr", 0.5, from_step=50))
        self.assertEqual(e.exception.code, grpc.StatusCode.FAILED_PRECONDITION)
        self.client.update_job("rewrite", pin("lr", 0.5, from_step=50), allow_rewrite=True)
        self.wait_until(lambda: sched.prefetched_steps == range(0, 50), "the UPDATED event")
        self.client.update_job("rewrite", scale("lr", 0.5, from_step=30), allow_rewrite=True)
        self.wait_until(lambda: sched.prefetched_steps == range(0, 30), "the second UPDATED event")
        self.assertEqual(sched.stale_drops, 2)
        for _ in range(60):  # steps 11..70
            opt.step()
            sched.step()
            got.append(list(sched.get_last_lr()))
        self.assertEqual(got, [[0.1]] * 30 + [[0.05]] * 20 + [[0.25]] * 21)
        sched.close()
        self.assertFalse(sched._watch_thread.is_alive())

    def test_snapshot_drops_values_older_than_its_segments(self):
        """Changes made while no stream was open: the snapshot of the next stream (after a reconnect) drops the
        values cached with an older version from each newer segment's step. Fed by hand here (watch=False)."""
        self.create("snapshot", {"lr": {"base_values": [0.1], "schedule": {"constant": {"factor": 1.0}}}})
        warnings.simplefilter("ignore")  # step(epoch) without optimizer.step(): PyTorch's warnings
        self.addCleanup(warnings.resetwarnings)
        sched = RemoteScheduler(make_sgd([0.1]), "snapshot", client=self.client, window=100, watch=False)
        self.client.update_job("snapshot", pin("lr", 0.5, from_step=70), allow_rewrite=True)
        self.client.update_job("snapshot", pin("lr", 0.5, from_step=40), allow_rewrite=True)
        newer = sched.prefetched_steps
        with self.client.watch_job("snapshot", timeout=30) as watch:
            sched._on_event(next(watch))
        self.assertEqual((newer, sched.prefetched_steps), (range(0, 100), range(0, 40)))
        # A window fetched at the new version is kept whole by the same snapshot.
        sched.step(40)
        with self.client.watch_job("snapshot", timeout=30) as watch:
            sched._on_event(next(watch))
        self.assertEqual(sched.prefetched_steps, range(40, 140))
        self.assertEqual(sched.get_last_lr(), [0.5])

    # --- checkpoints -------------------------------------------------------------------------------------------------

    def test_state_dict_resume_is_exact(self):
        """25 steps, save, new model + optimizer + scheduler, load, 25 more == 50 uninterrupted (lrs and weights)."""
        self.create("resume", {
            "lr": {"base_values": [0.05], "schedule": {"one_cycle": {"max_lr": [0.05], "total_steps": 50}}},
            "beta1": {"base_values": [0.95], "schedule": {"cosine_annealing": {"t_max": 50, "eta_min": 0.85}}},
        })
        xs = torch.linspace(-1, 1, 32).unsqueeze(1)
        ys = 3 * xs + 0.5

        def fresh():
            torch.manual_seed(0)
            model = nn.Linear(1, 1)
            opt = torch.optim.Adam(model.parameters(), lr=0.05)
            return model, opt, RemoteScheduler(opt, "resume", client=self.client, window=8)

        def train(model, opt, sched, steps, lrs):
            for _ in range(steps):
                lrs.append((opt.param_groups[0]["lr"], opt.param_groups[0]["betas"][0]))
                opt.zero_grad()
                nn.functional.mse_loss(model(xs), ys).backward()
                opt.step()
                sched.step()

        model_s, opt_s, sched_s = fresh()
        straight = []
        train(model_s, opt_s, sched_s, 50, straight)

        model, opt, sched = fresh()
        resumed = []
        train(model, opt, sched, 25, resumed)
        buffer = io.BytesIO()
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()}, buffer)
        self.assertEqual(sched.state_dict(), {"job": "jobs/resume", "last_epoch": 25, "_step_count": 26})
        buffer.seek(0)
        checkpoint = torch.load(buffer)
        model, opt, sched = fresh()
        self.assertEqual(sched.last_epoch, 0)
        model.load_state_dict(checkpoint["model"])
        opt.load_state_dict(checkpoint["opt"])
        sched.load_state_dict(checkpoint["sched"])
        self.assertEqual(sched.last_epoch, 25)
        train(model, opt, sched, 25, resumed)
        self.assertEqual(resumed, straight)  # exactly
        self.assertTrue(torch.equal(model.weight, model_s.weight) and torch.equal(model.bias, model_s.bias))
        initial_loss = nn.functional.mse_loss(fresh()[0](xs), ys).item()
        self.assertLess(nn.functional.mse_loss(model(xs), ys).item(), initial_loss)

    def test_load_state_dict_alone_applies_the_step(self):
        """Only the scheduler's state loaded into a fresh optimizer: its groups get the saved step's values at once."""
        self.create("resume-lr", {"lr": {"base_values": [0.1, 0.02], "schedule": {"step": {"step_size": 10}}}})
        opt = make_sgd([0.1, 0.02])
        sched = RemoteScheduler(opt, "resume-lr", client=self.client, window=4)
        straight = record(opt, sched, 40)["lr"]
        opt = make_sgd([0.1, 0.02])
        sched = RemoteScheduler(opt, "resume-lr", client=self.client, window=4)
        first = record(opt, sched, 26)["lr"]
        state = sched.state_dict()
        opt = make_sgd([0.1, 0.02])
        sched = RemoteScheduler(opt, "jobs/resume-lr", client=self.client, window=4)
        sched.load_state_dict(state)
        self.assertEqual([g["lr"] for g in opt.param_groups], straight[25])
        self.assertEqual(sched.get_last_lr(), straight[25])
        rest = record(opt, sched, 15)["lr"]  # steps 25..39
        self.assertEqual(first + rest[1:], straight)
        with self.assertRaisesRegex(ValueError, "jobs/other"):
            sched.load_state_dict({"job": "jobs/other", "last_epoch": 3})

    # --- conventions and errors --------------------------------------------------------------------------------------

    def test_torch_step_convention(self):
        """Construction performs the initial step: the first optimizer.step() uses the value for step 0."""
        self.create("convention", {"lr": {"base_values": [0.3], "schedule": {"exponential": {"gamma": 0.5}}}})
        opt = make_sgd([123.0])  # the optimizer's own lr is replaced by the job's
        sched = RemoteScheduler(opt, "convention", client=self.client)
        self.assertIsInstance(sched, L._LRScheduler)
        self.assertEqual(sched.last_epoch, 0)
        self.assertEqual(opt.param_groups[0]["lr"], 0.3)
        opt.step()
        sched.step()
        self.assertEqual((sched.last_epoch, opt.param_groups[0]["lr"]), (1, 0.15))
        # last_epoch=k as in PyTorch: the last step done was k, construction moves to k + 1.
        sched = RemoteScheduler(make_sgd([1.0]), "convention", client=self.client, last_epoch=4)
        self.assertEqual((sched.last_epoch, sched.get_last_lr()), (5, [0.3 * 0.5 ** 5]))

    def test_errors(self):
        self.create("two-groups", {"lr": {"base_values": [0.1, 0.2], "schedule": {"step": {"step_size": 3}}}})
        self.create("no-lr", {"momentum": {"base_values": [0.9], "schedule": {"step": {"step_size": 3}}}})
        self.create("with-momentum", {"lr": {"base_values": [0.1], "schedule": {"step": {"step_size": 3}}},
                                      "momentum": {"base_values": [0.9], "schedule": {"step": {"step_size": 3}}}})
        with self.assertRaisesRegex(ValueError, r"'lr' has 2 base values .* optimizer has 1 param groups"):
            RemoteScheduler(make_sgd([0.1]), "two-groups", client=self.client)
        with self.assertRaisesRegex(ValueError, r"'lr' has 2 base values .* optimizer has 3 param groups"):
            RemoteScheduler(make_sgd([0.1, 0.1, 0.1]), "two-groups", client=self.client)
        with self.assertRaisesRegex(ValueError, "no 'lr' hyperparameter"):
            RemoteScheduler(make_sgd([0.1]), "no-lr", client=self.client)
        adagrad = torch.optim.Adagrad([nn.Parameter(torch.ones(1))], lr=0.1)
        with self.assertRaisesRegex(ValueError, "neither 'momentum' nor 'betas'"):
            RemoteScheduler(adagrad, "with-momentum", client=self.client)
        with self.assertRaises(HpschedError) as e:
            RemoteScheduler(make_sgd([0.1]), "no-such-job", client=self.client)
        self.assertEqual(e.exception.code, grpc.StatusCode.NOT_FOUND)
        with self.assertRaises(ValueError):
            RemoteScheduler(make_sgd([0.1]), "two-groups", client=self.client, window=0)
        with self.assertRaises(TypeError):
            RemoteScheduler("not an optimizer", "two-groups", client=self.client)

    def test_own_client_from_target(self):
        self.create("own-client", {"lr": {"base_values": [0.1], "schedule": {"step": {"step_size": 3}}}})
        sched = RemoteScheduler(make_sgd([0.1]), "own-client", target=self.target)
        self.assertEqual(sched.get_last_lr(), [0.1])
        sched.close()

    def test_module_does_not_shadow_torch(self):
        self.assertIs(hpsched.torch.torch, torch)
        self.assertTrue(hasattr(torch, "optim"))
        self.assertEqual(hpsched.torch.__name__, "hpsched.torch")


if __name__ == "__main__":
    main()
