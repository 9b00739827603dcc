#!/usr/bin/env python3
"""Search for a He 2015 Fig. 1 setting by measurement, judging seeds as `paper he2015-fig1` does.

    scripts/fig1-search.py train CONFIG.ron STEPS SEED MODEL...   # one run per model, cached
    scripts/fig1-search.py judge CONFIG.ron STEPS SHALLOW DEEP RESIDUAL [SEED...]

A run's initial weights depend only on its model and seed, and every run of a trainer sees the
same batches (the sampler depends on the seed alone), so a model trained alone is the run it
would be in any trio, and the first N steps of a longer run with a constant learning rate are
the N-step run: each (config, model, seed) is trained once, for the most steps wanted, under
`nice -n 5`, with `resviz train --config CONFIG --models MODEL --seed SEED --steps STEPS --out`,
and its per-step training losses cached as JSON in $FIG1_CACHE (default /tmp/fig1-cache).
`judge` reads the cache: start = the first step whose trailing 20-step mean loss is below
0.9 ln 10; both plain nets train when both start within 10 % of the steps; final = the mean loss
over the last 10 % of the steps (`RunHistory::final_mean`).
"""
import json, math, os, re, resource, subprocess, sys, tempfile, time

STARTED_BELOW = 0.9 * math.log(10)
WINDOW = 20
STEP_RE = re.compile(r"\(\s*step:\s*(\d+),\s*epoch:\s*\d+,\s*loss:\s*([-+0-9.eEinfNa]+)")
CACHE = os.environ.get("FIG1_CACHE", "/tmp/fig1-cache")
BINARY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "resviz")


def key(cfg, model, seed):
    return os.path.join(CACHE, f"{os.path.basename(cfg).removesuffix('.ron')}.{model}.s{seed}.json")


def start_step(losses, steps):
    for at in range(WINDOW, steps + 1):
        win = losses[at - WINDOW : at]
        if sum(win) / WINDOW < STARTED_BELOW:
            return at
    return None


def final(losses, steps):
    after = steps - max(steps // 10, 1)
    tail = losses[after:steps]
    return sum(tail) / len(tail)


def train(cfg, steps, seed, models):
    os.makedirs(CACHE, exist_ok=True)
    for m in models:
        k = key(cfg, m, seed)
        if os.path.exists(k) and len(json.load(open(k))["losses"]) >= steps:
            continue
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "run.ron")
            t0 = time.time()
            ru = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu0 = ru.ru_utime + ru.ru_stime
            subprocess.run(["nice", "-n", "5", BINARY, "train", "--config", cfg, "--models", m,
                            "--seed", str(seed), "--steps", str(steps), "--eval-every", "0",
                            "--out", out], check=True, capture_output=True)
            pairs = [(int(a), float(b)) for a, b in STEP_RE.findall(open(out).read())]
        assert [s for s, _ in pairs] == list(range(1, steps + 1)), f"{m}: steps not all kept"
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = ru.ru_utime + ru.ru_stime - cpu0
        json.dump({"losses": [l for _, l in pairs], "seconds": time.time() - t0, "cpu_seconds": cpu},
                  open(k, "w"))
        print(f"trained {os.path.basename(k)} {steps} steps in {time.time() - t0:.0f} s "
              f"(CPU {cpu:.0f} s, load {os.getloadavg()[0]:.1f})", flush=True)


def judge(cfg, steps, models, seeds):
    late = int(steps * 0.1)
    n = {"train": 0, "worse": 0, "res": 0, "all": 0}
    for seed in seeds:
        ls = []
        for m in models:
            k = key(cfg, m, seed)
            l = json.load(open(k))["losses"] if os.path.exists(k) else []
            if len(l) < steps:
                print(f"seed {seed}: {m} not trained {steps} steps")
                break
            ls.append(l)
        else:
            st = [start_step(l, steps) for l in ls]
            fl = [final(l, steps) for l in ls]
            ok = {"train": all(s is not None and s <= late for s in st[:2]),
                  "worse": fl[1] > fl[0], "res": fl[2] < min(fl[:2])}
            ok["all"] = all(ok.values())
            for k in n:
                n[k] += ok[k]
            yn = lambda b: "Y" if b else "n"
            print(f"seed {seed}: start {st} final {[round(x, 3) for x in fl]} train={yn(ok['train'])} "
                  f"worse={yn(ok['worse'])} res={yn(ok['res'])}")
    c = len(seeds)
    print(f"{os.path.basename(cfg)} {'/'.join(models)} {steps} steps: both train {n['train']}/{c}, "
          f"deeper worse {n['worse']}/{c}, residual lowest {n['res']}/{c}, all {n['all']}/{c}")


if __name__ == "__main__":
    cmd, cfg, steps, rest = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    if cmd == "train":
        train(cfg, steps, int(rest[0]), rest[1:])
    else:
        judge(cfg, steps, rest[:3], [int(s) for s in rest[3:]] or [1, 2, 3, 4, 5])
