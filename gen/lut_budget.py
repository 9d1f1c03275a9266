"""A ``--luts`` fold chosen again by the LUTs a tool counts (Yosys' estimate for ``ultrascale``,
nextpnr's LUT4s for ``ecp5``).

The resource model picks the fastest fold it puts within the budget; the tool then counts the
build. The model's miss on the fold last built (count minus model) is taken to hold for the next
pick: the fastest fold the model puts within the budget less that miss, so a cheaper fold after
an overrun and a faster one after a build counted well under the budget. A build past the part
in LUTs counts too (the tool's count is in its error), and caps the budget at the part's LUTs.
Each pick costs a synthesis, and only one faster than every build within the budget so far is
made.
"""
from typing import NamedTuple

from boards import BuildError
from gen.fold import FoldError, estimated_luts, fold_for_luts
from gen.graph import build_graph
from gen.report import LutCount, lut_count, lut_count_past_the_part

# Each build for a --luts budget costs a synthesis: at most this many in all.
LUT_BUDGET_ROUNDS = 4


class BudgetRound(NamedTuple):
    """One build for a ``--luts`` budget: its fold and interval, the resource model's LUTs, the
    tool's count (``None`` when it counted none), and its ``(output, report)`` or the
    ``BuildError`` it failed with."""
    fold: object
    interval_cycles: int
    model_lut: int
    counted: LutCount | None
    output: object = None
    report: dict | None = None
    error: BuildError | None = None


def fold_within_counted_luts(net, fold, build, budget, wrapper=None, luts_per_model_lut=1.0):
    """The ``(fold, output, report)`` to keep for a ``--luts`` ``budget``, starting from the
    model's pick ``fold``: ``build(fold)`` makes a build and returns its ``(output, report)``,
    the tool's count in the report; ``luts_per_model_lut`` converts the model's LUTs to the
    tool's. Up to ``LUT_BUDGET_ROUNDS`` builds; the fastest counted within the budget is kept
    (none within: the one counted fewest LUTs), its report listing every build as
    ``lut_budget_rounds`` when there was more than one. A build past the part in LUTs is a
    build over the budget, and the part's LUTs are the budget from then on; any other failure
    (too slow for the clock, past the part in memories) ends the search, and is raised when
    nothing was built. ``BuildError`` when a build is over the budget, none is within, and no
    fold is cheaper."""
    rounds = []
    while fold is not None:
        rounds.append(build_round(net, fold, build, wrapper))
        if rounds[-1].counted is None or len(rounds) == LUT_BUDGET_ROUNDS:
            break
        if rounds[-1].error:  # past the part in LUTs: a budget above the part is out of reach
            budget = min(budget, rounds[-1].error.available)
        fold = next_fold(net, budget, rounds, wrapper, luts_per_model_lut)
    built = [r for r in rounds if r.report is not None]
    if not built:
        raise rounds[-1].error
    kept = best_build(built, budget)
    if len(rounds) > 1:
        kept.report["lut_budget_rounds"] = [round_entry(r, kept=r is kept) for r in rounds]
    return kept.fold, kept.output, kept.report


def build_round(net, fold, build, wrapper):
    """The ``BudgetRound`` of building ``fold``; a ``BuildError`` is kept in it, with the
    tool's count when the part lacks LUTs."""
    interval = build_graph(net, fold).interval
    model = round(estimated_luts(net, fold, wrapper))
    try:
        output, report = build(fold)
    except BuildError as error:
        return BudgetRound(fold, interval, model, lut_count_past_the_part(error), error=error)
    return BudgetRound(fold, interval, model, lut_count(report), output, report)


def next_fold(net, budget, rounds, wrapper=None, luts_per_model_lut=1.0):
    """The fold to build after ``rounds`` (the last one counted), or ``None`` when none is worth
    a synthesis: one built already, or no faster than the fastest build within the budget."""
    last = rounds[-1]
    built = [r for r in rounds if r.report is not None]
    best = best_build(built, budget) if built else None
    best_within = best is not None and best.counted.value <= budget
    miss = last.counted.value - luts_per_model_lut * last.model_lut
    try:
        fold = fold_for_luts(net, budget - miss, wrapper, luts_per_model_lut)
    except FoldError:
        if best_within:
            return None
        raise no_cheaper_fold(budget, last) from None
    if any(fold == r.fold for r in rounds):
        return None
    if best_within and build_graph(net, fold).interval >= best.interval_cycles:
        return None
    return fold


def best_build(built, budget):
    """The fastest of the ``built`` rounds counted within ``budget``, else the one counted
    fewest LUTs."""
    within = [r for r in built if r.counted.value <= budget]
    if within:
        return min(within, key=lambda r: r.interval_cycles)
    return min(built, key=lambda r: r.counted.value)


def no_cheaper_fold(budget, last):
    """The one-line error for a build (the ``last`` round) over ``budget`` when no fold is that
    much cheaper."""
    counted = last.counted
    return BuildError(
        f"--luts {budget:,}: {counted.tool} counts {counted.value:,} {counted.unit} for a fold "
        f"the resource model puts at {last.model_lut:,} {counted.model_unit}, and no fold is "
        f"{counted.value - budget:,} {counted.unit} cheaper; accepted: a larger --luts, or a "
        f"fold set with --fold")


def round_entry(budget_round, kept):
    """One build for a ``--luts`` budget as the report lists it: its interval, the model's LUTs,
    the tool's count (``yosys_lut`` or ``nextpnr_lut4``), the error it failed with, and whether
    it was kept."""
    entry = {"interval_cycles": budget_round.interval_cycles,
             "resource_model_lut": budget_round.model_lut}
    if budget_round.counted:
        entry[budget_round.counted.key] = budget_round.counted.value
    if budget_round.error:
        entry["error"] = str(budget_round.error)
    entry["kept"] = kept
    return entry
