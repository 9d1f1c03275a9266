"""A ``--luts`` fold chosen again by the LUTs a tool counts (Yosys' estimate for ``ultrascale``,
nextpnr's LUT4s for ``ecp5``).

The resource model picks the fastest fold it puts within the budget; the tool then counts the
build. The model's miss on the fold last built (count minus model) is taken to hold for the next
pick: the fastest fold the model puts within the budget less that miss, so a cheaper fold after
an overrun and a faster one after a build counted well under the budget. Each pick costs a
synthesis, and only one faster than every build within the budget so far is made.
"""
from boards import BuildError
from gen.fold import FoldError, estimated_luts, fold_for_luts
from gen.graph import build_graph
from gen.report import lut_count, lut_overrun

# Each build for a --luts budget costs a synthesis: at most this many in all.
LUT_BUDGET_ROUNDS = 4


def fold_within_counted_luts(net, first, build, wrapper, luts_per_model_lut=1.0):
    """The build to keep for a ``--luts`` budget: ``first`` is the ``(fold, output, report)`` of
    the model's pick, with the tool's count in the report; ``build(fold)`` makes another and
    returns its ``(output, report)``; ``luts_per_model_lut`` converts the model's LUTs to the
    tool's. Up to ``LUT_BUDGET_ROUNDS`` builds in all; the fastest one counted within the
    budget is kept (none within: the one counted fewest LUTs), its report listing every build
    as ``lut_budget_rounds`` when there was more than one. A build after the first that fails
    (a fold past the part, or too slow for the clock) ends the search and is listed with its
    error. ``BuildError`` when a build is over the budget, none is within, and no fold is
    cheaper."""
    builds, failed = [first], []
    while len(builds) < LUT_BUDGET_ROUNDS and not failed:
        fold = next_fold(net, builds, wrapper, luts_per_model_lut)
        if fold is None:
            break
        try:
            builds.append((fold, *build(fold)))
        except BuildError as error:  # e.g. past the part, or its clock: keep what was built
            failed.append(failed_round(net, fold, wrapper, error))
    kept = best_build(builds)
    if len(builds) + len(failed) > 1:
        kept[2]["lut_budget_rounds"] = [budget_round(report, kept=report is kept[2])
                                        for _, _, report in builds] + failed
    return kept


def next_fold(net, builds, wrapper, luts_per_model_lut=1.0):
    """The fold to build next after ``builds``, or ``None`` when none is worth a synthesis: one
    built already, or no faster than the fastest build within the budget."""
    _, _, last = builds[-1]
    _, _, best = best_build(builds)
    best_within = lut_overrun(best) <= 0
    miss = lut_count(last).value - luts_per_model_lut * last["resource_model"]["lut"]
    try:
        fold = fold_for_luts(net, last["lut_budget"] - miss, wrapper, luts_per_model_lut)
    except FoldError:
        if best_within:
            return None
        raise no_cheaper_fold(last) from None
    if any(fold == built for built, _, _ in builds):
        return None
    if best_within and build_graph(net, fold).interval >= best["interval_cycles"]:
        return None
    return fold


def best_build(builds):
    """The fastest of ``builds`` counted within the budget, else the one counted fewest LUTs."""
    within = [b for b in builds if lut_overrun(b[2]) <= 0]
    if within:
        return min(within, key=lambda b: b[2]["interval_cycles"])
    return min(builds, key=lambda b: lut_count(b[2]).value)


def no_cheaper_fold(report):
    """The one-line error for a build over its budget when no fold is that much cheaper."""
    over, counted = lut_overrun(report), lut_count(report)
    return BuildError(
        f"--luts {report['lut_budget']:,}: {counted.tool} counts {counted.value:,} "
        f"{counted.unit} for a fold the resource model puts at "
        f"{report['resource_model']['lut']:,} {counted.model_unit}, and no fold is {over:,} "
        f"{counted.unit} cheaper; accepted: a larger --luts, or a fold set with --fold")


def budget_round(report, kept):
    """One build for a ``--luts`` budget: its interval, the model's LUTs, the tool's count
    (``yosys_lut`` or ``nextpnr_lut4``), and whether it was kept."""
    counted = lut_count(report)
    return {"interval_cycles": report["interval_cycles"],
            "resource_model_lut": report["resource_model"]["lut"],
            counted.key: counted.value, "kept": kept}


def failed_round(net, fold, wrapper, error):
    """A build for a ``--luts`` budget that failed with ``error``: its interval, the model's
    LUTs, the error."""
    graph = build_graph(net, fold)
    return {"interval_cycles": graph.interval,
            "resource_model_lut": round(estimated_luts(net, fold, wrapper)),
            "error": str(error), "kept": False}
