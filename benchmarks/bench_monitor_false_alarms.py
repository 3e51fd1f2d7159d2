"""False alarms and detection of the monitor's probability rules, on the reference station.

A live rule whose false-alarm rate is unknown cannot be trusted: an alert that fires in
every foggy season teaches forecasters to ignore it. This script walks the monitor's
rolling windows (``monitor.window``/``step``/``windows``, defaults 7 d / 6 h / 3) over
the 8760 hours of the reference TMY3 year, scores them with the monitor's own functions
(:func:`wxops.monitor.join.score_probability_windows`,
:func:`wxops.monitor.join.probability_breaches`) and prints the share of the year each
rule spends in a sustained breach, and its alarm episodes.

The forecasts of P(visibility < t), t = 1000 m and 5000 m:

* ``model``: gradient boosting on the surface predictors, each month predicted by a model
  trained on the other eleven: what a reliable-on-average model does, with the real fog
  seasons and the real persistence of its errors. Its yearly scores are the promotion
  values the ``brier``/``reliability`` rules compare with.
* ``drawn``: the same probabilities with the events drawn from them, hour by hour: a
  perfectly reliable forecaster, sampling noise only.
* ``drift x``: the model's probabilities miscalibrated, ``0.2 + 1.2 p`` (the monitor test's
  drift), ``2 p`` and ``p / 2``, against the real observations: what a rule must catch.

Rules compared: the previous defaults (Brier score 50 % above promotion; reliability term
+0.01) and the calibration test (``monitor.probability_rules``' default, alpha 0.01) with
``lag_hours`` 0 (hours as if independent), 12 (the default) and 24.

With ``--values`` the same walk judges the live rules of a version that predicts the
value (``monitor.live_rules``, default: rmse and mae at most 25 % worse than at
promotion) on a leave-one-month-out gradient-boosting regression of visibility: its real
errors, the same errors shuffled over the year (no season, sampling noise only), and the
forecasts biased by +1000 m and scaled by 1.3. It then judges candidate rules wxops does
not have, on 7-, 14- and 30-day windows: rmse relative to a month-hour climatology in the
same window (which shares the season), and a test of the mean error against its promotion
value (Newey-West variance over 24 h, level 0.01): what a season-aware replacement of the
live rules must beat.

    PYTHONPATH=src python benchmarks/bench_monitor_false_alarms.py [--sims 5] [--values]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from wxops.config import parse_duration
from wxops.monitor.join import (
    breaches,
    probability_breaches,
    score_probability_windows,
    score_windows,
    sustained,
    window_ends,
)
from wxops.monitor.settings import MonitorConfig, ProbabilityRule
from wxops.verify.probabilistic import brier_scores

THRESHOLDS = (1000.0, 5000.0)
PREDICTORS = ["t2m", "td2m", "rh", "pressure", "wind_speed", "total_cloud", "opaque_cloud"]
RULES = {
    "brier +50 %": ProbabilityRule(score="brier", max_worse_pct=50.0),
    "reliability +0.01": ProbabilityRule(score="reliability", max_increase=0.01),
    "calibration lag 0 h": ProbabilityRule(score="calibration", lag_hours=0),
    "calibration lag 12 h": ProbabilityRule(score="calibration", lag_hours=12),
    "calibration lag 24 h": ProbabilityRule(score="calibration", lag_hours=24),
}


def reference_year() -> pd.DataFrame:
    """The TMY3 hours on one calendar year (its months come from different years)."""
    from wxops.data.sources import _read_tmy3, default_tmy3_path

    frame = _read_tmy3(default_tmy3_path()).dropna(subset=["visibility", *PREDICTORS])
    t = frame["time"]
    frame["valid_time"] = pd.to_datetime({"year": 2020, "month": t.dt.month, "day": t.dt.day,
                                          "hour": t.dt.hour}, utc=True)
    return frame.sort_values("valid_time").reset_index(drop=True)


def model_probabilities(frame: pd.DataFrame) -> dict[float, np.ndarray]:
    """Leave-one-month-out gradient-boosting probabilities per threshold."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    x = frame[PREDICTORS].assign(hour=frame["valid_time"].dt.hour).to_numpy(dtype=float)
    month = frame["valid_time"].dt.month.to_numpy()
    out = {}
    for t in THRESHOLDS:
        y = (frame["visibility"].to_numpy() < t).astype(int)
        p = np.zeros(len(frame))
        for m in range(1, 13):
            train = month != m
            clf = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.05,
                                                 max_leaf_nodes=15, min_samples_leaf=40,
                                                 random_state=0).fit(x[train], y[train])
            p[~train] = clf.predict_proba(x[~train])[:, 1]
        out[t] = p
    return out


def alarms(frame: pd.DataFrame, probs: dict[float, np.ndarray], obs: np.ndarray,
           promoted_from: dict[float, np.ndarray], cfg: MonitorConfig) -> dict[str, tuple[float, int]]:
    """Per rule, over both thresholds: share of window ends in a sustained breach (at
    either threshold) and the number of alarm episodes."""
    joined = pd.DataFrame({"valid_time": frame["valid_time"], "model_version": "1", "obs": obs,
                           **{f"p_below_{t:g}": p for t, p in probs.items()}})
    columns = {f"p_below_{t:g}": ("below", t) for t in THRESHOLDS}
    promoted: dict[str, float] = {}
    for t in THRESHOLDS:  # the model's yearly scores on the real observations
        events = (frame["visibility"].to_numpy() < t).astype(float)
        found = brier_scores(promoted_from[t], events, climatology=float(events.mean()))
        promoted |= {f"brier_{t:g}": found["brier"], f"reliability_{t:g}": found["reliability"]}
    out: dict[str, tuple[float, int]] = {}
    window = pd.Timedelta(seconds=parse_duration(cfg.window))
    step = pd.Timedelta(seconds=parse_duration(cfg.step))
    lags = {r.lag_hours for r in RULES.values() if r.score == "calibration"}
    scored = {lag: score_probability_windows(joined, columns, window=window, step=step,
                                             max_windows=100_000, min_samples=cfg.min_samples,
                                             calibration_lag_hours=lag) for lag in lags}
    for name, rule in RULES.items():
        scores = scored[rule.lag_hours if rule.score == "calibration" else min(lags)]
        checks = probability_breaches(scores, [rule], list(THRESHOLDS), promoted)
        alarm = np.zeros(len(scores), dtype=bool)
        for _, rows in checks.groupby("score"):
            flags = [bool(v) for v in rows.sort_values("window_end")["breached"]]
            alarm |= np.array([sustained(flags[: i + 1], cfg.windows) for i in range(len(flags))])
        episodes = int(alarm[0]) + int(np.sum(alarm[1:] & ~alarm[:-1]))
        out[name] = (float(alarm.mean()), episodes)
    return out


def _alarm_share(checks: pd.DataFrame, windows: int) -> tuple[float, int]:
    """Share of window ends in a sustained breach of any score in ``checks``, episodes."""
    alarm: np.ndarray | None = None
    for _, rows in checks.groupby("score"):
        flags = [bool(v) for v in rows.sort_values("window_end")["breached"]]
        mine = np.array([sustained(flags[: i + 1], windows) for i in range(len(flags))])
        alarm = mine if alarm is None else alarm | mine
    if alarm is None or alarm.size == 0:
        return float("nan"), 0
    return float(alarm.mean()), int(alarm[0]) + int(np.sum(alarm[1:] & ~alarm[:-1]))


def value_alarms(frame: pd.DataFrame, forecast: np.ndarray, obs: np.ndarray,
                 promoted: dict[str, float], cfg: MonitorConfig, cap: float | None
                 ) -> dict[str, tuple[float, int]]:
    """Per live rule (and all together): share of the year in alarm, episodes."""
    joined = pd.DataFrame({"valid_time": frame["valid_time"], "model_version": "1",
                           "forecast": forecast, "obs": obs})
    scores = score_windows(joined, window=pd.Timedelta(seconds=parse_duration(cfg.window)),
                           step=pd.Timedelta(seconds=parse_duration(cfg.step)),
                           max_windows=100_000, min_samples=cfg.min_samples,
                           thresholds=list(THRESHOLDS), event="below", cap=cap)
    checks = breaches(scores, cfg.live_rules, promoted)
    out = {f"{r.score} +{r.max_worse_pct:g} %": _alarm_share(checks[checks["score"] == r.score],
                                                              cfg.windows)
           for r in cfg.live_rules}
    out["any rule"] = _alarm_share(checks, cfg.windows)
    return out


def candidate_alarms(frame: pd.DataFrame, forecast: np.ndarray, obs: np.ndarray,
                     climatology: np.ndarray, promoted: tuple[np.ndarray, np.ndarray],
                     cfg: MonitorConfig) -> dict[str, tuple[float, int]]:
    """Candidate value rules that wxops does not have, on ``cfg.window``: what a
    season-aware replacement of the live rules must beat. ``promoted``: the forecasts and
    observations of the promotion scores; ``climatology``: a month-hour climatology
    fitted without each window's month (as a test month's at promotion)."""
    from scipy import stats
    from statsmodels.stats.sandwich_covariance import S_hac_simple

    pf, po = promoted
    ratio_p = np.sqrt(np.mean((pf - po) ** 2) / np.mean((climatology - po) ** 2))
    bias_p, z_crit, lag = np.mean(pf - po), stats.norm.ppf(0.995), 24
    window = pd.Timedelta(seconds=parse_duration(cfg.window))
    times = frame["valid_time"]
    ends = pd.DatetimeIndex(window_ends(times, window=window, max_windows=100_000,
                                        step=pd.Timedelta(seconds=parse_duration(cfg.step))))
    lo = times.searchsorted(ends - window, side="right")
    hi = times.searchsorted(ends, side="right")
    names = ("rmse / clim rmse +25 %", "bias test 1 % (24 h)")
    flags: dict[str, list[bool]] = {n: [] for n in names}
    for a, b in zip(lo, hi, strict=True):
        err, ref = forecast[a:b] - obs[a:b], climatology[a:b] - obs[a:b]
        if b - a < cfg.min_samples:  # not scored, as the monitor's windows
            flags[names[0]].append(False)
            flags[names[1]].append(False)
            continue
        flags[names[0]].append(bool(np.sqrt(np.mean(err ** 2) / np.mean(ref ** 2))
                                    > 1.25 * ratio_p))
        # mean error against its promotion value; S_hac_simple is the Newey-West long-run
        # variance of the sum over lag cases, so that of the mean is it over n squared
        centred = (err - err.mean())[:, None]
        var = float(S_hac_simple(centred, nlags=min(lag, len(err) - 1))[0, 0]) / len(err) ** 2
        flags[names[1]].append(bool(abs(err.mean() - bias_p) > z_crit * np.sqrt(var)))
    out = {}
    for name, f in flags.items():
        alarm = np.array([sustained(f[: i + 1], cfg.windows) for i in range(len(f))])
        out[name] = (float(alarm.mean()), int(alarm[0]) + int(np.sum(alarm[1:] & ~alarm[:-1])))
    return out


def _print_cases(cases: dict[str, list[dict[str, tuple[float, int]]]], width: int = 20) -> None:
    names = list(next(iter(cases.values()))[0])
    print(f"{'forecasts':32}" + "".join(f"{n:>{width + 4}}" for n in names))
    for label, runs in cases.items():
        cells = [f"{np.mean([r[n][0] for r in runs]):10.3f} [{np.mean([r[n][1] for r in runs]):5.1f}]"
                 for n in names]
        print(f"{label:32}" + "".join(f"{c:>{width + 4}}" for c in cells), flush=True)


def main_values(frame: pd.DataFrame, cfg: MonitorConfig, rng: np.random.Generator,
                sims: int) -> None:
    """The live rules of a value forecast: false alarms and detection."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    from wxops.config import parse_config
    from wxops.verify.references import cap_values
    from wxops.verify.scoring import continuous_scores

    cap = parse_config({}).verify.cap_for("visibility")
    x = frame[PREDICTORS].assign(hour=frame["valid_time"].dt.hour).to_numpy(dtype=float)
    month = frame["valid_time"].dt.month.to_numpy()
    obs = frame["visibility"].to_numpy(dtype=float)
    fc = np.zeros(len(frame))
    for m in range(1, 13):
        train = month != m
        fc[~train] = HistGradientBoostingRegressor(max_iter=150, learning_rate=0.05,
                                                   random_state=0).fit(x[train], obs[train]).predict(x[~train])
    fc, obs = np.asarray(cap_values(fc, cap)), np.asarray(cap_values(obs, cap))
    promoted = continuous_scores(fc, obs)
    rules = [r.model_dump(exclude_none=True) for r in cfg.live_rules]
    print(f"value forecasts (leave-one-month-out gradient boosting): rmse {promoted['rmse']:.0f} m, "
          f"mae {promoted['mae']:.0f} m over the year; rules {rules}\n")
    cases: dict[str, list[dict[str, tuple[float, int]]]] = {
        "model, real errors": [value_alarms(frame, fc, obs, promoted, cfg, cap)]}
    cases["errors shuffled over the year"] = []
    for _ in range(sims):
        shuffled = np.clip(fc + rng.permutation(obs - fc), 0, cap)
        cases["errors shuffled over the year"].append(
            value_alarms(frame, fc, shuffled, continuous_scores(fc, shuffled), cfg, cap))
    cases["drift +1000 m"] = [value_alarms(frame, np.clip(fc + 1000, 0, cap), obs, promoted, cfg, cap)]
    cases["drift x 1.3"] = [value_alarms(frame, np.clip(fc * 1.3, 0, cap), obs, promoted, cfg, cap)]
    _print_cases(cases, width=16)
    # candidates: the same cases against rules wxops does not have, on longer windows too
    from wxops.verify.references import fit_climatology

    month = frame["valid_time"].dt.month.to_numpy()
    clim = np.zeros(len(frame))
    for m in range(1, 13):  # as at promotion: a test month's climatology never sees it
        train = month != m
        table = fit_climatology(pd.DataFrame({"time": frame["valid_time"][train],
                                              "y": obs[train]}), target="y", cap=cap)
        clim[~train] = table.predict(frame["valid_time"][~train])
    drifted = {"model, real errors": fc, "drift +1000 m": np.clip(fc + 1000, 0, cap),
               "drift x 1.3": np.clip(fc * 1.3, 0, cap), "drift x 0.7": np.clip(fc * 0.7, 0, cap)}
    for days in (7, 14, 30):
        # wxops' own rules (the monitor's scoring) and the candidates, on the same windows
        at = cfg.model_copy(update={"window": f"{days}d"})
        print(f"\nwxops' rules and candidates (not in wxops), {days}-day windows every "
              f"{cfg.step}, {cfg.windows} in a row; climatology by month and hour without the "
              "window's month")

        def judged(f: np.ndarray, o: np.ndarray, at: MonitorConfig = at
                   ) -> dict[str, tuple[float, int]]:
            own = value_alarms(frame, f, o, continuous_scores(fc, o), at, cap)
            own.pop("any rule")
            return own | candidate_alarms(frame, f, o, clim, (fc, o), at)

        found = {label: [judged(f, obs)] for label, f in drifted.items()}
        shuffled = [judged(fc, np.clip(fc + rng.permutation(obs - fc), 0, cap))
                    for _ in range(sims)]
        _print_cases({"model, real errors": found.pop("model, real errors"),
                      "errors shuffled over the year": shuffled, **found}, width=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=5, help="years of drawn events")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--values", action="store_true",
                        help="judge the live rules of a value forecast instead")
    args = parser.parse_args()
    cfg = MonitorConfig()
    frame = reference_year()
    if args.values:
        main_values(frame, cfg, np.random.default_rng(args.seed), args.sims)
        return
    probs = model_probabilities(frame)
    vis = frame["visibility"].to_numpy(dtype=float)
    for t in THRESHOLDS:
        y = vis < t
        bss = 1 - np.mean((probs[t] - y) ** 2) / np.mean((y.mean() - y) ** 2)
        print(f"P(vis < {t:g} m): {int(y.sum())} events in {len(y)} h, model mean p "
              f"{probs[t].mean():.3f}, BSS {bss:+.3f} (leave-one-month-out)")
    print(f"window {cfg.window}, step {cfg.step}, alarm = breach in {cfg.windows} windows in a "
          "row at either threshold; share of the year in alarm [episodes per year]\n")
    cases: dict[str, list[dict[str, tuple[float, int]]]] = {}
    cases["model (reliable on average)"] = [alarms(frame, probs, vis, probs, cfg)]
    rng = np.random.default_rng(args.seed)
    cases["drawn (perfectly reliable)"] = []
    for _ in range(args.sims):
        u = rng.random(len(frame))  # nested events: below 1000 m is also below 5000 m
        fake = np.where(u < probs[1000.0], 500.0, np.where(u < probs[5000.0], 3000.0, 9000.0))
        cases["drawn (perfectly reliable)"].append(alarms(frame, probs, fake, probs, cfg))
    for label, f in {"drift 0.2+1.2p": lambda p: 0.2 + 1.2 * p, "drift 2p": lambda p: 2 * p,
                     "drift p/2": lambda p: p / 2}.items():
        drifted = {t: np.clip(f(p), 0.0, 1.0) for t, p in probs.items()}
        cases[label] = [alarms(frame, drifted, vis, probs, cfg)]
    print(f"{'forecasts':30}" + "".join(f"{name:>24}" for name in RULES))
    for label, runs in cases.items():
        cells = []
        for name in RULES:
            share = float(np.mean([r[name][0] for r in runs]))
            eps = float(np.mean([r[name][1] for r in runs]))
            cells.append(f"{share:14.3f} [{eps:5.1f}]")
        print(f"{label:30}" + "".join(f"{c:>24}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
