#!/usr/bin/python3
"""tests/fuzz/make_corpus.py keeps what it does not generate, and the committed seeds and dictionaries are current.

    /usr/bin/python3 tests/fuzz/make_corpus_test.py

ctest's fuzz_seeds runs it in every build (it needs protoc and python3-protobuf, not a fuzz build).
"""
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = pathlib.Path(__file__).resolve().parent
SCRIPT = HERE / "make_corpus.py"
sys.path.insert(0, str(HERE))
import make_corpus  # noqa: E402


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


class MakeCorpusTest(unittest.TestCase):
    def setUp(self):
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="hpsched-make-corpus-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.corpus = self.tmp / "corpus"
        shutil.copytree(HERE / "corpus", self.corpus)
        for name in make_corpus.PROTO_DICTS:
            shutil.copy(HERE / name, self.tmp / name)

    def regenerate(self):
        r = run("--corpus", str(self.corpus), "--dict-dir", str(self.tmp))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_committed_seeds_and_dictionaries_are_current(self):
        r = run("--check")
        self.assertEqual(r.returncode, 0, "run /usr/bin/python3 tests/fuzz/make_corpus.py and commit:\n" + r.stdout +
                         r.stderr)

    def test_keeps_seeds_it_does_not_generate(self):
        hand = self.corpus / "schedule" / "hand_added_finiteness_seed.json"
        hand.write_text('{"exponential": {"gamma": 0.5}}')
        other = self.corpus / "job_json" / "kept.json"
        other.write_text("{}")
        before = sorted(p.relative_to(self.corpus) for p in self.corpus.rglob("*") if p.is_file())
        self.regenerate()
        after = sorted(p.relative_to(self.corpus) for p in self.corpus.rglob("*") if p.is_file())
        self.assertEqual(after, before, "make_corpus.py removed or added files")
        self.assertEqual(hand.read_text(), '{"exponential": {"gamma": 0.5}}')
        self.assertEqual(other.read_text(), "{}")

    def test_restores_what_it_generates(self):
        seed = self.corpus / "schedule" / "step_size10_gamma0.5.json"
        want = seed.read_bytes()
        seed.write_text("garbage")
        missing = self.corpus / "expression" / "pow_decay.txt"
        missing.unlink()
        self.regenerate()
        self.assertEqual(seed.read_bytes(), want)
        self.assertEqual(missing.read_text(), "0.95 ** step")

    def test_dictionaries_keep_hand_entries_and_cover_every_proto_name(self):
        path = self.tmp / "schedule.dict"
        text = path.read_text()
        hand, generated = text.split(make_corpus.GENERATED_MARKER, 1)
        path.write_text(hand + '"\\"hand_entry\\""\n' + make_corpus.GENERATED_MARKER + "\n")  # generated part emptied
        self.regenerate()
        regenerated = path.read_text()
        self.assertIn('"\\"hand_entry\\""\n', regenerated)
        self.assertEqual(regenerated.split(make_corpus.GENERATED_MARKER, 1)[1], generated)
        entries = {line.strip() for line in regenerated.splitlines()}
        # Names from several files of the catalog and the service, in both spellings.
        for name in ("cosine_annealing", "cosineAnnealing", "t_max", "tMax", "num_warmup_steps", "numWarmupSteps",
                     "warmup_steps", "page_token", "pageToken", "base_values", "baseValues"):
            with self.subTest(name=name):
                self.assertIn(f'"\\"{name}\\""', entries)


if __name__ == "__main__":
    unittest.main(verbosity=2)
